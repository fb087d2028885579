"""Speed benchmarks of the policy stack: simulator steps per second with random actions, and the GPN's decision
time for one state. They measure this machine, train nothing, and need neither matplotlib nor a trained policy
beyond the shipped one."""

from __future__ import annotations

import time

import numpy as np

from agra_ros.policy.registry import make_policy, shipped_policy_path
from agra_ros.sim.env import AgraEnv


# ------------------------------------------------------------------------------------------------- sim speed
def bench_sim(n: int = 20_000, repeats: int = 5) -> dict[str, float]:
    """Simulator steps per second with random actions (median of ``repeats`` runs; issue 4 asks for >= 5,000)."""
    env = AgraEnv(trace="bench")
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(256)]
    for a in actions:  # warm the lookup cache as a policy's repeated choices would
        env.step(a)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            _, _, term, trunc, _ = env.step(actions[i % 256])
            if term or trunc:
                env.reset()
        rates.append(n / (time.perf_counter() - t0))
    out = {"median_steps_per_s": float(np.median(rates)), "min_steps_per_s": float(np.min(rates))}
    print(
        f"simulator: median {out['median_steps_per_s']:.0f} steps/s, worst {out['min_steps_per_s']:.0f} steps/s "
        f"({repeats} runs x {n} random steps, 1 thread)"
    )
    return out


# ------------------------------------------------------------------------------------------------- latency
def bench_latency(n: int = 2000) -> dict[str, float]:
    env = AgraEnv(trace="bench")
    pol = make_policy("agra") if shipped_policy_path().is_file() else make_policy("agra", env=env)
    obs, _ = env.reset(seed=0)
    for _ in range(100):
        pol.act(obs)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        pol.act(obs)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    out = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}
    print(
        f"GPN decision latency (validate + forward, 1 thread, {n} calls): p50 {out['p50_ms']:.3f} ms, "
        f"p99 {out['p99_ms']:.3f} ms"
    )
    return out
