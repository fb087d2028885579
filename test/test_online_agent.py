"""OnlineAgent: observation from live inputs, reward terms as the simulator defines them, safety, experience."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from simfixtures import LAYERS, write_fixture_tables

from agra_ros.core.contract import Contract, observation_layout
from agra_ros.core.device import DEVICE_DIM, DeviceSim
from agra_ros.core.observation import P_FIELDS
from agra_ros.core.reward import calibrated_accuracy_ratio
from agra_ros.core.temporal import tracker_latency_s
from agra_ros.device.profiles import DeviceProfile
from agra_ros.granularity.levels import LEVELS, GranularityConfig
from agra_ros.online.agent import AgentSettings, OnlineAgent, learner_settings_for
from agra_ros.online.checkpoint import CheckpointSpec, load_checkpoint, save_checkpoint
from agra_ros.online.inputs import Feedback
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_settings import LearnerSettings, online_ppo_settings
from agra_ros.policy.registry import shipped_policy_path
from agra_ros.tables.search import load_config_model
from agra_ros.workload.features import EMBEDDING_DIM, WorkloadFeatures

N_LAYERS = len(LAYERS)
PARAMS = DeviceProfile(
    name="test_device", speed=1.0, cores=2, p_idle_w=5.0, p_max_w=30.0, j_per_busy_s=10.0, j_per_gmac=0.1,
    j_per_mb=0.01, tx_j_per_mb=0.05, voltage_v=1.0, t_ambient_c=30.0, thermal_r_c_per_w=2.0, thermal_tau_s=60.0,
    t_throttle_c=80.0, t_critical_c=95.0, clock_steps=(1.0, 0.8, 0.6),
)  # fmt: skip
_TABLES = write_fixture_tables(Path(tempfile.mkdtemp(prefix="agra_agent_test_")))


def _reference() -> Contract:
    """The contract over the fixture tables and a test device."""
    model = load_config_model(str(_TABLES[0]), str(_TABLES[1]))
    return Contract(layout=observation_layout(), model=model, device=DeviceSim(PARAMS, table_device="test_device"))


def _workload(seed: int) -> WorkloadFeatures:
    """W as perception reports it: an embedding, frame size, detections and motion."""
    rng = np.random.default_rng(seed)
    return WorkloadFeatures(rng.normal(size=EMBEDDING_DIM).astype(np.float32), 0.3, 5, 0.6, float(rng.uniform(0, 20)))


def _fb(fps: float, energy: float = 0.2, acc: float = math.nan, latency_ms: float = 20.0) -> Feedback:
    return Feedback(fps, latency_ms, energy, 5.0 + energy * fps, acc, 5, 0.6)


def _agent(algorithm: str = "agra", **kw) -> OnlineAgent:
    return OnlineAgent(AgentSettings(algorithm=algorithm, start_from_shipped=False, **kw), _reference())


def test_needs_a_frame_then_decides_valid_local_configurations():
    agent = _agent()
    assert not agent.ready
    with pytest.raises(RuntimeError, match="frame"):
        agent.decide(0.0)
    agent.set_workload(_workload(0))
    for i in range(5):
        d = agent.decide(float(i))
        assert isinstance(d.config, GranularityConfig) and d.config.n_layers == N_LAYERS
        assert d.config.execution_target == "local"  # allow_remote is off
        assert d.source == "policy" and d.compute_s > 0


def test_workload_comes_from_feedback_and_a_bad_one_keeps_the_last_good_w():
    agent = _agent()
    agent.set_workload(_workload(1))
    agent.decide(0.0)
    w = agent._pending.obs[: agent.layout.w_dim].copy()
    assert np.allclose(w, _workload(1).vector())
    bad = _workload(2)
    bad.embedding = np.full(EMBEDDING_DIM - 1, 0.1, np.float32)
    with pytest.raises(ValueError, match="workload vector"):
        agent.set_workload(bad)
    agent.decide(0.2)
    assert np.array_equal(agent._pending.obs[: agent.layout.w_dim], w)


def test_target_enters_the_observation_and_reward_terms_follow_the_env_definitions():
    agent = _agent()
    agent.set_workload(_workload(0))
    agent.set_target(30.0)
    agent.decide(0.0)
    assert agent._pending is not None
    p = agent._pending.obs[-len(P_FIELDS) :]
    assert p[0] == pytest.approx(30.0 / 60.0)
    agent.add_feedback(_fb(24.0, energy=0.3, acc=0.8), 0.1)
    agent.add_feedback(_fb(26.0, energy=0.5, acc=math.nan), 0.15)
    d = agent.decide(0.2)
    e_ref = agent.ref.reference_energy_j(30.0)
    assert d.terms["fps_shortfall"] == pytest.approx((30.0 - 25.0) / 30.0)
    # system energy per frame, idle share included: mean reported power over mean FPS, as in the simulator
    power = ((5.0 + 0.3 * 24.0) + (5.0 + 0.5 * 26.0)) / 2
    assert d.terms["energy_norm"] == pytest.approx(power / 25.0 / e_ref)
    # the shadow agreement 0.8 on the accuracy table's scale (the measured calibration), against the floor 0.9
    acc_ratio = calibrated_accuracy_ratio(0.8)
    assert d.terms["accuracy_loss"] == pytest.approx(max(0.0, 0.9 - acc_ratio))
    w = agent.multipliers.weights
    expect = -w.alpha * d.terms["energy_norm"] - w.beta * d.terms["fps_shortfall"] - w.gamma * d.terms["accuracy_loss"]
    assert d.reward == pytest.approx(expect)
    # own speed (load = latency x target, achieved / target FPS, the configuration that ran) and accuracy enter P
    p = agent._pending.obs[-len(P_FIELDS) :]
    assert p[3] == pytest.approx(0.020 * 30.0) and p[4] == pytest.approx(acc_ratio)
    assert p[5] == pytest.approx(25.0 / 30.0)


def test_interval_without_recent_feedback_is_not_scored():
    agent = _agent()
    agent.set_workload(_workload(0))
    agent.decide(0.0)
    assert agent.decide(0.2).reward is None
    agent.add_feedback(_fb(30.0), 0.3)
    assert agent.decide(0.4).reward is not None
    assert agent.decide(0.6).reward is not None  # recent enough: scored from the last feedback
    assert agent.decide(5.0).reward is None  # feedback older than feedback_max_age_s


def test_safety_forces_the_safety_override_configuration_with_hysteresis():
    agent = _agent(critical_temp_c=90.0, recover_margin_c=5.0)
    agent.set_workload(_workload(0))
    d_vec = agent.ref.default_device_vector()
    agent.set_device(d_vec, 91.0, False)
    d = agent.decide(0.0)
    assert d.source == "safety" and d.safety is not None and d.safety.engaged
    assert d.config.levels == ("neuron-25",) * N_LAYERS and d.config.resolution_scale == 0.5
    assert d.config.execution_target == "local"
    agent.set_device(d_vec, 87.0, False)  # below critical but inside the margin: still engaged, no new transition
    d = agent.decide(0.2)
    assert d.source == "safety" and d.safety is None
    agent.set_device(d_vec, 84.0, False)
    d = agent.decide(0.4)
    assert d.source == "policy" and d.safety is not None and not d.safety.engaged
    agent.set_device(d_vec, 40.0, True)  # throttling alone engages it, and the device's own critical level wins
    assert agent.decide(0.6).source == "safety"
    agent.set_device(d_vec, 70.0, False, critical_temp_c=60.0)
    assert agent.decide(0.8).source == "safety"
    assert agent.guard.engagements == 2
    with pytest.raises(ValueError):
        agent.set_device(np.full(DEVICE_DIM, np.nan), 40.0, False)


def test_learning_collects_experience_the_learner_accepts():
    agent = _agent(batch_steps=8, explore_share=1.0, stick_margin=0.0)  # every decision samples; the plain mode
    agent.set_learning(True)
    agent.set_workload(_workload(0))
    t = 0.0
    for i in range(20):
        agent.add_feedback(_fb(20.0 + i % 5), t)
        agent.decide(t)
        t += 0.2
    batches = agent.take_experience()
    assert [len(b) for b in batches] == [8, 8]
    assert batches[0].starts[0] == 1.0 and batches[1].starts[0] == 0.0
    assert np.all(batches[0].logprobs < 0)
    learner = OnlineLearner(
        agent.gpn.spec, agent.learner_state(), LearnerSettings(online_ppo_settings(num_steps=16), w_dim=0)
    )
    assert learner.add(batches[0]) == 0 and learner.add(batches[1]) == 1
    agent.apply_learner_state(learner.state())
    assert agent.updates == 1
    # learning off: the open segment (3 transitions + the one in flight) is handed over, then no more experience
    agent.set_learning(False)
    for _ in range(10):
        agent.add_feedback(_fb(25.0), t)
        agent.decide(t)
        t += 0.2
    assert [len(b) for b in agent.take_experience()] == [4]
    # not learning: greedy, the mode of every head for the observation (which carries the last configuration)
    for k in range(5):
        chosen = agent.decide(t + k).config.to_action()
        act = agent.gpn.act(agent._pending.obs, deterministic=True)
        assert chosen[:-2] == list(act[:-2]) and chosen[-1] == act[-1]  # all but the target (local here)


def test_only_the_explored_share_of_decisions_samples_and_becomes_experience():
    """explore_share: while learning, that share of decisions sample the policy and are the learner's experience;
    the others are the sticky mode, which keeps a near-tied head where it is (online.hold.sticky_mode)."""
    agent = _agent(batch_steps=1000, explore_share=0.25)
    agent.set_learning(True)
    agent.set_workload(_workload(0))
    t, learnable = 0.0, 0
    for i in range(400):
        agent.add_feedback(_fb(20.0 + i % 5), t)
        agent.decide(t)
        learnable += agent._pending.learnable
        t += 0.2
    assert 0.15 < learnable / 400 < 0.35, learnable
    agent.set_learning(False)  # hands the open segments over: only the sampled decisions, each with its log-prob
    batches = agent.take_experience()
    assert learnable - 1 <= sum(len(b) for b in batches) <= learnable  # the one in flight may not be filed yet
    assert all(np.all(b.logprobs < 0) for b in batches)
    # not learning: no decision samples; a wide margin keeps the first mode's configuration, 0 is the plain mode
    sticky = _agent(stick_margin=20.0)
    sticky.set_workload(_workload(0))
    seen = set()
    for k in range(30):
        sticky.set_workload(_workload(k))
        sticky.add_feedback(_fb(20.0 + k % 7), k * 0.2)
        seen.add(sticky.decide(k * 0.2).config.short())
        assert not sticky._pending.learnable
    assert len(seen) == 1, seen


def test_sticky_mode_keeps_a_near_tie_and_follows_a_clear_preference():
    from agra_ros.online.hold import sticky_mode

    logits = [np.array([0.0, 0.5, 3.0]), np.array([2.0, 1.2])]
    assert list(sticky_mode(logits, None, 1.0)) == [2, 0]  # no base: the mode
    assert list(sticky_mode(logits, np.array([1, 1]), 1.0)) == [2, 1]  # head 0: 2.5 nats behind, head 1: 0.8
    assert list(sticky_mode(logits, np.array([1, 1]), 0.0)) == [2, 0]  # margin 0: the plain mode
    assert list(sticky_mode(logits, np.array([7, -1]), 5.0)) == [2, 0]  # a base outside the head: the mode


def test_checkpoint_payload_roundtrip(tmp_path):
    agent = _agent()
    agent.multipliers.weights.beta = 6.5
    agent.updates = 12
    spec = CheckpointSpec("agra", agent.layout.dim, agent.nvec)
    save_checkpoint(tmp_path / "c.pt", agent.checkpoint_payload(), spec)
    other = _agent(seed=5)
    other.restore(load_checkpoint(tmp_path / "c.pt", spec))
    assert other.updates == 12 and other.multipliers.beta == 6.5
    for k, v in agent.gpn.state_dict().items():
        assert np.array_equal(v.numpy(), other.gpn.state_dict()[k].numpy())


@pytest.mark.parametrize("algorithm", ["bandit", "rule", "static"])
def test_baselines_act_and_only_the_bandit_learns(algorithm):
    agent = _agent(algorithm)
    agent.set_learning(agent.learns)
    agent.set_workload(_workload(0))
    for i in range(6):
        agent.add_feedback(_fb(15.0), 0.2 * i)
        d = agent.decide(0.2 * i)
        assert all(lv in LEVELS for lv in d.config.levels)
    if algorithm == "bandit":
        assert agent.policy.counts.sum() == 5
    assert agent.take_experience() == []
    assert agent.learns == (algorithm == "bandit")


@pytest.mark.parametrize("algorithm", ["a2c", "bandit"])
def test_learning_baselines_start_from_their_shipped_pretraining(algorithm):
    """Like agra, a2c and bandit start on the robot from the policy pretrained in the simulator that ships with the
    package (train-policy --algorithm ... --ship), on the real detector's contract."""
    path = shipped_policy_path(algorithm)
    assert path.is_file(), f"{path} is not shipped"
    agent = OnlineAgent(AgentSettings(algorithm=algorithm))
    assert agent.shipped == str(path)
    fresh = OnlineAgent(AgentSettings(algorithm=algorithm, start_from_shipped=False), agent.ref)
    if algorithm == "a2c":
        assert not torch.equal(agent.gpn.state_dict()["actor.0.weight"], fresh.gpn.state_dict()["actor.0.weight"])
    else:
        assert agent.policy.counts.sum() > 0 and fresh.policy.counts.sum() == 0
    agent.set_workload(_workload(0))
    agent.set_target(20.0)
    for i in range(3):
        agent.add_feedback(_fb(15.0), 0.2 * i)
        d = agent.decide(0.2 * i)
        assert d.source == "policy" and d.config.n_layers == agent.n_layers
        assert all(lv in LEVELS for lv in d.config.levels) and d.config.execution_target == "local"
    # and it learns on from there, as the node's learner would (every decision a sample, to fill a rollout here)
    agent.s.explore_share = 1.0
    agent.set_learning(True)
    trained = agent.policy.counts.sum() if algorithm == "bandit" else None
    for i in range(3, 21):
        agent.add_feedback(_fb(15.0), 0.2 * i)
        agent.decide(0.2 * i)
    if algorithm == "bandit":
        assert agent.policy.counts.sum() == trained + 17
    else:
        learner = OnlineLearner(
            agent.gpn.spec, agent.learner_state(), learner_settings_for("a2c", agent.layout.w_dim, rollout_steps=16)
        )
        assert learner.add(agent.take_experience()[0]) == 1
        agent.apply_learner_state(learner.state())
        assert agent.updates == 1


