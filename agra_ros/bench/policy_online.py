"""Online adaptation in the simulator: from the shipped policy on the held-out profile, online PPO + EWC through the
on-robot learner's code path, the return against the oracle's over simulated minutes, then how much of the shipped
policy's skill is kept back on a shipped profile, with and without EWC. The adapted policies are measured and
thrown away; the robot's own learning is :mod:`agra_ros.online`."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from agra_ros.bench.policy_common import RandomPolicy, plot_curves
from agra_ros.policy.evaluate import evaluate
from agra_ros.policy.registry import GPNPolicy, load_policy, make_policy, shipped_policy_path
from agra_ros.progress import echo, progress
from agra_ros.sim.env import AgraEnv
from agra_ros.sim.randomise import HELDOUT_PROFILE

DECISION_PERIOD_S = 0.2
"""Seconds between decisions on the robot (policy_node's default decision_rate_hz of 5): simulated minutes of online
adaptation are counted in these."""


def decision_count(minutes: float) -> int:
    """Decisions in ``minutes`` of simulated time, one every :data:`DECISION_PERIOD_S`."""
    return int(round(minutes * 60 / DECISION_PERIOD_S))


def adapt_online(
    start: GPNPolicy,
    device: str,
    minutes: float,
    ewc: bool,
    evaluate_every_min: float,
    score: Callable[[GPNPolicy], float],
    trace: str = "train_mix",
    seed: int = 0,
    learning_rate: float | None = None,
    bar=None,
) -> tuple[GPNPolicy, list[tuple[float, float]]]:
    """Online PPO (+ EWC) on ``device`` from ``start``, through the on-robot learner's code path.

    Acting is what :class:`agra_ros.online.agent.OnlineAgent` does while learning (sample from the GPN, local
    execution, the log-probability of the action that runs); experience goes in batches of 16 decisions to
    :meth:`agra_ros.online.learner.OnlineLearner.add` with the settings policy_node gives its learner process
    (:func:`agra_ros.online.agent.learner_settings_for`), and the acting weights are replaced after every update,
    as the node does. One decision per :data:`DECISION_PERIOD_S` of simulated time on an endless episode of
    ``trace``. Returns the adapted policy and (simulated minutes, ``score(policy)``) every ``evaluate_every_min``.
    ``learning_rate`` overrides the node's (an experiment; policy_node keeps its default). ``bar`` (a
    :func:`agra_ros.progress.progress`) counts the decisions.
    """
    from agra_ros.online.agent import learner_settings_for
    from agra_ros.online.experience import ExperienceBatch
    from agra_ros.online.learner import OnlineLearner
    from agra_ros.online.learner_settings import LearnerState
    from agra_ros.online.serialise import ewc_to_numpy, gpn_state_to_numpy, load_numpy_state

    acting = copy.deepcopy(start.gpn)
    settings = learner_settings_for("agra", start.layout.w_dim, seed=seed)
    if not ewc:
        settings = replace(settings, ewc=False)
    if learning_rate is not None:
        settings = replace(settings, ppo=replace(settings.ppo, learning_rate=learning_rate))
    anchor = ewc_to_numpy(start.ewc) if (ewc and start.ewc is not None) else None
    learner = OnlineLearner(
        acting.spec, LearnerState(gpn_state_to_numpy(acting), start.multipliers.state_dict(), anchor), settings
    )
    decisions = decision_count(minutes)
    every = max(1, int(round(evaluate_every_min * 60 / DECISION_PERIOD_S)))
    env = AgraEnv(trace=trace, device=device, allow_remote=False, dt_s=DECISION_PERIOD_S, max_steps=decisions + 1)
    obs, _ = env.reset(seed=seed)
    policy = GPNPolicy("agra", start.layout, start.n_layers, gpn=acting)
    curve = [(0.0, score(policy))]
    rows: list[tuple] = []
    for t in range(decisions):
        x = torch.as_tensor(obs, dtype=torch.float32)[None]
        with torch.no_grad():
            a, _, _, _ = acting.get_action_and_value(x)
            a[..., env.n_layers + 1] = 0  # local execution, as the node without a remote perception node
            _, logprob, _, _ = acting.get_action_and_value(x, a)
        action = a[0].numpy().astype(np.int64)
        next_obs, _, _, _, info = env.step(action)
        rows.append((obs, action, float(logprob[0]), info))
        obs = next_obs
        if len(rows) == 16:
            batch = ExperienceBatch(
                obs=np.stack([r[0] for r in rows]).astype(np.float32),
                actions=np.stack([r[1] for r in rows]),
                logprobs=np.array([r[2] for r in rows], dtype=np.float32),
                energy_norm=np.array([r[3]["energy_norm"] for r in rows]),
                fps_shortfall=np.array([r[3]["fps_shortfall"] for r in rows]),
                accuracy_loss=np.array([r[3]["accuracy_loss"] for r in rows]),
                switch=np.array([r[3]["switch"] for r in rows]),
                next_obs=np.asarray(obs, dtype=np.float32),
                starts=np.array([1.0 if (t < 16 and i == 0) else 0.0 for i in range(16)]),
            )
            rows = []
            if learner.add(batch):
                load_numpy_state(acting, learner.state().policy)
        if (t + 1) % every == 0:
            curve.append(((t + 1) * DECISION_PERIOD_S / 60, score(policy)))
        if bar is not None:
            bar.update()
    policy.multipliers.load_state_dict(learner.multipliers.state_dict())
    return policy, curve


def bench_online(
    policy: str | None = None,
    device: str = HELDOUT_PROFILE,
    back_to: str = "jetson_nano_maxn",
    minutes: float = 30.0,
    episodes: int = 3,
    seed: int = 0,
    out_dir: Path | None = None,
    learning_rate: float | None = None,
) -> dict[str, float]:
    """From the shipped policy on ``device``: online PPO + EWC for ``minutes`` of simulated time, return on the
    held-out trace against the oracle's; then back on ``back_to``, the share of the shipped policy's improvement
    over random that is kept, with and without EWC."""
    path = Path(policy) if policy else shipped_policy_path()
    start = load_policy(path)
    env_new = AgraEnv(trace="heldout_rel", device=device, allow_remote=False)
    env_old = AgraEnv(trace="heldout_rel", device=back_to, allow_remote=False)

    def ret(pol, env) -> float:
        return evaluate(pol, env, episodes=episodes, seed=20_000).mean_return

    r_oracle = ret(make_policy("oracle", env=env_new), env_new)
    out = {
        "oracle_new": r_oracle,
        "start_new": ret(start, env_new),
        "random_old": ret(RandomPolicy(env_old, seed), env_old),
        "start_old": ret(start, env_old),
    }
    curves: dict[str, list[tuple[float, float]]] = {}
    t0 = time.time()
    decisions = decision_count(minutes)
    bar = progress(total=2 * decisions, desc="bench online", unit="decision")  # with EWC, then without
    for use_ewc in (True, False):
        tag = "ewc" if use_ewc else "no_ewc"
        adapted, curve = adapt_online(
            start,
            device,
            minutes,
            use_ewc,
            2.0,
            lambda p: r_oracle / ret(p, env_new),
            seed=seed,
            learning_rate=learning_rate,
            bar=bar,
        )
        curves[f"{device}, {tag}"] = curve
        out[f"new_after_{tag}"] = ret(adapted, env_new)
        out[f"old_after_{tag}"] = ret(adapted, env_old)
        out[f"kept_{tag}"] = (out[f"old_after_{tag}"] - out["random_old"]) / (out["start_old"] - out["random_old"])
        reached = [m for m, v in curve if v >= 0.95]
        out[f"minutes_to_95_{tag}"] = reached[0] if reached else float("nan")
        echo(f"  {tag}: {minutes:g} simulated minutes in {time.time() - t0:.0f} s")
        for m, v in curve:
            echo(f"    {m:5.1f} min  oracle/return {v:.3f}")
    bar.close()
    print(f"online adaptation on {device} from {path}, then back on {back_to} (held-out trace, {episodes} episodes)")
    for k, v in out.items():
        print(f"  {k:22s} {v:9.3f}")
    if out_dir is not None:
        plot_curves(
            curves,
            out_dir / "policy_online.png",
            f"Online PPO + EWC on {device} from the shipped policy",
            ylabel="oracle return / return (held-out trace)",
            xlabel="simulated minutes on the robot (5 decisions/s)",
            goal=0.95,
        )
    return out
