"""Shipped weights reach the accuracy bar on a small held-out subset; shipped tables load through tables.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agra_ros.detectors.measure import random_configs
from agra_ros.detectors.synthetic.data import validation_frames
from agra_ros.detectors.synthetic.evaluate import ValidationSet, evaluate_config
from agra_ros.detectors.synthetic.network import load_detector
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.paths import data_dir
from agra_ros.tables.files import AccuracyModel, CostTable

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


def _monotone(model) -> None:
    """Full is exactly 1 of itself; a slimmer level or a smaller input never predicts more accuracy."""
    from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES

    n = len(model.layer_names)
    assert model.predict(GranularityConfig.uniform("full", n)) == pytest.approx(1.0, abs=1e-9)
    neuron = [lv for lv in LEVELS if LEVEL_WIDTH[lv] < 1.0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        levels = [str(rng.choice(LEVELS)) for _ in range(n)]
        scale = float(rng.choice(RESOLUTION_SCALES))
        base = model.predict(GranularityConfig(tuple(levels), scale))
        i = int(rng.integers(n))
        if levels[i] in neuron and levels[i] != neuron[-1]:
            slimmer = levels[:i] + [neuron[neuron.index(levels[i]) + 1]] + levels[i + 1 :]
            assert model.predict(GranularityConfig(tuple(slimmer), scale)) <= base + 1e-12
        if scale != RESOLUTION_SCALES[-1]:
            smaller = RESOLUTION_SCALES[RESOLUTION_SCALES.index(scale) + 1]
            assert model.predict(GranularityConfig(tuple(levels), smaller)) <= base + 1e-12


def test_multiplicative_accuracy_model_is_monotone_and_recovers_a_product_of_retentions() -> None:
    """Agreements that multiply across layers are fitted within noise, and no slim level is ever "more accurate"
    (the free-sign linear fit gave slim levels positive terms, which a policy then exploited)."""
    from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES
    from agra_ros.tables.files import fit_accuracy_model

    n = 6
    names = [f"l{i}" for i in range(n)]
    rng = np.random.default_rng(1)
    keep = {lv: LEVEL_WIDTH[lv] ** rng.uniform(0.2, 1.0, n) for lv in LEVELS}  # per layer retention, 1 at full
    scale_keep = {1.0: 1.0, 0.75: 0.7, 0.5: 0.45}

    def truth(c: GranularityConfig) -> float:
        return float(np.prod([keep[lv][i] for i, lv in enumerate(c.levels)]) * scale_keep[c.resolution_scale])

    configs = [
        GranularityConfig(tuple(str(rng.choice(LEVELS)) for _ in range(n)), float(rng.choice(RESOLUTION_SCALES)))
        for _ in range(160)
    ]
    ys = [min(1.0, max(0.0, truth(c) + rng.normal(0, 0.02))) for c in configs]
    model = fit_accuracy_model(
        configs[:120], ys[:120], names, heldout=(configs[120:], [truth(c) for c in configs[120:]])
    )
    assert model.form == "multiplicative"
    assert model.heldout_mae < 0.05, model.data["fit"]
    _monotone(model)


def test_shipped_real_detector_accuracy_model_is_monotone() -> None:
    from agra_ros.detectors import registry

    _monotone(AccuracyModel.load(registry.shipped_accuracy_model("ssd")))


def test_frontier_picks_lie_on_the_predicted_frontier_fastest_first() -> None:
    from agra_ros.detectors import registry
    from agra_ros.detectors.ssd.evaluate import frontier_picks
    from agra_ros.tables.search import ConfigModel, SearchSpace

    cost = CostTable.load(registry.shipped_cost_table("ssd", "x86_generic"))
    acc = AccuracyModel.load(registry.shipped_accuracy_model("ssd"))
    space = SearchSpace(ConfigModel(cost, acc))
    picks = frontier_picks(space, 8)
    assert 2 <= len(picks) <= 8
    lat = [cost.frame_cost(c).latency_s for c in picks]
    assert lat == sorted(lat)
    rows = space.candidates()
    assert lat[0] == pytest.approx(float(space.latency_s[rows].min()))
    for c, t in zip(picks, lat):
        # nothing at most as slow is predicted more accurate: the optimiser would go here for a budget of t
        faster = rows[space.latency_s[rows] <= t * (1 + 1e-9)]
        assert acc.predict(c) >= float(space.accuracy[faster].max()) - 1e-9


def test_active_rounds_measure_new_frontier_configurations_and_refit() -> None:
    from agra_ros.detectors import registry
    from agra_ros.detectors.pseudo_eval import agreements, full_detections
    from agra_ros.detectors.ssd.evaluate import active_rounds
    from agra_ros.tables.files import fit_accuracy_model

    torch.set_num_threads(1)
    model = registry.load("synthetic")
    names = model.switchable_layer_names()
    frames = np.stack([f.image for f in validation_frames(4)])
    ref = full_detections(model, frames)
    start = [
        {"config": c, "kind": "random", "split": "train", "in_domain": agreements(model, frames, c, ref)[0]}
        for c in random_configs(12, len(names), seed=1)
    ]
    fits = []

    def fit(rows):
        fits.append(len(rows))
        return fit_accuracy_model([r["config"] for r in rows], [r["in_domain"] for r in rows], names)

    table = CostTable.load(registry.shipped_cost_table("synthetic", "x86_generic"))
    rows, history = active_rounds(model, start, frames, frames[:0], [table], fit, rounds=2, per_round=3)
    new = rows[len(start) :]
    assert new and all(r["kind"] == "active" and r["split"] == "train" for r in new)
    assert len({r["config"] for r in rows}) == len(rows), "a configuration was measured twice"
    assert sum(h["measured"] for h in history) == len(new)
    assert fits[0] == len(start) and (len(fits) == 1 or fits[1] > fits[0]), "the second round did not refit on more"
    for r in new:  # the rows hold the real measurement (confident, strict beside it), not the prediction
        assert (r["in_domain"], r["strict_in"]) == pytest.approx(agreements(model, frames, r["config"], ref))
