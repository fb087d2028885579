"""Run a policy through simulator episodes and summarise what it did (return, FPS attainment, system energy per
frame)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from agra_ros.core.reward import RewardWeights, target_met


@dataclass
class EvalResult:
    mean_return: float
    returns: list[float]
    target_met: float
    """Share of decisions that met the target FPS (:func:`agra_ros.core.reward.target_met`)."""
    system_energy_per_frame_j: float
    """Mean system energy per frame (:func:`agra_ros.core.reward.system_energy_per_frame_j`)."""
    accuracy_ratio: float
    mean_fps_shortfall: float
    remote_share: float


def met_target(info: dict[str, Any]) -> bool:
    """Whether a decision met the target FPS (:func:`agra_ros.core.reward.target_met`, the rule of every benchmark)."""
    return bool(target_met(info["fps"], info["target_fps"]))


def rollout(
    policy, env, seeds: Iterable[int], decisions: int | None = None
) -> Iterator[tuple[int, float, dict[str, Any]]]:
    """Greedy steps of ``policy`` (anything with ``act(obs)``; oracles get ``bind(env)``; stateful ones
    ``reset()`` at every episode) over one episode per seed, yielding ``(episode index, reward, info)`` per
    decision; with ``decisions``, stops after that many decisions in all (``seeds`` may then be endless)."""
    if hasattr(policy, "bind"):
        policy.bind(env)
    n = 0
    for ep, seed in enumerate(seeds):
        if decisions is not None and n >= decisions:
            return
        if hasattr(policy, "reset"):
            policy.reset()
        obs, _ = env.reset(seed=int(seed))
        done = False
        while not done and (decisions is None or n < decisions):
            obs, r, term, trunc, info = env.step(policy.act(obs))
            n += 1
            yield ep, float(r), info
            done = term or trunc


def evaluate(policy, env, episodes: int = 3, seed: int = 1000, weights: RewardWeights | None = None) -> EvalResult:
    """Greedy rollouts (:func:`rollout`) of ``policy`` over ``episodes`` episodes seeded ``seed``, ``seed + 1``, ...
    ``weights``: score with other reward weights than the env's (from the info terms)."""
    rets = [0.0] * episodes
    met, energy, acc, short, remote = [], [], [], [], []
    for ep, r, info in rollout(policy, env, range(seed, seed + episodes)):
        if weights is not None:
            r = (
                -weights.alpha * info["energy_norm"]
                - weights.beta * info["fps_shortfall"]
                - weights.gamma * info["accuracy_loss"]
                - weights.delta * info.get("switch", 0.0)
            )
        rets[ep] += float(r)
        met.append(met_target(info))
        energy.append(info["system_energy_per_frame_j"])
        acc.append(info["accuracy_ratio"])
        short.append(info["fps_shortfall"])
        remote.append(info["remote"])
    return EvalResult(
        float(np.mean(rets)),
        rets,
        float(np.mean(met)),
        float(np.mean(energy)),
        float(np.mean(acc)),
        float(np.mean(short)),
        float(np.mean(remote)),
    )
