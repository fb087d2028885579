"""Detector registry: nodes, profiling, evaluation and the simulator name a detector instead of importing one.

Two detectors sit behind one interface (``class_names``, ``switchable_layer_names()``, ``set_config()``,
``detect()``):

- ``ssd``: the real, pretrained SSD-MobileNetV2 (Open Images v4, 23 classes) with distilled slim levels: the default.
- ``synthetic``: the small detector trained on the project's synthetic scenes: a fast test double, and the fallback
  when the real weights are absent.

Each entry names its loader, its shipped weights, cost tables, accuracy model and agreement calibration, so a table is
never read for the wrong network and adding a detector is one entry here: nothing else names detectors. A loader
given as ``"module:function"`` is imported on first use, so naming a detector loads no network.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agra_ros.paths import data_dir


@dataclass(frozen=True)
class DetectorEntry:
    name: str
    """Registry name (the perception node's ``detector`` parameter)."""
    network: str
    """Network name written into weights files and tables."""
    loader: str | Callable[..., Any]
    """``load(path, device=...)`` returning the model: a callable, or ``"module:function"`` imported lazily."""
    weights_file: str
    """Shipped weights, relative to the package data folder."""
    cost_table_dir: str
    """Shipped cost tables (one JSON per device profile), relative to the package data folder."""
    accuracy_file: str
    """Shipped accuracy model, relative to the package data folder."""
    description: str
    fallback_configuration: str = ""
    """Perception's fallback configuration for this detector (short form), chosen from the measured tables; empty:
    every layer at FALLBACK_LEVEL (:func:`~agra_ros.granularity.levels.fallback_configuration`)."""
    measurements_file: str = ""
    """The measured accuracy table the shipped accuracy model was fitted on, relative to the package data folder."""
    calibration_file: str = ""
    """The shadow agreement's map onto the accuracy table's scale (``agra-ros calibrate-agreement --ship``), relative
    to the package data folder; empty: none (the identity)."""

    def load_function(self) -> Callable[..., Any]:
        """The loader, its module imported now if it was given by name."""
        if callable(self.loader):
            return self.loader
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module), function)


SSD_FALLBACK_CONFIGURATION = "FFFFFFFFF/1/local"
"""The real detector's fallback configuration (see the README's detector results for how it was chosen)."""

DETECTORS: dict[str, DetectorEntry] = {
    "ssd": DetectorEntry(
        name="ssd",
        network="ssd-mobilenetv2-oidv4",
        loader="agra_ros.detectors.ssd.weights:load_ssd",
        weights_file="ssd_mobilenetv2_oidv4.pt",
        cost_table_dir="cost_tables/ssd",
        accuracy_file="accuracy_model_ssd.json",
        description="SSD-MobileNetV2, Open Images v4 (23 classes), pretrained (MediaPipe, Apache-2.0), distilled "
        "slim levels",
        fallback_configuration=SSD_FALLBACK_CONFIGURATION,
        measurements_file="accuracy_measured_ssd.csv",
        calibration_file="agreement_calibration_ssd.json",
    ),
    "synthetic": DetectorEntry(
        name="synthetic",
        network="agra-det-v1",
        loader="agra_ros.detectors.synthetic.network:load_detector",
        weights_file="detector.pt",
        cost_table_dir="cost_tables",
        accuracy_file="accuracy_model.json",
        description="small CenterNet-style detector of the project's synthetic shapes (test double)",
        measurements_file="accuracy_measured.csv",
    ),
}
DEFAULT_DETECTOR = "ssd"


class UnknownDetectorError(ValueError):
    pass


def entry(name: str) -> DetectorEntry:
    try:
        return DETECTORS[name]
    except KeyError:
        raise UnknownDetectorError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}") from None


def shipped_weights(name: str) -> Path:
    return data_dir() / entry(name).weights_file


def shipped_cost_table(name: str, device: str) -> Path:
    return data_dir() / entry(name).cost_table_dir / f"{device}.json"


def shipped_cost_tables(name: str) -> list[Path]:
    """Every shipped cost table of ``name`` (one per measured device and thread count)."""
    return sorted((data_dir() / entry(name).cost_table_dir).glob("*.json"))


def shipped_accuracy_table(name: str) -> Path:
    """The measured accuracy table behind the shipped accuracy model."""
    return data_dir() / entry(name).measurements_file


def shipped_accuracy_model(name: str) -> Path:
    return data_dir() / entry(name).accuracy_file


def shipped_agreement_calibration(name: str) -> Path | None:
    """The shipped agreement calibration of ``name``; None when its entry has none."""
    e = entry(name)
    return data_dir() / e.calibration_file if e.calibration_file else None


def load(name: str, weights: str | Path | None = None, device: str = "cpu"):
    """Load detector ``name`` from ``weights`` (default: its shipped weights); WeightsError when unusable."""
    path = Path(weights) if weights else shipped_weights(name)
    model = entry(name).load_function()(path, device=device)
    model.registry_name = name
    return model


def load_with_fallback(name: str, weights: str | Path | None = None, device: str = "cpu") -> tuple[object, str]:
    """Load ``name``; when its *shipped* weights are missing or unusable, fall back to the synthetic test double.

    Returns (model, a log line saying which detector runs and why). Explicit ``weights`` never fall back: a user who
    names a file wants that file, and a WeightsError says what is wrong with it.
    """
    from agra_ros.detectors.interface import WeightsError

    e = entry(name)
    if weights or name == "synthetic":
        return load(name, weights, device), f"detector {name} ({e.network}) from {weights or shipped_weights(name)}"
    try:
        return load(name, None, device), f"detector {name} ({e.network}): {e.description}"
    except WeightsError as exc:
        model = load("synthetic", None, device)
        return model, (
            f"detector {name} unavailable ({exc}); running the synthetic test double instead, which only knows "
            "synthetic shapes: run `agra-ros import-detector` or reinstall the package to get the real detector"
        )


__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "DetectorEntry",
    "UnknownDetectorError",
    "entry",
    "load",
    "load_with_fallback",
    "shipped_accuracy_model",
    "shipped_agreement_calibration",
    "shipped_cost_table",
    "shipped_weights",
]
