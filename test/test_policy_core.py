"""Policy core: GAE by hand, PPO improves over random, EWC penalty, prioritised memory, save/load, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from simfixtures import make_env, write_fixture_tables

from agra_ros.core.observation import InvalidObservationError
from agra_ros.core.reward import LagrangeMultipliers
from agra_ros.policy.evaluate import evaluate
from agra_ros.policy.ewc import OnlineEWC, WorkloadShift
from agra_ros.policy.gpn import build_gpn
from agra_ros.policy.memory import PrioritisedMemory
from agra_ros.policy.ppo import PPOSettings, compute_gae, policy_loss, value_loss
from agra_ros.policy.registry import POLICY_NAMES, load_policy, make_policy
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.workload.features import EMBEDDING_DIM

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_fixture_tables(tmp_path_factory.mktemp("tables"))


def test_gae_hand_computed():
    # one env, 3 steps, episode boundary before step 2 (dones[2] = 1), gamma 0.5, lambda 0.5
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [1.0], [2.0]])
    dones = np.array([[0.0], [0.0], [1.0]])
    adv, ret = compute_gae(rewards, values, dones, np.array([4.0]), np.array([0.0]), 0.5, 0.5)
    d2 = 3.0 + 0.5 * 4.0 - 2.0  # 3.0
    d1 = 2.0 + 0.0 - 1.0  # next obs starts a new episode: no bootstrap
    d0 = 1.0 + 0.5 * 1.0 - 0.5  # 1.0
    a1 = d1
    a0 = d0 + 0.25 * a1  # 1.25
    np.testing.assert_allclose(adv[:, 0], [a0, a1, d2])
    np.testing.assert_allclose(ret[:, 0], [a0 + 0.5, a1 + 1.0, d2 + 2.0])


def test_losses_clip():
    adv = torch.tensor([1.0, -1.0])
    old = torch.zeros(2)
    new = torch.log(torch.tensor([2.0, 0.5]))  # ratios 2 and 0.5, outside the clip range 0.2
    loss, approx_kl, _, clipfrac = policy_loss(new, old, adv, 0.2)
    assert float(loss) == pytest.approx(-(1.2 * 1.0 + 0.8 * -1.0) / 2)
    assert float(clipfrac) == 1.0 and float(approx_kl) > 0
    v = value_loss(torch.tensor([3.0]), torch.tensor([0.0]), torch.tensor([1.0]), 0.2)
    assert float(v) == pytest.approx(0.5 * 4.0)  # unclipped error (3-1)^2 beats clipped (0.2-1)^2


def test_short_ppo_improves_over_random(tables):
    env = make_env(tables, max_steps=32)
    rng = np.random.default_rng(0)

    class Random:
        def act(self, obs):
            return rng.integers(0, env.action_space.nvec)

    random_return = evaluate(Random(), env, episodes=3).mean_return
    trainer = PPOTrainer(
        [lambda: make_env(tables, max_steps=32)] * 4,
        PPOSettings(total_timesteps=6144, num_envs=4, num_steps=64, seed=0, hidden=64),
    )
    result = trainer.train()
    agra = make_policy("agra", env=env, hidden=64)
    agra.gpn = result.gpn
    learned = evaluate(agra, env, episodes=3).mean_return
    assert learned > random_return + 0.3 * abs(random_return), (learned, random_return)
    assert "losses/approx_kl" in result.metrics and "charts/episodic_return" in result.metrics


def test_ewc_penalty_zero_at_anchor_grows_away():
    gpn = build_gpn(10, [3, 2], hidden=16, seed=0)
    ewc = OnlineEWC(strength=10.0, decay=0.5, fisher_samples=32)
    assert ewc.penalty(gpn).item() == 0.0 and not ewc.ready
    states = np.random.default_rng(0).normal(size=(32, 10)).astype(np.float32)
    ewc.consolidate(gpn, states)
    assert ewc.penalty(gpn).item() == pytest.approx(0.0, abs=1e-12)
    assert all(float(f.sum()) > 0 for f in ewc.fisher)
    penalties = []
    for eps in (0.01, 0.1, 1.0):
        moved = build_gpn(10, [3, 2], hidden=16, seed=0)
        with torch.no_grad():
            for p in moved.policy_parameters():
                p.add_(eps)
        penalties.append(ewc.penalty(moved).item())
    assert 0 < penalties[0] < penalties[1] < penalties[2]
    old = [f.clone() for f in ewc.fisher]
    ewc.consolidate(gpn, states, seed=1)  # online: decayed old Fisher plus the new estimate
    assert all(torch.all(n >= 0.5 * o - 1e-9) for n, o in zip(ewc.fisher, old))


def test_ewc_fisher_is_scale_free():
    # the raw Fisher's scale depends on the policy (how sharp its heads are); normalised, both have mean 1, so one
    # strength means the same pull for both (the raw Fisher of a trained GPN made strength 500 a no-op)
    states = np.random.default_rng(1).normal(size=(64, 10)).astype(np.float32)
    means = []
    for gain in (1.0, 1000.0):
        gpn = build_gpn(10, [3, 2], hidden=16, seed=0)
        with torch.no_grad():
            gpn.actor[-1].weight.mul_(gain)  # sharpen the heads: a near-deterministic policy
        raw = OnlineEWC(normalise_fisher=False).estimate_fisher(gpn, states, torch.Generator().manual_seed(0))
        ewc = OnlineEWC(strength=1.0)
        ewc.consolidate(gpn, states)
        n = sum(f.numel() for f in ewc.fisher)
        assert sum(float(f.sum()) for f in ewc.fisher) / n == pytest.approx(1.0, rel=1e-5)
        means.append(sum(float(f.sum()) for f in raw) / n)
    assert abs(np.log10(means[1] / means[0])) > 1.0  # the raw scale differs by more than 10x
    state = ewc.state_dict()
    again = OnlineEWC(normalise_fisher=False)
    again.load_state_dict(state)
    assert again.normalise_fisher


def test_ppo_standardises_input_and_keeps_a_handed_in_normaliser(tables):
    # near-constant inputs (W's embedding entries) must be centred, or the actor saturates and ignores the state
    fns = [lambda: make_env(tables, max_steps=32)] * 2
    settings = PPOSettings(total_timesteps=128, num_envs=2, num_steps=64, seed=0, hidden=16)
    trainer = PPOTrainer(fns, settings)
    trainer.train()
    gpn = trainer.gpn
    obs = np.stack([make_env(tables).reset(seed=i)[0] for i in range(16)])
    assert float(gpn.obs_mean.abs().sum()) > 0
    z = gpn._norm(torch.as_tensor(obs))
    assert float(z[:, :EMBEDDING_DIM].mean(0).abs().max()) < 1.0  # the embedding block is centred
    mean, std = gpn.obs_mean.clone(), gpn.obs_std.clone()
    PPOTrainer(fns, settings, gpn=gpn).train()
    assert torch.equal(gpn.obs_mean, mean) and torch.equal(gpn.obs_std, std)


def test_workload_shift_detector():
    det = WorkloadShift(threshold=0.3, warmup=10)
    a, b = np.ones(8), -np.ones(8)
    assert not any(det.update(a) for _ in range(50))
    assert any(det.update(b) for _ in range(50))


def test_memory_samples_by_priority():
    mem = PrioritisedMemory(capacity=4, obs_dim=2, action_dim=1, seed=0)
    mem.add(np.zeros((4, 2)) + np.arange(4)[:, None], np.zeros((4, 1)), np.array([0.0, 0.0, 0.0, -10.0]))
    obs, _, rew = mem.sample(2000)
    assert np.mean(rew == -10.0) > 0.9
    mem.add(np.full((1, 2), 9.0), np.zeros((1, 1)), np.array([5.0]))  # full: replaces a low-priority entry
    assert len(mem) == 4 and 5.0 in mem.rewards and -10.0 in mem.rewards
    with pytest.raises(ValueError):
        mem.add(np.full((1, 2), np.nan), np.zeros((1, 1)), np.array([1.0]))


def test_lagrange_multipliers_dual_ascent():
    lm = LagrangeMultipliers()
    b0, g0 = lm.beta, lm.gamma
    lm.update(np.full(10, 0.2), np.zeros(10))
    assert lm.beta > b0 and lm.gamma < g0
    # beta prices the share of steps that miss the target: 1 of 100 missing is within the allowed rate
    b1 = lm.beta
    lm.update(np.r_[np.zeros(99), 0.5], np.zeros(100))
    assert lm.beta < b1
    lm.update(np.r_[np.zeros(80), np.full(20, 0.05)], np.zeros(100))  # 20 % of steps miss by 5 %
    assert lm.beta > b1 + 0.2
    with pytest.raises(ValueError, match="NaN"):
        lm.update(np.array([0.0, np.nan]), np.zeros(2))


@pytest.mark.parametrize("name", [n for n in POLICY_NAMES if n != "oracle"])
def test_policies_save_load_and_reject_bad_obs(tables, tmp_path, name):
    env = make_env(tables)
    obs, _ = env.reset(seed=0)
    pol = make_policy(name, env=env)
    a = pol.act(obs)
    assert env.action_space.contains(np.asarray(a, dtype=np.int64))
    path = tmp_path / f"{name}.pt"
    pol.save(path)
    other = make_policy(name, env=env)
    other.load(path)
    if hasattr(other, "reset"):
        other.reset(), pol.reset()
    np.testing.assert_array_equal(other.act(obs), pol.act(obs))
    loaded = load_policy(path, env)  # the kind the file names
    assert loaded.name == name
    if hasattr(loaded, "reset"):
        loaded.reset(), pol.reset()
    np.testing.assert_array_equal(loaded.act(obs), pol.act(obs))
    bad = obs.copy()
    bad[3] = np.nan
    for wrong in (bad, obs[:-1], np.full_like(obs, 1e6)):
        with pytest.raises(InvalidObservationError):
            pol.act(wrong)
    with pytest.raises(ValueError):
        make_policy("static" if name != "static" else "rule", env=env).load(path)
    assert issubclass(InvalidObservationError, ValueError)


def test_bandit_refuses_a_table_for_another_detector(tables, tmp_path):
    env = make_env(tables)
    path = tmp_path / "bandit.pt"
    make_policy("bandit", env=env).save(path)
    other = make_policy("bandit", layout=env.layout, n_layers=env.n_layers + 1)
    with pytest.raises(ValueError, match="layers"):
        other.load(path)
