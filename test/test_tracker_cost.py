"""The keyframe tracker's cost in the cost table: fitted from real timings, read back, used by the contract."""

from __future__ import annotations

import copy

import pytest

from agra_ros.core.contract import Contract
from agra_ros.core.temporal import TRACKER_BASE_S, TRACKER_PER_OBJECT_S
from agra_ros.detectors.tracker_cost import fit_tracker_cost
from agra_ros.tables.files import CostTable, TableError


def test_the_fit_recovers_a_line_through_noisy_timings():
    samples = [(n, 0.001 + 0.0005 * n + (0.01 if i == 0 else 0.0)) for n in range(0, 12) for i in range(3)]
    base, per = fit_tracker_cost(samples)  # one slow frame per count: the median ignores it
    assert base == pytest.approx(0.001, abs=1e-6)
    assert per == pytest.approx(0.0005, abs=1e-7)


def test_one_object_count_fits_a_flat_cost_and_nothing_is_refused():
    assert fit_tracker_cost([(3, 0.004), (3, 0.006), (3, 0.005)]) == (0.005, 0.0)
    with pytest.raises(ValueError):
        fit_tracker_cost([])
    base, per = fit_tracker_cost([(0, 0.0), (10, 0.001), (20, -0.5)])
    assert base >= 0 and per >= 0


def test_the_shipped_table_carries_a_measured_tracker_and_the_contract_uses_it():
    ref = Contract.load()
    measured = ref.model.cost_table.tracker_cost()
    assert measured is not None, "agra-ros profile-ssd --tracker-only --ship adds it"
    base, per = measured
    assert 0 <= base < 0.02 and 0 < per < 0.01
    assert ref.tracker_latency_s(10) == pytest.approx(base + 10 * per)


def test_a_table_without_a_tracker_section_falls_back_and_a_bad_one_is_refused():
    ref = Contract.load()
    data = copy.deepcopy(ref.model.cost_table.data)
    data.pop("tracker", None)
    assert CostTable(data).tracker_cost() is None
    shipped = ref.model.cost_table.data.pop("tracker", None)
    try:
        assert ref.tracker_latency_s(4) == pytest.approx(TRACKER_BASE_S + 4 * TRACKER_PER_OBJECT_S)
    finally:  # the loaded table may be shared with other tests
        if shipped is not None:
            ref.model.cost_table.data["tracker"] = shipped
    for bad in ({"base_ms": "x", "per_object_ms": 1}, {"base_ms": float("nan"), "per_object_ms": 1}, {"base_ms": 1}):
        with pytest.raises(TableError):
            CostTable({**data, "tracker": bad}).tracker_cost()
