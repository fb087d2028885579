"""Cost tables and the accuracy model: the stable, versioned files that connect measurement to decision.

``agra-ros profile`` writes a cost table and the detector evaluation fits an accuracy model; the simulator,
the oracle, the policy node and the benchmarks only read them through this module. Both are JSON so a person
can read them and a later version can add keys without breaking readers.

Cost table (``format: agra_ros/cost-table``, ``version: 1``)::

    {
      "format": "agra_ros/cost-table", "version": 1,
      "device": "x86-2core",              # device profile name the numbers were measured on
      "detector": "agra-det-v1", "input_size": [H, W], "threads": 2, "torch": "2.14.1", "created": "...",
      "resolution_scales": [1.0, 0.75, 0.5], "levels": [...], "widths": [1.0, 0.75, 0.5, 0.25],
      "layers": [{"name": "stem", "input_from": null}, {"name": "b1", "input_from": "stem"}, ...],
      "head_input_from": ["b7", "b8"],    # switchable layers the non-switchable head reads
      "entries": [                         # one per (layer, level, in_width, scale)
        {"layer": "b1", "level": "neuron-50", "in_width": 0.75, "scale": 1.0,
         "latency_ms": 0.81, "macs": 1.2e7, "bytes": 3.4e5, "peak_act_bytes": 2.6e5}, ...],
      "overhead": [                        # head + decode + NMS + pre-processing, per scale and head width
        {"scale": 1.0, "in_width": 0.5, "latency_ms": 1.9, "macs": ..., "bytes": ..., "peak_act_bytes": ...}, ...]
    }

``in_width`` is the channel share of the layer's input (the level width of ``input_from``; 1.0 for the image).
The frame cost of a configuration is the sum of its layers' entries plus the overhead (the additive model);
peak activation memory is the maximum, not the sum.

Accuracy model (``format: agra_ros/accuracy-model``, ``version: 1``): mAP@0.5 of a configuration from per-(layer,
level) and per-resolution-scale terms, fitted on measured configurations, with the error on held-out configurations
stored beside it. Two forms (key ``form``):

- ``linear`` (files without the key): ``acc = intercept + sum of terms``, a ridge fit with free signs.
- ``multiplicative``: ``acc = (1 + eps) * exp(intercept + sum of terms) - eps``, every term a log-retention <= 0,
  non-increasing as a layer gets slimmer or the input smaller, full and partitioned exactly 0. Why: with free signs
  the real detector's linear fit gave some slim levels positive terms (a slimmer layer "more accurate"), so a
  combination of many slim layers at half resolution was predicted at 0.9 of full while measuring about 0.3, and a
  policy trained on the table learnt to exploit that. Agreements combine as a product across layers, not a sum; on
  the real detector's 25 held-out configurations the error fell from 0.115 to 0.085 (MAE).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES, GranularityConfig

COST_FORMAT = "agra_ros/cost-table"
ACCURACY_FORMAT = "agra_ros/accuracy-model"
TABLE_VERSION = 1
ACCURACY_FORMS = ("linear", "multiplicative")


class TableError(ValueError):
    """A cost table or accuracy model file that is missing, corrupt or of another format/version."""


def _read_json(path: str | Path, fmt: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise TableError(f"{fmt} file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TableError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise TableError(f"{p}: not a {fmt} file (format={data.get('format') if isinstance(data, dict) else None!r})")
    if data.get("version") != TABLE_VERSION:
        raise TableError(f"{p}: {fmt} version {data.get('version')!r}, this reader knows {TABLE_VERSION}")
    return data


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write JSON through a temporary file and rename, so readers never see half a table."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False))
    tmp.replace(p)
    return p


@dataclass(frozen=True)
class FrameCost:
    """Cost of one frame at one configuration, from the additive model."""

    latency_s: float
    macs: float
    bytes: float
    peak_act_bytes: float


class CostTable:
    """Measured per-layer, per-level cost of the detector on one device."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.device: str = data["device"]
        self.detector: str = data.get("detector", "")
        self.layer_names: tuple[str, ...] = tuple(layer["name"] for layer in data["layers"])
        self.input_from: dict[str, str | None] = {layer["name"]: layer.get("input_from") for layer in data["layers"]}
        self.head_input_from: tuple[str, ...] = tuple(data.get("head_input_from") or self.layer_names[-1:])
        self._entries: dict[tuple[str, str, float, float], np.ndarray] = {}
        for e in data["entries"]:
            key = (e["layer"], e["level"], round(float(e["in_width"]), 3), round(float(e["scale"]), 3))
            self._entries[key] = np.array(
                [e["latency_ms"] / 1e3, e["macs"], e["bytes"], e.get("peak_act_bytes", 0.0)], dtype=np.float64
            )
        self._overhead: dict[tuple[float, float], np.ndarray] = {}
        for e in data["overhead"]:
            key = (round(float(e["scale"]), 3), round(float(e["in_width"]), 3))
            self._overhead[key] = np.array(
                [e["latency_ms"] / 1e3, e["macs"], e["bytes"], e.get("peak_act_bytes", 0.0)], dtype=np.float64
            )
        self._cache: dict[GranularityConfig, FrameCost] = {}

    # ------------------------------------------------------------------ io
    @classmethod
    def load(cls, path: str | Path) -> CostTable:
        data = _read_json(path, COST_FORMAT)
        try:
            return cls(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"{path}: malformed cost table ({exc!r})") from None

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.data)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def tracker_cost(self) -> tuple[float, float] | None:
        """(base_s, per_object_s) of the keyframe tracker on this table's device from the table's ``tracker``
        section; None where the profiler measured none (the caller then uses :mod:`agra_ros.core.temporal`'s
        defaults, which sits above this layer)."""
        sec = self.data.get("tracker")
        if sec is None:
            return None
        try:
            base, per = float(sec["base_ms"]) / 1e3, float(sec["per_object_ms"]) / 1e3
        except (KeyError, TypeError, ValueError):
            raise TableError(f"cost table of {self.device}: malformed tracker section {sec!r}") from None
        if not (math.isfinite(base) and math.isfinite(per) and base >= 0 and per >= 0):
            raise TableError(f"cost table of {self.device}: tracker cost must be finite and >= 0, got {sec!r}")
        return base, per

    # ------------------------------------------------------------------ lookups
    def _in_width(self, layer: str, widths: dict[str, float]) -> float:
        src = self.input_from[layer]
        return 1.0 if src is None else widths[src]

    def frame_cost(self, config: GranularityConfig) -> FrameCost:
        """Additive-model cost of one frame at ``config`` (execution target ignored: local cost)."""
        key = config if config.execution_target == "local" else config.__class__(config.levels, config.resolution_scale)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if config.n_layers != self.n_layers:
            raise TableError(f"configuration has {config.n_layers} layers, cost table has {self.n_layers}")
        scale = round(config.resolution_scale, 3)
        widths = {name: LEVEL_WIDTH[lv] for name, lv in zip(self.layer_names, config.levels)}
        total = np.zeros(4)
        peak = 0.0
        for name, lv in zip(self.layer_names, config.levels):
            row = self._entries[(name, lv, round(self._in_width(name, widths), 3), scale)]
            total[:3] += row[:3]
            peak = max(peak, row[3])
        head_w = round(max(widths[n] for n in self.head_input_from), 3)
        ov = self._overhead[(scale, head_w)]
        total[:3] += ov[:3]
        peak = max(peak, ov[3])
        cost = FrameCost(float(total[0]), float(total[1]), float(total[2]), float(peak))
        self._cache[key] = cost
        return cost


