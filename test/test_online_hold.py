"""Steady decisions: a configuration is held min_hold_s before the policy may change it, except where safety needs a
change now; held-back decisions are counted and reported."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from simfixtures import write_fixture_tables

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.core.contract import Contract, observation_layout
from agra_ros.core.device import DeviceSim
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.online.agent import AgentSettings, OnlineAgent
from agra_ros.online.checkpoint import CheckpointSpec
from agra_ros.online.hold import MISSED_BADLY_SHARE, DecisionHold, force_reason
from agra_ros.online.inputs import Feedback
from agra_ros.online.lifecycle import CheckpointKeeper, TargetArbiter
from agra_ros.online.safety import safety_override_configuration
from agra_ros.online.stats import AttainmentWindow, LatencyWindow
from agra_ros.online.status import policy_status
from agra_ros.tables.search import load_config_model

N = 4
FULL = GranularityConfig.uniform("full", N)
HALF = GranularityConfig.uniform("neuron-50", N)
SAFE = safety_override_configuration(N)


def test_a_change_waits_until_the_configuration_in_force_was_held_long_enough():
    h = DecisionHold(1.0)
    assert h.offer(FULL, 0.0) == FULL  # the first command goes out
    assert h.offer(HALF, 0.2) == FULL and h.held == 1
    assert h.offer(FULL, 0.4) == FULL and h.held == 1  # asking for the one in force is not held back
    assert h.offer(HALF, 0.99) == FULL and h.held == 2
    assert h.offer(HALF, 1.0) == HALF and h.changes == 2
    assert h.offer(FULL, 1.5) == HALF and h.held == 3  # the clock restarts at every change
    assert h.offer(FULL, 2.1) == FULL and h.changes == 3 and h.forced == 0


def test_what_safety_needs_goes_through_at_once_and_is_counted():
    h = DecisionHold(5.0)
    h.offer(FULL, 0.0)
    assert h.offer(SAFE, 0.2, force="safety") == SAFE and h.forced == 1 and h.held == 0
    assert h.offer(HALF, 0.4) == SAFE and h.held == 1


def test_no_hold_time_lets_every_decision_through():
    h = DecisionHold(0.0)
    for i, c in enumerate([FULL, HALF, FULL, HALF]):
        assert h.offer(c, i * 0.2) == c
    assert h.held == 0 and h.changes == 4


@pytest.mark.parametrize("value", [-0.1, 30.5, math.nan])
def test_the_hold_time_is_bounded(value):
    h = DecisionHold()
    with pytest.raises(ValueError, match="min_hold_s"):
        h.min_hold_s = value
    assert h.min_hold_s == 1.0


def test_force_reasons():
    assert force_reason("policy", False, False, 30.0, 30.0) == ""
    assert force_reason("policy", False, False, None, 30.0) == ""
    assert force_reason("accuracy_mask", False, False, 25.0, 30.0) == ""
    assert force_reason("safety", False, False, 30.0, 30.0) == "safety"
    assert force_reason("policy", True, False, 30.0, 30.0) == "safety"  # the override ends: back to the policy
    assert force_reason("policy", False, True, 30.0, 30.0) == "fallback"
    assert force_reason("policy", False, False, MISSED_BADLY_SHARE * 30.0 - 0.1, 30.0) == "target missed badly"
    assert force_reason("policy", False, False, MISSED_BADLY_SHARE * 30.0 + 0.1, 30.0) == ""
    assert force_reason("policy", False, False, math.nan, 30.0) == ""


def _static_agent() -> OnlineAgent:
    tables = write_fixture_tables(Path(tempfile.mkdtemp(prefix="agra_hold_test_")))
    ref = Contract(
        layout=observation_layout(),
        model=load_config_model(str(tables[0]), str(tables[1])),
        device=DeviceSim("x86_generic"),
    )
    return OnlineAgent(AgentSettings(algorithm="static", start_from_shipped=False), ref)


def test_the_agent_measures_its_own_speed_on_the_configuration_that_ran():
    agent = _static_agent()
    agent._w = np.zeros(agent.layout.w_dim, np.float32)  # W as any input gives it
    d = agent.decide(now=0.0)
    ran = safety_override_configuration(agent.n_layers)
    assert ran != d.config
    agent.ran_instead(ran)
    agent.add_feedback(Feedback(20.0, 40.0, 0.1, 10.0, math.nan, 3, 0.5), now=0.1)
    agent.decide(now=0.2)
    assert agent._own_speed.scale == ran.resolution_scale != d.config.resolution_scale
    assert agent._own_speed.mean_width < 1.0


def test_the_status_reports_the_hold():
    agent = _static_agent()
    hold = DecisionHold(2.0)
    hold.offer(FULL, 0.0)
    hold.offer(HALF, 0.5)
    s = policy_status(
        agent,
        last_config=FULL.short(),
        latency=LatencyWindow(),
        target=TargetArbiter(),
        follow_trace=True,
        attainment=AttainmentWindow(),
        rejections=BadInputCounter(),
        learner=None,
        checkpoint=CheckpointKeeper(None, CheckpointSpec("static", agent.layout.dim, agent.nvec)),
        device_seen=False,
        hold=hold,
    )
    values = dict(s.values)
    assert values["min_hold_s"] == 2.0 and values["hold.held_back"] == 1 and values["configuration_changes"] == 1
    assert values["hold.forced"] == 0


def test_attainment_window_says_whether_perception_misses_its_target_now():
    w = AttainmentWindow()
    assert not w.missing()
    w.add(10.0, 30.0)
    assert w.missing()
    w.add(30.0, 30.0)
    assert not w.missing()
