"""Live calibration of speed: the running estimate of this robot's latency against the cost table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agra_ros.online.live_latency import LiveLatency


def test_pooled_estimate_is_steady_where_one_measurement_is_not():
    rng = np.random.default_rng(0)
    live = LiveLatency()
    raw = []
    for i in range(200):  # a loaded machine: 2x the table on average, each decision off by up to 2x either way
        key = ("cfg", i % 7)
        measured = 0.010 * 2.0 * 2.0 ** rng.uniform(-1, 1)
        live.observe(key, measured, 0.010)
        raw.append(math.log2(measured / 0.010))
    steady = [live.slowdown_log2(("cfg", k)) for k in range(7)]
    assert np.std(raw) > 0.5  # what the state would carry without calibration
    assert all(abs(s - 1.0) < 0.45 for s in steady)  # each configuration near log2(2) = 1
    assert abs(live.device_slowdown_log2 - 1.0) < 0.3
    assert live.predicted_latency_s(("cfg", 0), 0.010) == pytest.approx(0.010 * 2 ** live.slowdown_log2(("cfg", 0)))


def test_an_unmeasured_configuration_gets_the_device_figure_and_a_slow_kernel_its_own():
    live = LiveLatency()
    assert live.slowdown_log2("x") == 0.0 and live.device_slowdown_log2 == 0.0  # the table's device at first
    for _ in range(30):
        live.observe("a", 0.020, 0.010)  # 2x
        live.observe("slow-kernel", 0.080, 0.010)  # 8x: a channel count with a slow kernel
    assert live.slowdown_log2("never-ran") == pytest.approx(live.device_slowdown_log2)
    assert live.slowdown_log2("slow-kernel") > live.slowdown_log2("a") + 1.5
    assert live.configurations == 2 and live.observations == 60


def test_bad_measurements_teach_nothing_and_bad_settings_are_refused():
    live = LiveLatency()
    for measured, table in ((math.nan, 0.01), (0.0, 0.01), (0.01, 0.0), (math.inf, 0.01), (-1.0, 0.01)):
        live.observe("a", measured, table)
    assert live.observations == 0 and live.slowdown_log2("a") == 0.0
    live.observe("a", 1e9, 1e-9)  # absurd but finite: clipped to the state's range
    assert live.device_slowdown_log2 == 6.0
    for kw in ({"memory": 0.0}, {"memory": 1.5}, {"prior_weight": 0.0}):
        with pytest.raises(ValueError):
            LiveLatency(**kw)
