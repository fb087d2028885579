"""Run a policy through simulator episodes and summarise what it did (return, FPS attainment, energy per frame)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agra_ros.core.reward import FPS_MET_SHORTFALL, RewardWeights


@dataclass
class EvalResult:
    mean_return: float
    returns: list[float]
    target_met: float
    """Share of decisions whose FPS reached the target (within 1 %)."""
    energy_per_frame_j: float
    accuracy_ratio: float
    mean_fps_shortfall: float
    remote_share: float


def evaluate(policy, env, episodes: int = 3, seed: int = 1000, weights: RewardWeights | None = None) -> EvalResult:
    """Greedy rollouts of ``policy`` (anything with ``act(obs)``; oracles get ``bind(env)``; stateful ones
    ``reset()``). ``weights``: score with other reward weights than the env's (from the info terms)."""
    if hasattr(policy, "bind"):
        policy.bind(env)
    rets, met, energy, acc, short, remote = [], [], [], [], [], []
    for ep in range(episodes):
        if hasattr(policy, "reset"):
            policy.reset()
        obs, _ = env.reset(seed=seed + ep)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, info = env.step(policy.act(obs))
            if weights is not None:
                r = (
                    -weights.alpha * info["energy_norm"]
                    - weights.beta * info["fps_shortfall"]
                    - weights.gamma * info["accuracy_loss"]
                )
            ret += float(r)
            met.append(info["fps_shortfall"] <= FPS_MET_SHORTFALL)
            energy.append(info["energy_j"])
            acc.append(info["accuracy_ratio"])
            short.append(info["fps_shortfall"])
            remote.append(info["remote"])
            done = term or trunc
        rets.append(ret)
    return EvalResult(
        float(np.mean(rets)),
        rets,
        float(np.mean(met)),
        float(np.mean(energy)),
        float(np.mean(acc)),
        float(np.mean(short)),
        float(np.mean(remote)),
    )
