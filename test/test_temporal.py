"""Temporal granularity as the policy sees it: the action's keyframe-interval head and the shared cost and
accuracy model of an interval (core/temporal.py), the same in the simulator's two evaluation paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agra_ros.core.temporal import (
    KEYFRAME_RETENTION_RATE,
    keyframe_retention,
    mean_frame_latency_s,
    tracker_latency_s,
)
from agra_ros.granularity.levels import (
    KEYFRAME_INTERVALS,
    GranularityCommandError,
    GranularityConfig,
    action_nvec,
)


def test_the_action_carries_the_interval_and_baselines_without_it_run_every_frame():
    assert action_nvec(4)[-1] == len(KEYFRAME_INTERVALS)
    cfg = GranularityConfig(("full", "neuron-50", "partitioned", "neuron-25"), 0.75, "local", 3)
    action = cfg.to_action()
    assert len(action) == 4 + 3 and action[:-1] == cfg.to_indices()  # the wire form stays levels, scale, target
    assert GranularityConfig.from_action(action, 4) == cfg
    assert GranularityConfig.from_action(cfg.to_indices(), 4) == cfg.with_keyframe_interval(1)
    with pytest.raises(GranularityCommandError) as err:
        GranularityConfig.from_action([*cfg.to_indices(), len(KEYFRAME_INTERVALS)], 4)
    assert err.value.kind == "unknown_interval"


def test_interval_cost_and_retention_follow_their_measurements():
    # vtest (every 2nd frame: motion 1.5) kept 0.904 / 0.849 / 0.777 / 0.658 of full's agreement at k = 2 / 3 / 4 / 6
    measured = {2: 0.904, 3: 0.849, 4: 0.777, 6: 0.658}
    for k, kept in measured.items():
        assert keyframe_retention(k, 1.5) == pytest.approx(kept, abs=0.04)
    assert keyframe_retention(1, 50.0) == 1.0 and keyframe_retention(6, 0.0) == 1.0  # every frame, or a still scene
    assert keyframe_retention(np.array([1, 2]), 1.0) == pytest.approx([1.0, math.exp(-KEYFRAME_RETENTION_RATE)])
    # vtest at 1 thread: full 41.4 ms, k2 27.6 ms per frame, k3 21.4 ms: a tracked frame of ~18 people ~12-14 ms
    track = float(tracker_latency_s(18))
    assert 0.010 < track < 0.015
    assert mean_frame_latency_s(0.0414, 2, track) == pytest.approx(0.0276, abs=0.002)
    assert mean_frame_latency_s(0.0414, 3, track) == pytest.approx(0.0214, abs=0.002)
    assert mean_frame_latency_s(0.0414, 1, track) == pytest.approx(0.0414)
