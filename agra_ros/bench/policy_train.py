"""Train the shipped AGRA policy in the simulator on the real tables: ``python -m agra_ros.bench.policy_train``.

PPO with the Lagrangian reward (dual ascent on the FPS and accuracy weights), eight simulators over the training
traces (never the held-out one), then EWC consolidation on states from the prioritised memory so that online
learning on the robot starts anchored to what was learned here. Writes agra_ros/data/policy_agra.pt and a learning
curve PNG.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from agra_ros.paths import docs_dir, run_dir
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.ppo import PPOSettings
from agra_ros.policy.registry import GPNPolicy, shipped_policy_path
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.sim.env import AgraEnv

TRAIN_TRACES: tuple[str, ...] = ("default", "trace_a", "trace_b", "bench", "train_mix")
"""Traces the shipped policy is trained on (``heldout`` is kept for evaluation)."""
SHIPPED_ENV: dict[str, object] = {"allow_remote": False}
"""Simulator settings of the shipped policy: the robot policy_node serves by default, which has no remote node."""


def env_factory(trace: str, **kw) -> Callable[[], AgraEnv]:
    return lambda: AgraEnv(trace=trace, **kw)


def train_agra(total_timesteps: int, seed: int = 0, traces=TRAIN_TRACES, log=print, **env_kw):
    """Train a GPN with PPO + dual ascent on ``traces``; returns (policy, trainer)."""
    fns = [env_factory(traces[i % len(traces)], **env_kw) for i in range(8)]
    settings = PPOSettings(total_timesteps=total_timesteps, seed=seed, dual_ascent=True)
    trainer = PPOTrainer(fns, settings, log=log)
    trainer.train()
    env = fns[0]()
    policy = GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn)
    policy.multipliers = trainer.multipliers
    return policy, trainer


def plot_curve(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key in zip(axes, ("charts/episodic_return", "charts/fps_shortfall", "charts/beta")):
        if key in metrics and metrics[key]:
            x, y = zip(*metrics[key])
            y = np.asarray(y)
            k = max(1, len(y) // 50)
            ax.plot(x[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"))
        ax.set_title(key)
        ax.set_xlabel("environment steps")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="policy file (default runs/policy_train/policy_agra.pt)")
    ap.add_argument("--plot", default=None, help="training curve (default runs/policy_train/policy_train_curve.png)")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="overwrite the shipped policy (agra_ros/data) and docs/policy_train_curve.png",
    )
    ap.add_argument(
        "--allow-remote",
        action="store_true",
        help="train for a robot with a remote perception node (default: local only, as policy_node's default)",
    )
    args = ap.parse_args(argv)
    args.out = args.out or str(shipped_policy_path() if args.ship else run_dir("policy_train") / "policy_agra.pt")
    args.plot = args.plot or str((docs_dir() if args.ship else run_dir("policy_train")) / "policy_train_curve.png")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sim = dict(SHIPPED_ENV, allow_remote=args.allow_remote)
    torch.set_num_threads(1)
    t0 = time.time()
    policy, trainer = train_agra(args.steps, args.seed, log=lambda m: None, **sim)
    states, _, _ = trainer.memory.sample(256)
    policy.ewc = OnlineEWC()
    policy.ewc.consolidate(policy.gpn, states, seed=args.seed)
    policy.meta = {
        "steps": args.steps,
        "seed": args.seed,
        "traces": list(TRAIN_TRACES),
        "sim": sim,
        "cost_table": str(trainer.envs.envs[0].settings.cost_table or "default"),
    }
    policy.save(args.out)
    plot_curve(trainer.metrics, Path(args.plot), "AGRA PPO + dual ascent (training traces)")
    print(f"trained {args.steps} steps in {time.time() - t0:.0f} s; multipliers {policy.multipliers.state_dict()}")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB) and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
