"""Distilling the oracle into the policy's actor (``agra-ros distil-policy``): the labels are the oracle's, fitting
learns them, a run resumes by round and keeps the best round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agra_ros.policy.registry import make_policy
from agra_ros.sim.env import AgraEnv
from agra_ros.training import imitation

SIM = {"device": "x86_generic", "allow_remote": False}


def _fresh_policy():
    return make_policy("agra", env=AgraEnv(trace="default", **SIM), seed=3)


def test_collected_labels_are_the_oracles_actions_on_the_states_visited():
    policy = _fresh_policy()
    x, y = imitation.collect(policy, 24, beta=1.0, seed=5, sim=SIM, traces=("default",))
    assert x.shape == (24, policy.layout.dim) and y.shape == (24, len(policy.gpn.nvec))
    env = AgraEnv(trace="default", **SIM)  # beta 1: the oracle drove, so replaying its actions visits the same states
    oracle = make_policy("oracle", env=env)
    obs, _ = env.reset(seed=5 * 100_000)
    oracle.bind(env)
    for i in range(24):
        np.testing.assert_allclose(obs, x[i], rtol=1e-6)
        actions, rewards = oracle.scored_actions()
        label = np.flatnonzero((actions == y[i]).all(axis=1))
        assert label.size == 1 and rewards[label[0]] == rewards.max()  # tolerance 0: a best action
        obs, *_ = env.step(y[i])
    assert ((y >= 0) & (y < np.asarray(policy.gpn.nvec))).all()


def test_fitting_the_actor_learns_the_oracles_choices():
    policy = _fresh_policy()
    x, y = imitation.collect(policy, 96, beta=0.5, seed=1, sim=SIM, traces=("default", "trace_a"))
    with torch.no_grad():
        before = float(np.mean([(lg.argmax(-1).numpy() == y[:, h]).mean()
                                for h, lg in enumerate(policy.gpn.logits(torch.as_tensor(x)))]))  # fmt: skip
    after = imitation.fit_actor(policy, x, y, epochs=60, lr=3e-3, seed=0)
    assert after >= 0.9 and after > before + 0.2, (before, after)


def test_a_run_resumes_by_round_and_ships_the_best_round(tmp_path):
    policy = _fresh_policy()
    start = {k: v.clone() for k, v in policy.gpn.actor.state_dict().items()}
    scores = iter([0.8, 0.7, 0.6])  # the start scores best: every round is worse
    run = lambda p, rounds: imitation.distil(  # noqa: E731
        p, tmp_path, rounds, 16, 2, SIM, ("default",), lambda _p: next(scores), seed=0
    )
    state = run(policy, 1)
    assert state["round"] == 1 and len(state["x"]) == 16 and state["best"]["round"] == -1
    again = _fresh_policy()
    state = run(again, 2)  # resumes after round 1: one more round, 16 more states
    assert state["round"] == 2 and len(state["x"]) == 32 and [r["round"] for r in state["rounds"]] == [0, 1]
    for k, v in again.gpn.actor.state_dict().items():  # the best (the start) is what the policy holds
        assert torch.equal(v, start[k]), k
    (tmp_path / "distil.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="cannot read"):
        run(_fresh_policy(), 3)


def test_the_label_is_the_near_best_action_closest_to_the_policys_own():
    env = AgraEnv(trace="default", **SIM)
    oracle = make_policy("oracle", env=env)
    oracle.bind(env)
    env.reset(seed=2)
    actions, rewards = oracle.scored_actions()
    best = actions[int(np.argmax(rewards))]
    assert (imitation.near_best_label(oracle, best, 0.0) == best).all()
    order = np.argsort(-rewards)
    runner_up = actions[order[1]]  # within tolerance of the best: the policy's own choice stays the label
    gap = float(rewards[order[0]] - rewards[order[1]])
    assert (imitation.near_best_label(oracle, runner_up, gap + 1e-9) == runner_up).all()
    far = imitation.near_best_label(oracle, runner_up, max(gap - 1e-9, 0.0))
    assert rewards[np.flatnonzero((actions == far).all(axis=1))[0]] > rewards[order[1]] or gap == 0.0


def test_labels_for_a_slower_device_restore_the_simulator_afterwards():
    env = AgraEnv(trace="default", **SIM)
    oracle = make_policy("oracle", env=env)
    oracle.bind(env)
    env.reset(seed=4)
    before = dict(env.ctx)
    _, rewards = oracle.scored_actions()
    with imitation.slower_device(env, 0.5):
        assert env.ctx["local_mult"] == pytest.approx(1.5 * before["local_mult"])
        _, slow = oracle.scored_actions()
    assert env.ctx == before
    assert slow.max() <= rewards.max()  # a slower device cannot do better
    with pytest.raises(RuntimeError), imitation.slower_device(env, 0.5):
        raise RuntimeError("restored even when the block fails")
    assert env.ctx == before


@pytest.mark.parametrize("content", [None, b"", b"not a checkpoint"])
def test_a_missing_empty_or_corrupt_start_policy_is_one_line_and_exit_2(tmp_path, capsys, content):
    start = tmp_path / "policy.pt"
    if content is not None:
        start.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        imitation.main(["--policy", str(start), "--run", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and str(start) in err, err
    assert not (tmp_path / "run" / "policy_agra.pt").exists()
