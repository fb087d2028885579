"""The contract between simulator and robot: one observation builder, one reward function, device randomisation,
and learning on a slow device."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from simfixtures import FIXTURE_DEVICE, make_env, write_fixture_tables

import agra_ros.core.reward as core_reward
import agra_ros.online.agent as online_agent
import agra_ros.sim.env as sim_env
from agra_ros.core.observation import P_FIELDS
from agra_ros.core.reward import agreement_calibration
from agra_ros.device.profiles import available_profiles
from agra_ros.online.agent import AgentSettings, OnlineAgent
from agra_ros.online.inputs import Feedback
from agra_ros.sim.randomise import HELDOUT_PROFILE, TRAINING_PROFILES, DeviceRandomisation
from agra_ros.workload.features import EMBEDDING_DIM, WorkloadFeatures

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_fixture_tables(tmp_path_factory.mktemp("tables"))


def _robot_feedback(info: dict) -> Feedback:
    """What perception would report for the simulated decision (the agreement before its calibration)."""
    a, b = agreement_calibration()
    agreement = min(1.0, (info["accuracy_ratio"] - a) / b)
    return Feedback(info["fps"], info["latency_s"] * 1e3, 0.0, info["power_w"], agreement, int(info["objects"]), 0.6)


def test_robot_and_simulator_build_the_same_state_and_reward_terms(tables):
    """The agent fed what the simulator's device did builds the simulator's P and D blocks and its reward terms."""
    env = make_env(tables, allow_remote=False, link_noise=False)
    obs, _ = env.reset(seed=5)
    env.action_space.seed(0)
    # calibrate_speed off: the simulator's slowdown is each decision's exact one (the calibration smooths it)
    agent = OnlineAgent(AgentSettings(start_from_shipped=False, calibrate_speed=False), env.contract)
    _, d_sl, p_sl = env.layout.slices()
    rng = np.random.default_rng(0)
    agent.set_workload(WorkloadFeatures(rng.normal(size=EMBEDDING_DIM).astype(np.float32), 0.3, 3, 0.6, 2.0))
    checked = 0
    for _ in range(40):
        action = env.action_space.sample()
        action[-2] = 0  # local (the last head is the keyframe interval)
        agent._act = lambda o, a=action: (a.copy(), 0.0, None)  # the robot runs what the simulator ran
        agent.set_target(float(obs[p_sl][0] * 60.0))
        agent.set_device(obs[d_sl], None, False)
        d = agent.decide(float(checked))
        robot_obs = agent._pending.obs
        np.testing.assert_allclose(robot_obs[p_sl], obs[p_sl], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(robot_obs[d_sl], obs[d_sl], rtol=1e-6)
        obs, _, _, _, info = env.step(action)
        agent.add_feedback(_robot_feedback(info), float(checked) + 0.5)
        if d.terms:
            checked += 1
        prev_info = info
    d = agent.decide(99.0)
    for k in ("energy_norm", "fps_shortfall", "accuracy_loss"):
        assert d.terms[k] == pytest.approx(float(prev_info[k]), rel=1e-5, abs=1e-7), k
    assert checked >= 38
    assert len(P_FIELDS) == len(obs[p_sl])


def test_both_sides_import_the_one_reward_function():
    assert sim_env.reward_terms is core_reward.reward_terms
    assert online_agent.reward_terms is core_reward.reward_terms
    assert sim_env.system_energy_per_frame_j is core_reward.system_energy_per_frame_j
    assert online_agent.system_energy_per_frame_j is core_reward.system_energy_per_frame_j


def test_randomised_devices_are_valid_vary_and_never_the_held_out_one(tables):
    assert HELDOUT_PROFILE in available_profiles()
    assert HELDOUT_PROFILE not in TRAINING_PROFILES
    assert set(TRAINING_PROFILES) <= set(available_profiles())
    rng = np.random.default_rng(0)
    draws = [DeviceRandomisation().sample(rng) for _ in range(200)]
    speeds = np.array([p.speed for p, _ in draws])
    assert speeds.min() < 0.1 and speeds.max() > 1.2  # from below a Nano in 5 W mode to above the laptop
    assert all(0 < p.p_idle_w < p.p_max_w and p.cores >= 1 for p, _ in draws)
    assert all(p.name.rstrip("~") in TRAINING_PROFILES for p, _ in draws)
    loads = np.array([b for _, b in draws])
    assert loads.min() < 0.05 and loads.max() > 0.4

    rand = DeviceRandomisation(profiles=("jetson_nano_5w", "x86_generic"))
    env = make_env(tables, randomise_device=rand, allow_remote=False)
    check_env(env, skip_render_check=True)
    slowdowns = set()
    full = np.zeros(env.action_space.shape, dtype=np.int64)
    for seed in range(8):
        env.reset(seed=seed)
        obs, *_ = env.step(full)
        slowdowns.add(round(float(obs[env.layout.slices()[2]][6]), 1))  # log2(latency / table latency)
    assert max(slowdowns) - min(slowdowns) > 2.0  # the own-speed state tells a Nano from a laptop


def test_short_training_on_a_slow_profile_improves_fps_met(tables):
    """A policy that runs the detector as shipped (``full`` everywhere, as a policy fit to a fast device does) misses
    the targets on a slow device; a short PPO run with dual ascent there learns to meet most of them."""
    from agra_ros.policy.evaluate import evaluate
    from agra_ros.policy.gpn import build_gpn
    from agra_ros.policy.ppo import PPOSettings
    from agra_ros.policy.registry import GPNPolicy
    from agra_ros.policy.trainer import PPOTrainer

    slow = replace(FIXTURE_DEVICE, name="slow_fixture", speed=0.3)

    def make():
        return make_env(tables, device=slow, allow_remote=False, max_steps=64)

    env = make()
    gpn = build_gpn(env.layout.dim, env.action_space.nvec, 64, seed=0)
    with torch.no_grad():  # prefer the first choice of every head: full, native scale, local
        firsts = np.cumsum([0, *gpn.nvec[:-1]])
        gpn.actor[-1].bias[torch.as_tensor(firsts)] = 2.0
    # 24 updates: with the keyframe-interval head the first 12 move no head's arg-max yet (measured: 0.37 -> 0.37;
    # 24 updates: 0.37 -> 0.89)
    settings = PPOSettings(total_timesteps=8 * 64 * 24, num_envs=8, num_steps=64, seed=0, dual_ascent=True, hidden=64)
    trainer = PPOTrainer([make] * settings.num_envs, settings, gpn=gpn)
    before = evaluate(GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn), env, episodes=3, seed=500)
    trainer.train()
    after = evaluate(GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn), env, episodes=3, seed=500)
    assert before.target_met < 0.5
    assert after.target_met >= before.target_met + 0.3, (before.target_met, after.target_met)
