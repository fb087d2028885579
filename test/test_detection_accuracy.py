"""Shipped weights reach the accuracy bar on a small held-out subset; shipped tables load through tables.py."""

from __future__ import annotations

import torch

from agra_ros.detection.data import validation_frames
from agra_ros.detection.evaluate import ValidationSet, evaluate_config, random_configs
from agra_ros.detection.model import load_detector
from agra_ros.detection.tables import AccuracyModel, CostTable
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.paths import data_dir

torch.set_num_threads(1)


def test_shipped_weights_reach_map50_bar_on_validation_subset() -> None:
    """The issue's bar on the first 40 held-out frames: full >= 0.80, all-neuron-50 within 5 points of full.

    Measured with the shipped weights: full 0.935, all-neuron-50 0.911 (200 frames: 0.926 and 0.911).
    """
    model = load_detector()
    data = ValidationSet(validation_frames(40), model)
    n = len(model.switchable_layers())
    full = evaluate_config(model, data, GranularityConfig.uniform("full", n))
    assert full >= 0.80, f"full configuration mAP@0.5 {full:.3f} < 0.80"
    n50 = evaluate_config(model, data, GranularityConfig.uniform("neuron-50", n))
    assert full - n50 <= 0.05, f"all-neuron-50 {n50:.3f} more than 5 points below full {full:.3f}"


def test_mixed_configurations_do_not_collapse() -> None:
    """Input-aware batch-norm statistics keep mixed configurations usable: on these 8 random ones and 40 frames
    the shipped weights measure mean 0.886, min 0.800 (without them a quarter of mixed configurations fell below
    0.63). The bar leaves about 5 points of room."""
    model = load_detector()
    data = ValidationSet(validation_frames(40), model)
    maps = [evaluate_config(model, data, c) for c in random_configs(8, len(model.switchable_layers()), 1)]
    assert sum(maps) / len(maps) >= 0.83 and min(maps) >= 0.75, maps


def test_shipped_tables_load_and_cover_the_detector() -> None:
    model = load_detector()
    names = model.switchable_layer_names()
    acc = AccuracyModel.load(data_dir() / "accuracy_model.json")
    assert list(acc.layer_names) == names
    full = GranularityConfig.uniform("full", len(names))
    assert 0.0 <= acc.predict(GranularityConfig.uniform("neuron-25", len(names), 0.5)) <= acc.predict(full) <= 1.0
    tables = sorted((data_dir() / "cost_tables").glob("*.json"))
    assert tables, "no cost table shipped"
    for path in tables:
        table = CostTable.load(path)
        assert list(table.layer_names) == names
        slow = table.frame_cost(full)
        fast = table.frame_cost(GranularityConfig.uniform("neuron-25", len(names), 0.5))
        assert fast.macs < slow.macs and fast.latency_s < slow.latency_s
