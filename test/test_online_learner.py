"""The background learner: PPO on on-robot experience learns, runs in its own process, and survives being killed."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from agra_ros.core.reward import RewardWeights
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_process import LearnerSupervisor
from agra_ros.online.learner_settings import LearnerSettings, LearnerState, online_ppo_settings
from agra_ros.online.serialise import gpn_state_to_numpy
from agra_ros.policy.gpn import build_gpn

OBS_DIM, NVEC = 6, (5, 3)


def _state(seed: int = 0) -> tuple:
    gpn = build_gpn(OBS_DIM, NVEC, hidden=32, seed=seed)
    st = LearnerState(policy=gpn_state_to_numpy(gpn), lagrange={"alpha": 1.0, "beta": 4.0, "gamma": 8.0})
    return gpn.spec, st


def _rollout(gpn, n: int, rng: np.random.Generator) -> ExperienceBatch:
    """Decisions of ``gpn`` in a toy world: head 0 at index 0 misses the FPS target, higher indices cost energy."""
    obs = rng.normal(size=(n + 1, OBS_DIM)).astype(np.float32)
    with torch.no_grad():
        a, logp, _, _ = gpn.get_action_and_value(torch.as_tensor(obs[:n]))
    a = a.numpy()
    return ExperienceBatch(
        obs=obs[:n],
        actions=a,
        logprobs=logp.numpy(),
        energy_norm=0.05 * a[:, 0].astype(np.float64),
        fps_shortfall=(a[:, 0] == 0).astype(np.float64),
        accuracy_loss=np.zeros(n),
        switch=np.zeros(n),
        next_obs=obs[n],
        starts=np.zeros(n),
    )


def test_online_ppo_moves_the_policy_away_from_missing_the_target():
    spec, st = _state()
    learner = OnlineLearner(
        spec, st, LearnerSettings(online_ppo_settings(num_steps=64, learning_rate=3e-3), ewc=False, w_dim=0)
    )
    rng = np.random.default_rng(0)
    probe = torch.as_tensor(rng.normal(size=(256, OBS_DIM)).astype(np.float32))

    def p_miss() -> float:
        with torch.no_grad():
            return float(torch.softmax(learner.gpn.logits(probe)[0], -1)[:, 0].mean())

    before = p_miss()
    for _ in range(25):
        learner.add(_rollout(learner.gpn, 32, rng))
    after = p_miss()
    assert learner.updates >= 12
    assert after < 0.5 * before, f"P(missing the target) {before:.3f} -> {after:.3f}"
    assert learner.multipliers.beta > 4.0 or learner.metrics["charts/fps_shortfall"] < 0.05
    state = learner.state()
    assert state.updates == learner.updates and set(state.policy) == set(learner.gpn.state_dict())


def test_experience_is_validated():
    spec, st = _state()
    learner = OnlineLearner(spec, st, LearnerSettings(online_ppo_settings(num_steps=8)))
    b = _rollout(learner.gpn, 4, np.random.default_rng(1))
    b.energy_norm[0] = np.nan
    with pytest.raises(ValueError, match="energy_norm"):
        learner.add(b)
    b = _rollout(learner.gpn, 4, np.random.default_rng(1))
    b.actions = b.actions[:, :1]
    with pytest.raises(ValueError, match="actions"):
        learner.add(b)


def test_learner_state_resumes_weights_and_multipliers():
    spec, st = _state(seed=3)
    st.lagrange = {"alpha": 1.0, "beta": 7.5, "gamma": 2.0}
    st.updates = 41
    learner = OnlineLearner(spec, st, LearnerSettings())
    assert learner.multipliers.weights == RewardWeights(1.0, 7.5, 2.0)
    assert learner.updates == 41
    for k, v in st.policy.items():
        np.testing.assert_array_equal(learner.gpn.state_dict()[k].numpy(), v)


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_supervisor_learns_in_a_child_and_restarts_it_after_sigkill():
    spec, st = _state()
    gpn = build_gpn(OBS_DIM, NVEC, hidden=32, seed=0)
    events: list[tuple[str, str]] = []
    sup = LearnerSupervisor(
        spec, st, LearnerSettings(online_ppo_settings(num_steps=16), nice=0), log=lambda lv, t: events.append((lv, t))
    )
    rng = np.random.default_rng(0)
    try:
        sup.start()
        first_pid = sup.pid
        assert first_pid is not None and first_pid != os.getpid()
        for _ in range(4):
            assert sup.submit(_rollout(gpn, 8, rng))
        assert _wait(lambda: sup.poll() is not None or sup.latest.updates >= 2, 60), events
        assert sup.latest.updates >= 1
        got = sup.latest.updates

        os.kill(first_pid, signal.SIGKILL)
        assert _wait(lambda: (sup.poll(), sup.status == "running" and sup.pid not in (None, first_pid))[1], 30), events
        assert sup.restarts == 1
        assert any("died" in t and "signal 9" in t for lv, t in events if lv == "error"), events
        # the new learner starts from the last state it handed back, and keeps learning
        for _ in range(4):
            sup.submit(_rollout(gpn, 8, rng))
        assert _wait(lambda: (sup.poll(), sup.latest.updates > got)[1], 60), events
    finally:
        sup.stop()
    assert sup.pid is None and sup.status == "stopped"


def test_supervisor_reports_a_crashing_learner_and_backs_off():
    spec, st = _state()
    st.policy = {k: v for k, v in st.policy.items() if not k.startswith("critic")}  # unloadable: the child raises
    events: list[tuple[str, str]] = []
    sup = LearnerSupervisor(
        spec, st, LearnerSettings(nice=0), log=lambda lv, t: events.append((lv, t)), backoff_s=(5.0, 30.0)
    )
    try:
        sup.start()
        assert _wait(lambda: (sup.poll(), sup.restarts >= 1 and sup.status == "running")[1], 60), events
        assert _wait(lambda: (sup.poll(), sup.status == "restarting")[1], 60), events
        assert "Missing key" in sup.last_error or "critic" in sup.last_error, sup.last_error
        assert any("restarting it in 5 s" in t for _, t in events), events
        assert not sup.submit(_rollout(build_gpn(OBS_DIM, NVEC, hidden=32), 4, np.random.default_rng(0)))
        assert sup.dropped_batches == 1
    finally:
        sup.stop()


def _sigint_ignored_in(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        ign = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    return bool(ign & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_learner_ignores_ctrl_c_and_stop_is_bounded_and_keeps_the_last_state():
    """A terminal's Ctrl-C reaches the learner too (same process group): it must not die of it with a traceback, the
    node stops it. stop() keeps the last state handed back and returns within launch's SIGINT window."""
    spec, st = _state()
    gpn = build_gpn(OBS_DIM, NVEC, hidden=32, seed=0)
    sup = LearnerSupervisor(spec, st, LearnerSettings(online_ppo_settings(num_steps=16), nice=0))
    rng = np.random.default_rng(1)
    before = signal.getsignal(signal.SIGINT)
    try:
        sup.start()
        pid = sup.pid
        assert pid is not None and _sigint_ignored_in(pid), "the learner starts with SIGINT ignored"
        assert signal.getsignal(signal.SIGINT) is before, "the node's own handler is back"
        os.kill(pid, signal.SIGINT)
        for _ in range(4):
            assert sup.submit(_rollout(gpn, 8, rng))
        assert _wait(lambda: (sup.poll(), sup.latest.updates >= 1)[1], 60)
        assert sup.pid == pid and sup.restarts == 0, "SIGINT did not end the learner"
        for _ in range(8):  # more work in flight when it is told to stop
            sup.submit(_rollout(gpn, 8, rng))
    finally:
        t0 = time.monotonic()
        sup.stop()
        took = time.monotonic() - t0
    assert sup.status == "stopped" and sup.pid is None
    assert took < 4.0, f"stop took {took:.1f} s"
    assert sup.latest.updates >= 1
