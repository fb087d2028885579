"""The churn term of the one reward function: a switch of configuration costs the same in the simulator and on the
robot, the first step (and the first decision after a gap) is free, and the reward stays bounded (issue 23, item
3: 57 distinct configurations in 120 s live)."""

from __future__ import annotations

import numpy as np
import pytest
from simfixtures import make_env
from test_online_agent import _TABLES, N_LAYERS, _agent, _fb
from test_reward_bounds import AT_CAP, _ready

from agra_ros.core.reward import (
    ENERGY_NORM_MAX,
    REWARD_MAX,
    REWARD_MIN,
    SWITCH_BASE,
    RewardWeights,
    agra_reward,
    switch_churn,
)
from agra_ros.granularity.levels import GranularityConfig, action_nvec

A = np.array([0, 0, 0, 0, 0, 0], dtype=np.int64)
"""Full layers, full scale, local, every frame (three layers, scale, target, interval)."""
B = np.array([2, 0, 1, 0, 0, 2], dtype=np.int64)
"""Three of six heads changed."""


def test_churn_is_zero_without_a_switch_or_a_previous_and_grows_with_what_changed():
    assert switch_churn(None, A) == 0.0
    assert switch_churn(A, A.copy()) == 0.0
    assert switch_churn(A, B) == pytest.approx(SWITCH_BASE + (1 - SWITCH_BASE) * 3 / 6)
    assert switch_churn(A, A + 1) == pytest.approx(1.0)
    one = A.copy()
    one[0] = 1
    assert SWITCH_BASE < switch_churn(A, one) < switch_churn(A, B) < 1.0
    # a fixed baseline's action without the interval head runs interval index 0: the same configuration
    assert switch_churn(A[:-1], A) == 0.0


def test_the_switch_price_keeps_the_reward_bounded():
    w = RewardWeights()
    assert w.delta > 0
    assert agra_reward(0.5, 0.0, 0.0, w, 1.0) == pytest.approx(-0.5 - w.delta)
    assert REWARD_MIN <= agra_reward(ENERGY_NORM_MAX, 1.0, 1.0, AT_CAP, 1.0) <= REWARD_MAX
    assert agra_reward(0.0, 0.0, 0.0, w, 0.0) == REWARD_MAX
    arr = agra_reward(np.full(3, ENERGY_NORM_MAX), np.ones(3), np.ones(3), AT_CAP, np.array([0.0, 0.5, 1.0]))
    assert np.all((arr >= REWARD_MIN) & (arr <= REWARD_MAX))


def test_the_simulator_charges_a_switch_against_the_previous_step_and_not_the_first():
    env = make_env(_TABLES)
    for episode in range(2):
        env.reset(seed=episode)
        _, r0, _, _, i0 = env.step(A)
        assert i0["switch"] == 0.0  # an episode's first step: nothing ran before it
        _, r1, _, _, i1 = env.step(A)
        assert i1["switch"] == 0.0
        _, r2, _, _, i2 = env.step(B)
        assert i2["switch"] == pytest.approx(switch_churn(A, B))
        w = env.settings.weights
        expected = agra_reward(i2["energy_norm"], i2["fps_shortfall"], i2["accuracy_loss"], w, i2["switch"])
        assert r2 == pytest.approx(expected)
        assert r2 < agra_reward(i2["energy_norm"], i2["fps_shortfall"], i2["accuracy_loss"], w)


def _live_churn(configs: list[np.ndarray]) -> list[float]:
    """The agent's churn term for a run of configurations that ran (the node held its decisions to them)."""
    agent = _agent(batch_steps=1, explore_share=1.0)  # every decision a sample: experience
    agent.set_learning(True)
    _ready(agent)
    out = []
    for i, action in enumerate(configs):
        d = agent.decide(0.5 * i + 0.1)
        if d.terms:
            out.append(d.terms["switch"])
        agent.ran_instead(GranularityConfig.from_action(action, N_LAYERS))
        agent.add_feedback(_fb(20.0), 0.5 * i + 0.3)
    d = agent.decide(0.5 * len(configs) + 0.1)
    out.append(d.terms["switch"])
    return out


def test_live_and_simulated_churn_are_the_same_number_for_the_same_configurations():
    assert len(A) == len(action_nvec(N_LAYERS))
    run = [A, A, B, B, A]
    env = make_env(_TABLES)
    env.reset(seed=0)
    simulated = [env.step(a)[4]["switch"] for a in run]
    live = _live_churn(run)
    assert live == pytest.approx(simulated)
    assert simulated == pytest.approx([0.0, 0.0, switch_churn(A, B), 0.0, switch_churn(B, A)])


def test_live_churn_reaches_the_experience_and_a_gap_resets_it():
    agent = _agent(batch_steps=8, explore_share=1.0)
    agent.set_learning(True)
    _ready(agent)
    for i, action in enumerate([A, B, A]):
        agent.decide(0.5 * i + 0.1)
        agent.ran_instead(GranularityConfig.from_action(action, N_LAYERS))
        agent.add_feedback(_fb(20.0), 0.5 * i + 0.3)
    agent.decide(1.6)
    # no frame for longer than feedback_max_age_s: a gap, and the next decision after it pays no churn
    assert agent.decide(20.0).reward is None
    agent.ran_instead(GranularityConfig.from_action(B, N_LAYERS))
    agent.add_feedback(_fb(20.0), 20.2)
    assert agent.decide(20.4).terms["switch"] == 0.0
    batches = agent.take_experience()
    switch = np.concatenate([b.switch for b in batches])
    assert switch[:3] == pytest.approx([0.0, switch_churn(A, B), switch_churn(B, A)])