def test_the_state_carries_the_calibrated_slowdown_not_one_measurement():
    agent = _agent()
    agent.set_workload(_workload(0))
    slow_i = [i for i, f in enumerate(P_FIELDS) if f[0].startswith("own speed: log2")][0]
    t = 0.0
    seen = []
    tracker_s = float(tracker_latency_s(5))  # _fb reports 5 objects
    fixed = GranularityConfig.uniform("neuron-50", N_LAYERS).with_keyframe_interval(2).to_action()
    agent._act = lambda obs: (np.asarray(fixed), 0.0, None)  # one configuration throughout
    for i in range(40):  # the configuration that runs, measured alternately 1x and 4x its table latency
        agent.decide(t)
        table_ms = agent.ref.table_latency_s(agent._pending.action, tracker_s) * 1e3
        agent.add_feedback(_fb(20.0, latency_ms=table_ms * (4.0 if i % 2 else 1.0)), t + 0.1)
        t += 0.2
        seen.append(agent._pending.obs[-len(P_FIELDS) + slow_i])
    late = np.array(seen[-10:])
    assert late.std() < 0.5 and 0.3 < late.mean() < 1.7  # steady, between log2(1) and log2(4)
    agent.s.calibrate_speed = False
    agent.decide(t)
    table_s = agent.ref.table_latency_s(agent._pending.action, tracker_s)
    agent.add_feedback(_fb(20.0, latency_ms=table_s * 4e3), t + 0.1)
    agent.decide(t + 0.2)
    assert agent._pending.obs[-len(P_FIELDS) + slow_i] == pytest.approx(2.0, abs=0.05)  # raw: log2(4)


def test_remote_is_masked_until_a_server_answers_as_in_the_simulator():
    """allow_remote on, but no link measured (no server answered yet): P shows "no server" and the target head is
    masked to local, as the simulator masks it in episodes without a server; with a measured link remote is open."""
    agent = _agent(allow_remote=True)
    agent.set_workload(_workload(0))
    agent.learning = True  # sample the heads (explore_share 1.0): a random policy picks remote about half the time
    assert {agent.decide(0.2 * i).config.execution_target for i in range(40)} == {"local"}
    agent.set_link(30.0, 80.0, 0.0)
    assert "remote" in {agent.decide(10.0 + 0.2 * i).config.execution_target for i in range(40)}
    agent.set_link(math.nan, math.nan, 1.0)  # every recent request lost: no server again
    assert {agent.decide(20.0 + 0.2 * i).config.execution_target for i in range(40)} == {"local"}
