"""What the policy benchmarks share: the random policy (the floor of "share of the achievable improvement"), the
plot of learning curves and a progress bar that follows a trainer. Its own module so that each bench (speed, learning, compare, online) imports only these,
not the others."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agra_ros.paths import run_dir
from agra_ros.progress import advance_to
from agra_ros.sim.env import AgraEnv

if TYPE_CHECKING:
    from agra_ros.policy.trainer import PPOTrainer

PLOTS = run_dir("policy_bench")
"""Where the policy benches draw their PNGs by default (``policy_bench --ship`` passes docs/ instead)."""


def follow(bar, trainer: PPOTrainer, base: int) -> None:
    """Let ``bar`` (counting steps) follow ``trainer``: after each of its updates it stands at ``base`` + the
    trainer's steps (through the trainer's log hook, which changes nothing it computes)."""
    trainer.log = lambda _msg: advance_to(bar, base + trainer.global_step)


class RandomPolicy:
    name = "random"

    def __init__(self, env: AgraEnv, seed: int = 0) -> None:
        self.nvec = env.action_space.nvec
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return self.rng.integers(0, self.nvec)


def plot_curves(
    curves: dict[str, list[tuple[float, float]]],
    path: Path,
    title: str,
    ylabel: str = "episodic return",
    xlabel: str = "environment steps",
    goal: float | None = None,
) -> None:
    """Curves (smoothed to about 40 points) with an optional horizontal goal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, pts in curves.items():
        if not pts:
            continue
        x, y = zip(*pts)
        y = np.asarray(y)
        k = max(1, len(y) // 40)
        ax.plot(np.asarray(x)[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"), marker=".", label=label)
    if goal is not None:
        ax.axhline(goal, color="grey", linestyle="--", linewidth=1, label=f"goal {goal:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")
