"""The seed papers' alternatives to AGRA, behind the same ``act(obs) -> action`` interface.

- :class:`StaticPolicy`: every layer ``full``, scale 1.0, local: the detector as shipped.
- :class:`RulePolicy`: the AGRA paper's "dynamic granularity" baseline, a feedback controller with hysteresis that
  walks a ladder of ever coarser uniform configurations on the measured load (latency x target FPS).
- A2C over the same action space and network (Infer-EDGE): :func:`a2c_settings` configures the PPO trainer so
  that it *is* A2C (one epoch, one minibatch, so the ratio is 1 and the clipped surrogate's gradient is the plain
  policy gradient; lambda = 1, i.e. n-step returns; no value clipping, no advantage normalisation, no KL stop).
- :class:`BanditPolicy`: AutoScale's lightweight selector, tabular Q-learning over a discretised context that
  chooses only the global knobs (a uniform width, the resolution scale and the execution target).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agra_ros.core.observation import ObservationLayout
from agra_ros.granularity.levels import LEVELS
from agra_ros.policy.ppo import PPOSettings


class StaticPolicy:
    """Full granularity everywhere, native resolution, local: what a non-adaptive detector does."""

    name = "static"

    def __init__(self, n_layers: int, layout: ObservationLayout | None = None) -> None:
        self.n_layers = n_layers
        self.layout = layout

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.layout is not None:
            self.layout.validate(obs)
        return np.zeros(self.n_layers + 3, dtype=np.int64)  # full, native scale, local, every frame

    def save(self, path: str | Path) -> None:
        torch.save({"policy": self.name, "n_layers": self.n_layers}, Path(path))

    def load(self, path: str | Path) -> None:
        state = _load_checked(path, self.name)
        self.n_layers = int(state["n_layers"])


RULE_LADDER: tuple[tuple[str, int], ...] = (
    ("full", 0),
    ("neuron-75", 0),
    ("neuron-50", 0),
    ("neuron-50", 1),
    ("neuron-25", 1),
    ("neuron-25", 2),
)
"""(uniform level, resolution-scale index), finest first: the rungs the rule-based controller moves along."""


class RulePolicy:
    """Feedback controller with hysteresis on the load (busy time per frame / frame budget).

    Coarser by one rung as soon as the last frame overran its budget (load > ``up``); finer by one rung only after
    ``patience`` consecutive decisions with load < ``down`` and the accuracy proxy at or above the floor. The gap
    between ``down`` and ``up`` plus the patience is the hysteresis that keeps it from oscillating.
    """

    name = "rule"

    def __init__(
        self, n_layers: int, layout: ObservationLayout, up: float = 0.95, down: float = 0.6, patience: int = 3
    ) -> None:
        self.n_layers = n_layers
        self.layout = layout
        self.up, self.down, self.patience = up, down, patience
        self.rung = 0
        self.calm = 0

    def reset(self) -> None:
        self.rung, self.calm = 0, 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        x = self.layout.validate(obs)
        p = x[self.layout.slices()[2]]
        load, floor, acc = float(p[3]), float(p[1]), float(p[4])
        if load > self.up:
            self.rung = min(len(RULE_LADDER) - 1, self.rung + 1)
            self.calm = 0
        elif load < self.down and acc >= floor:
            self.calm += 1
            if self.calm >= self.patience:
                self.rung = max(0, self.rung - 1)
                self.calm = 0
        else:
            self.calm = 0
        if acc < floor and load <= self.up:  # accuracy below its floor: back to a finer rung
            self.rung = max(0, self.rung - 1)
        level, scale = RULE_LADDER[self.rung]
        return np.array([LEVELS.index(level)] * self.n_layers + [scale, 0, 0], dtype=np.int64)

    def save(self, path: str | Path) -> None:
        torch.save(
            {
                "policy": self.name,
                "n_layers": self.n_layers,
                "up": self.up,
                "down": self.down,
                "patience": self.patience,
            },
            Path(path),
        )

    def load(self, path: str | Path) -> None:
        state = _load_checked(path, self.name)
        self.n_layers, self.up, self.down = int(state["n_layers"]), float(state["up"]), float(state["down"])
        self.patience = int(state["patience"])


def a2c_settings(total_timesteps: int, seed: int = 0, num_envs: int = 8) -> PPOSettings:
    """PPOSettings under which :class:`agra_ros.policy.trainer.PPOTrainer` performs A2C (see the module docstring)."""
    return PPOSettings(
        total_timesteps=total_timesteps,
        num_envs=num_envs,
        num_steps=16,
        learning_rate=7e-4,
        anneal_lr=True,
        gae_lambda=1.0,
        num_minibatches=1,
        update_epochs=1,
        norm_adv=False,
        clip_coef=1e9,
        clip_vloss=False,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        target_kl=None,
        seed=seed,
        memory_capacity=0,
    )


BANDIT_WIDTHS: tuple[str, ...] = ("full", "neuron-75", "neuron-50", "neuron-25")


class BanditPolicy:
    """AutoScale-style contextual Q-learning over the global knobs.

    Context: target FPS (4 bins), last load (3), link RTT (3), throttling (2), objects in the last frame (3).
    Arms: uniform width (4) x resolution scale (3) x execution target (2) = 24. One-step Q-learning
    (a contextual bandit: the reward of a decision is credited to it alone) with epsilon-greedy exploration.
    """

    name = "bandit"
    TARGET_BINS = (12.5, 20.5, 30.5)
    LOAD_BINS = (0.7, 1.0)
    RTT_BINS = (0.2, 0.5)  # of the P entry link_rtt / 0.1 s: 20 ms, 50 ms
    OBJECT_BINS = (0.15, 0.5)

    def __init__(
        self, n_layers: int, layout: ObservationLayout, lr: float = 0.1, epsilon: float = 0.1, seed: int = 0
    ) -> None:
        self.n_layers = n_layers
        self.layout = layout
        self.lr, self.epsilon = lr, epsilon
        self.n_contexts = 4 * 3 * 3 * 2 * 3
        self.n_arms = len(BANDIT_WIDTHS) * 3 * 2
        self.q = np.zeros((self.n_contexts, self.n_arms))
        self.counts = np.zeros((self.n_contexts, self.n_arms))
        self.rng = np.random.default_rng(seed)
        self.explore = False

    def context(self, obs: np.ndarray) -> int:
        x = self.layout.validate(obs)
        w, d, p = (x[sl] for sl in self.layout.slices())
        fps = float(p[0]) * 60.0
        c = int(np.searchsorted(self.TARGET_BINS, fps))
        c = c * 3 + int(np.searchsorted(self.LOAD_BINS, float(p[3])))
        c = c * 3 + int(np.searchsorted(self.RTT_BINS, float(p[2])))
        c = c * 2 + int(float(d[-1]) > 0.5)
        return c * 3 + int(np.searchsorted(self.OBJECT_BINS, float(w[-3])))

    def arm_action(self, arm: int) -> np.ndarray:
        width, rest = divmod(arm, 6)
        scale, target = divmod(rest, 2)
        return np.array([LEVELS.index(BANDIT_WIDTHS[width])] * self.n_layers + [scale, target, 0], dtype=np.int64)

    def select(self, obs: np.ndarray) -> tuple[int, int]:
        ctx = self.context(obs)
        if self.explore and self.rng.random() < self.epsilon:
            return ctx, int(self.rng.integers(self.n_arms))
        untried = np.flatnonzero(self.counts[ctx] == 0)
        if self.explore and len(untried):
            return ctx, int(untried[0])
        return ctx, int(np.argmax(self.q[ctx]))

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.arm_action(self.select(obs)[1])

    def update(self, ctx: int, arm: int, reward: float) -> None:
        self.counts[ctx, arm] += 1
        self.q[ctx, arm] += max(self.lr, 1.0 / self.counts[ctx, arm]) * (reward - self.q[ctx, arm])

    def train(self, env, steps: int, seed: int = 0) -> list[float]:
        """Learn online in ``env`` for ``steps`` decisions; returns the episode returns."""
        self.explore = True
        obs, _ = env.reset(seed=seed)
        returns, ret = [], 0.0
        for _ in range(steps):
            ctx, arm = self.select(obs)
            obs, r, term, trunc, _ = env.step(self.arm_action(arm))
            self.update(ctx, arm, float(r))
            ret += float(r)
            if term or trunc:
                returns.append(ret)
                ret = 0.0
                obs, _ = env.reset()
        self.explore = False
        return returns

    def save(self, path: str | Path) -> None:
        torch.save(
            {
                "policy": self.name,
                "n_layers": self.n_layers,
                "q": torch.from_numpy(self.q),
                "counts": torch.from_numpy(self.counts),
            },
            Path(path),
        )

    def load(self, path: str | Path) -> None:
        state = _load_checked(path, self.name)
        if int(state["n_layers"]) != self.n_layers or tuple(state["q"].shape) != self.q.shape:
            raise ValueError(
                f"{path}: bandit for {state['n_layers']} layers and a {tuple(state['q'].shape)} table, this setup "
                f"needs {self.n_layers} and {self.q.shape}"
            )
        self.q = state["q"].numpy().copy()
        self.counts = state["counts"].numpy().copy()


def _load_checked(path: str | Path, name: str | None) -> dict:
    """The checkpoint at ``path`` as a dict, checked to be a ``name`` policy's (None: any policy's)."""
    try:
        state = torch.load(Path(path), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the caller
        raise ValueError(f"cannot read policy checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or "policy" not in state or (name is not None and state["policy"] != name):
        raise ValueError(f"{path} is not a {'' if name is None else repr(name) + ' '}policy checkpoint")
    return state
