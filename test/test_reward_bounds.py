"""The reward is bounded on both sides, and a decision without a measured frame reaches neither the learner's
experience nor the Lagrange multipliers (issue 23: the first live decision, before perception reported a frame,
scored -5,769,562)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_online_agent import _agent, _fb

from agra_ros.core.reward import (
    ENERGY_NORM_MAX,
    REWARD_MAX,
    REWARD_MIN,
    DualAscentSettings,
    LagrangeMultipliers,
    RewardWeights,
    agra_reward,
    reward_terms,
    system_energy_per_frame_j,
)
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_settings import LearnerSettings, online_ppo_settings

AT_CAP = RewardWeights(1.0, DualAscentSettings().max_value, DualAscentSettings().max_value)
"""alpha 1 and both multipliers as high as the dual ascent lets them go."""


def _ready(agent) -> None:
    """W without going through perception's feedback (the route W takes is not what these tests are about)."""
    agent._w = np.zeros(agent.layout.w_dim, dtype=np.float32)


def test_fps_zero_gives_a_bounded_reward_and_real_rewards_are_untouched():
    # what the first live decision saw: 5.8 W over FPS 0 against a reference of about 1 J per frame
    t = reward_terms(system_energy_per_frame_j(5.8, 0.0), 1.0, 0.0, 30.0, 0.5, 0.9)
    assert t.energy_norm == ENERGY_NORM_MAX and t.fps_shortfall == 1.0
    for w in (RewardWeights(), AT_CAP):
        r = agra_reward(t.energy_norm, t.fps_shortfall, t.accuracy_loss, w)
        assert REWARD_MIN <= r <= REWARD_MAX
    # with the default price of energy the clip never bites: everything at its cap costs exactly REWARD_MIN
    assert agra_reward(ENERGY_NORM_MAX, 1.0, 1.0, AT_CAP) == pytest.approx(REWARD_MIN)
    assert agra_reward(ENERGY_NORM_MAX, 1.0, 1.0, RewardWeights(alpha=10.0)) == REWARD_MIN  # other weights: clipped
    assert agra_reward(-1.0, 0.0, 0.0, RewardWeights()) == REWARD_MAX  # a negative cost cannot pay
    # the live range (-25 .. -0.8) and the simulator's are left as they were
    assert agra_reward(0.8, 0.0, 0.0, RewardWeights()) == pytest.approx(-0.8)
    assert agra_reward(17.0, 1.0, 0.5, RewardWeights()) == pytest.approx(-25.0)
    # arrays (the learner's batches, the simulator's vectorised outcome) are clipped the same way
    energy = np.array([0.5, 1e7, 3.0])
    terms = reward_terms(energy, 1.0, np.array([30.0, 0.0, 10.0]), 30.0, np.ones(3), 0.9)
    assert np.array_equal(terms.energy_norm, [0.5, ENERGY_NORM_MAX, 3.0])
    r = agra_reward(terms.energy_norm, terms.fps_shortfall, terms.accuracy_loss, AT_CAP)
    assert np.all((r >= REWARD_MIN) & (r <= REWARD_MAX)) and r[0] == pytest.approx(-0.5)


def test_nan_is_not_clipped_into_a_plausible_reward_and_is_still_rejected():
    assert math.isnan(agra_reward(math.nan, 0.0, 0.0, RewardWeights()))
    assert math.isnan(reward_terms(math.nan, 1.0, 20.0, 30.0, 1.0, 0.9).energy_norm)
    assert np.isnan(agra_reward(np.array([1.0, np.nan]), np.zeros(2), np.zeros(2), RewardWeights())[1])
    with pytest.raises(ValueError, match="NaN"):
        LagrangeMultipliers().update(np.array([0.0, np.nan]), np.zeros(2))
    batch = ExperienceBatch(
        obs=np.zeros((1, 2), np.float32), actions=np.zeros((1, 1), np.int64), logprobs=np.zeros(1, np.float32),
        energy_norm=np.array([np.nan]), fps_shortfall=np.zeros(1), accuracy_loss=np.zeros(1), switch=np.zeros(1),
        next_obs=np.zeros(2, np.float32), starts=np.ones(1),
    )  # fmt: skip
    with pytest.raises(ValueError, match="energy_norm holds NaN"):
        batch.validate(2, 1)


def test_a_decision_without_a_measured_frame_is_skipped_and_counted():
    agent = _agent(batch_steps=1, explore_share=1.0)  # every decision a sample: experience
    agent.set_learning(True)
    _ready(agent)
    agent.add_feedback(_fb(0.0), 0.0)  # perception's first frame: no rate measured yet
    agent.decide(0.0)  # the first decision closes no interval of its own: not counted
    assert agent.unmeasured == 0
    agent.add_feedback(_fb(0.0), 0.1)
    d = agent.decide(0.2)
    assert d.reward is None and d.terms == {} and agent.last_reward is None
    assert agent.take_experience() == [] and agent.unmeasured == 1
    # a measured frame among FPS-0 ones: scored from the measured one alone, inside the bounds
    agent.add_feedback(_fb(0.0), 0.3)
    agent.add_feedback(_fb(20.0), 0.35)
    d = agent.decide(0.4)
    assert d.terms["fps"] == pytest.approx(20.0) and REWARD_MIN <= d.reward <= REWARD_MAX
    assert [len(b) for b in agent.take_experience()] == [1]
    # no feedback for longer than feedback_max_age_s (no frames processed): skipped and counted too
    assert agent.decide(5.0).reward is None and agent.unmeasured == 2
    assert agent.take_experience() == []


def _learner_after(fps: float, decisions: int = 20):
    """The agent's experience over ``decisions`` intervals whose feedback ran at ``fps``, handed to a learner as
    the node hands it; returns the agent and the learner."""
    agent = _agent(batch_steps=4, explore_share=1.0)
    agent.set_learning(True)
    _ready(agent)
    learner = OnlineLearner(
        agent.gpn.spec, agent.learner_state(), LearnerSettings(online_ppo_settings(num_steps=8), w_dim=0)
    )
    agent.set_target(30.0)
    for i in range(decisions):
        agent.add_feedback(_fb(fps), 0.2 * i)
        agent.decide(0.2 * i + 0.1)
        for b in agent.take_experience():
            learner.add(b)
    return agent, learner


def test_no_frame_decisions_leave_the_experience_and_the_multipliers_unchanged():
    before = _agent().multipliers.state_dict()
    agent, learner = _learner_after(fps=0.0)
    assert agent.unmeasured == 19 and learner.updates == 0 and learner.dropped_steps == 0
    assert learner.multipliers.state_dict() == before and agent.multipliers.state_dict() == before
    # the same decisions with measured frames (10 of 30 FPS: far below the target) do move them
    agent, learner = _learner_after(fps=10.0)
    assert agent.unmeasured == 0 and learner.updates >= 1
    assert learner.multipliers.beta > before["beta"]