class AccuracyModel:
    """Predicts mAP@0.5 of any granularity configuration from a linear model over its levels and scale."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.layer_names: tuple[str, ...] = tuple(data["layers"])
        self.intercept: float = float(data["intercept"])
        self.layer_level: dict[str, dict[str, float]] = data["layer_level"]
        self.scale: dict[str, float] = data["scale"]
        self.form: str = str(data.get("form", "linear"))
        if self.form not in ACCURACY_FORMS:
            raise ValueError(f"unknown accuracy model form {self.form!r}; known: {', '.join(ACCURACY_FORMS)}")
        self.eps: float = float(data.get("eps", 0.0))
        self._cache: dict[tuple[tuple[str, ...], float], float] = {}

    @classmethod
    def load(cls, path: str | Path) -> AccuracyModel:
        data = _read_json(path, ACCURACY_FORMAT)
        try:
            return cls(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"{path}: malformed accuracy model ({exc!r})") from None

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.data)

    def predict(self, config: GranularityConfig) -> float:
        """Predicted mAP@0.5 in [0, 1]."""
        key = (config.levels, config.resolution_scale)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if config.n_layers != len(self.layer_names):
            raise TableError(f"configuration has {config.n_layers} layers, accuracy model has {len(self.layer_names)}")
        y = self.intercept + self.scale.get(f"{config.resolution_scale:g}", 0.0)
        for name, lv in zip(self.layer_names, config.levels):
            y += self.layer_level[name].get(lv, 0.0)
        y = float(min(1.0, max(0.0, self.link(y))))
        self._cache[key] = y
        return y

    def link(self, total):
        """Accuracy from the sum of the intercept and the terms (a float or a numpy array; not clipped).

        The one place the model's form is applied: :meth:`predict` and the simulator's vectorised tables use it."""
        if self.form == "linear":
            return total
        return (1.0 + self.eps) * np.exp(total) - self.eps

    @property
    def heldout_mae(self) -> float:
        return float(self.data.get("fit", {}).get("heldout_mae", math.nan))


def _features(configs: Sequence[GranularityConfig], layer_names: Sequence[str]) -> np.ndarray:
    """One-hot (layer, level != full) and (scale != 1.0) features; ``full`` and scale 1.0 are the baseline."""
    cols = [(i, lv) for i in range(len(layer_names)) for lv in LEVELS[1:]]
    scales = [s for s in RESOLUTION_SCALES if s != 1.0]
    x = np.zeros((len(configs), len(cols) + len(scales)))
    for r, c in enumerate(configs):
        for j, (i, lv) in enumerate(cols):
            x[r, j] = 1.0 if c.levels[i] == lv else 0.0
        for k, s in enumerate(scales):
            x[r, len(cols) + k] = 1.0 if c.resolution_scale == s else 0.0
    return x


def _retention_features(configs: Sequence[GranularityConfig], n_layers: int) -> np.ndarray:
    """Cumulative step features: per layer one column per neuron level it reaches (narrower levels switch on all
    wider ones' columns), per resolution one column per scale step. Non-negative weights on them give a model that
    can only lose accuracy as a layer narrows or the input shrinks. ``full`` and ``partitioned`` (exactly full:
    halo-exact tiles) switch on nothing."""
    neuron = [lv for lv in LEVELS if LEVEL_WIDTH[lv] < 1.0]  # widest first
    steps = [s for s in RESOLUTION_SCALES if s != 1.0]  # largest first
    x = np.zeros((len(configs), n_layers * len(neuron) + len(steps)))
    for r, c in enumerate(configs):
        for i, lv in enumerate(c.levels):
            depth = neuron.index(lv) + 1 if lv in neuron else 0
            x[r, i * len(neuron) : i * len(neuron) + depth] = 1.0
        x[r, n_layers * len(neuron) : n_layers * len(neuron) + sum(c.resolution_scale <= s for s in steps)] = 1.0
    return x


def _nonnegative_least_squares(x: np.ndarray, y: np.ndarray, ridge: float, sweeps: int = 2000) -> np.ndarray:
    """argmin ||x c - y||^2 + ridge ||c||^2 subject to c >= 0, by cyclic coordinate descent (exact per coordinate,
    converges for this convex problem). Written here because the only library that has it (scipy) is not a
    dependency, and a few dozen columns need nothing faster."""
    h = x.T @ x + ridge * np.eye(x.shape[1])
    g = x.T @ y
    c = np.zeros(x.shape[1])
    for _ in range(sweeps):
        before = c.copy()
        for j in range(len(c)):
            c[j] = max(0.0, c[j] - (h[j] @ c - g[j]) / h[j, j])
        if np.max(np.abs(c - before)) < 1e-10:
            break
    return c


def fit_accuracy_model(
    configs: Sequence[GranularityConfig],
    maps: Iterable[float],
    layer_names: Sequence[str],
    heldout: tuple[Sequence[GranularityConfig], Sequence[float]] | None = None,
    ridge: float = 1e-3,
    meta: dict[str, Any] | None = None,
    form: str = "multiplicative",
    eps: float = 0.05,
) -> AccuracyModel:
    """Fit the accuracy model and report its error on held-out configurations.

    ``multiplicative`` (the default; see the module docstring): non-negative least squares of the log-retention
    ``-log((acc + eps) / (1 + eps))`` on cumulative step features, so full is exactly 1.0 of itself and accuracy
    never rises as a layer narrows. ``linear``: ridge least squares with free signs (the earlier model)."""
    if form not in ACCURACY_FORMS:
        raise ValueError(f"unknown accuracy model form {form!r}; known: {', '.join(ACCURACY_FORMS)}")
    y = np.asarray(list(maps), dtype=np.float64)
    scales = [s for s in RESOLUTION_SCALES if s != 1.0]
    if form == "multiplicative":
        neuron = [lv for lv in LEVELS if LEVEL_WIDTH[lv] < 1.0]
        x = _retention_features(configs, len(layer_names))
        target = np.log(1.0 + eps) - np.log(np.clip(y, 0.0, 1.0) + eps)
        c = _nonnegative_least_squares(x, target, ridge)
        intercept = 0.0
        layer_level = {}
        for i, name in enumerate(layer_names):
            steps = np.cumsum(c[i * len(neuron) : (i + 1) * len(neuron)])
            terms = {lv: 0.0 for lv in LEVELS if lv not in neuron}
            terms.update({lv: -float(steps[k]) for k, lv in enumerate(neuron)})
            layer_level[name] = terms
        scale_steps = np.cumsum(c[len(layer_names) * len(neuron) :])
        scale_coef = {"1": 0.0, **{f"{s:g}": -float(scale_steps[k]) for k, s in enumerate(scales)}}
        pred_train = np.clip((1.0 + eps) * np.exp(-(x @ c)) - eps, 0, 1)
        extra: dict[str, Any] = {"form": form, "eps": eps}
    else:
        x = _features(configs, layer_names)
        xb = np.hstack([np.ones((len(x), 1)), x])
        reg = ridge * np.eye(xb.shape[1])
        reg[0, 0] = 0.0
        coef = np.linalg.solve(xb.T @ xb + reg, xb.T @ y)
        n_lv = len(LEVELS) - 1
        intercept = float(coef[0])
        layer_level = {
            name: {"full": 0.0, **{lv: float(coef[1 + i * n_lv + j]) for j, lv in enumerate(LEVELS[1:])}}
            for i, name in enumerate(layer_names)
        }
        scale_coef = {
            "1": 0.0,
            **{f"{s:g}": float(coef[1 + len(layer_names) * n_lv + k]) for k, s in enumerate(scales)},
        }
        pred_train = np.clip(xb @ coef, 0, 1)
        extra = {"form": form}
    fit: dict[str, Any] = {"n_train": int(len(y)), "train_mae": float(np.mean(np.abs(pred_train - y)))}
    data = {
        "format": ACCURACY_FORMAT,
        "version": TABLE_VERSION,
        "metric": "map50",
        **extra,
        "layers": list(layer_names),
        "intercept": intercept,
        "layer_level": layer_level,
        "scale": scale_coef,
        "fit": fit,
        **(meta or {}),
    }
    model = AccuracyModel(data)
    if heldout is not None and len(heldout[0]):
        pred = np.array([model.predict(c) for c in heldout[0]])
        err = np.abs(pred - np.asarray(heldout[1], dtype=np.float64))
        fit.update({"n_heldout": int(len(err)), "heldout_mae": float(err.mean()), "heldout_max": float(err.max())})
    return model
