"""The live accuracy model: the shipped table's prediction until perception measures otherwise, then the measured
scene, shrunk toward the table where measurements are few; and the mask that keeps the floor."""

from __future__ import annotations

import math

import pytest

from agra_ros.core.contract import Contract
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.online.live_accuracy import LiveAccuracy, read_footage_table


@pytest.fixture(scope="module")
def model():
    return Contract.load("x86_generic").model


def test_without_measurements_it_is_the_table(model):
    live = LiveAccuracy(model)
    slim = GranularityConfig.uniform("neuron-50", model.n_layers)
    assert live.predict(slim) == pytest.approx(live.prior(slim))
    assert live.guard(slim, 0.99) == (slim, False)  # no evidence yet: the policy decides alone
    full = GranularityConfig.uniform("full", model.n_layers)
    assert live.prior(full) == pytest.approx(1.0)


def test_a_scene_that_the_table_over_rates_pulls_the_prediction_down_and_the_mask_widens(model):
    live = LiveAccuracy(model, prior_weight=4.0)
    slim = GranularityConfig.uniform("neuron-50", model.n_layers)
    full = GranularityConfig.uniform("full", model.n_layers)
    table = live.prior(slim)
    for _ in range(30):
        live.observe(slim, table - 0.4)  # the camera's scene: slim keeps far less than the table says
        live.observe(full, 1.0)
        live.observe(slim, math.nan)  # ignored
    assert live.predict(slim) < table - 0.3
    assert live.predict(full) > 0.95, "a cell measured as the table says keeps the table's figure"
    floor = 0.9
    guarded, replaced = live.guard(slim, floor)
    assert replaced and live.predict(guarded) >= min(floor, table)  # the accuracy the policy was promised
    assert live.guard(full, floor) == (full, False)  # a configuration the scene keeps as the table says stays
    assert guarded.execution_target == slim.execution_target
    # few measurements move a cell less than many: shrinkage toward the table
    few = LiveAccuracy(model, prior_weight=4.0)
    few.observe(slim, table - 0.4)
    assert live.predict(slim) < few.predict(slim) < table


def test_it_forgets_an_old_scene(model):
    live = LiveAccuracy(model, prior_weight=2.0, memory=0.9)
    slim = GranularityConfig.uniform("neuron-75", model.n_layers)
    table = live.prior(slim)
    for _ in range(40):
        live.observe(slim, table - 0.3)
    low = live.predict(slim)
    for _ in range(40):
        live.observe(slim, table)  # the robot drove on: the table holds again
    assert live.predict(slim) > low + 0.2


def test_where_the_table_holds_the_mask_stays_out_of_the_way(model):
    """In domain the measurements agree with the table: the policy's trade-offs (slim at a binding target) stand."""
    live = LiveAccuracy(model)
    slim = GranularityConfig.uniform("neuron-50", model.n_layers)
    for _ in range(30):
        live.observe(slim, live.prior(slim))
    assert live.guard(slim, 0.9) == (slim, False)


def test_the_floor_mode_keeps_the_floor_itself(model):
    live = LiveAccuracy(model)
    slim = GranularityConfig.uniform("neuron-25", model.n_layers)
    for _ in range(20):
        live.observe(slim, live.prior(slim))  # the table holds, but it promises less than the floor
    assert live.guard(slim, 0.9, "table") == (slim, False)
    guarded, replaced = live.guard(slim, 0.9, "floor")
    assert replaced and live.predict(guarded) >= 0.9
    with pytest.raises(ValueError):
        live.guard(slim, 0.9, "sometimes")


def test_an_installed_footage_table_is_where_the_robot_starts(model, tmp_path):
    """evaluate-footage --install's CSV seeds the live model (interval-1 rows of this detector); a file that is not
    one is refused with a message naming it, and the model stays the table."""
    slim = GranularityConfig.uniform("neuron-50", model.n_layers)
    full = GranularityConfig.uniform("full", model.n_layers)
    path = tmp_path / "footage_eval.csv"
    path.write_text(
        "configuration,agreement,latency_ms,speedup\n"
        f"{full.short()},1.0,40,1.0\n{slim.short()},0.30,30,1.3\n"
        f"{slim.with_keyframe_interval(3).short()},0.25,12,3.3\n{slim.short()},nan,30,1.3\n"
    )
    rows = read_footage_table(path)
    assert len(rows) == 3  # the NaN row is skipped
    live = LiveAccuracy(model)
    assert live.seed(rows) == 2  # the interval-3 row mixes in the tracker: not the detector's agreement
    assert live.predict(slim) < live.prior(slim) - 0.1  # shrunk toward the table: one row, not the truth yet
    for text, match in (("", "not a footage table"), ("configuration,agreement\nXYZ,0.5\n", "unknown level code")):
        path.write_text(text)
        with pytest.raises(ValueError, match=f"{path.name}.*{match}"):
            read_footage_table(path)
    with pytest.raises(ValueError, match="cannot read"):
        read_footage_table(tmp_path / "missing.csv")
