"""Replay memory prioritised by reward magnitude (docs/architecture.md: the memory buffer).

PPO trains on fresh on-policy rollouts; this memory keeps a bounded sample of past experience for the things that
must look back: the EWC Fisher estimate (states the old workload produced), rehearsal of old states and refreshing
the critic. Experience with a large |reward| (a missed target, a deep accuracy drop, an expensive configuration)
is the most informative about the constraints, so it is sampled more often: P(i) ~ (|r_i| + eps)^priority_exponent.
When full, the entry with the lowest priority is replaced (older entries win ties), so rare costly events survive.
"""

from __future__ import annotations

import numpy as np


class PrioritisedMemory:
    """Fixed-capacity store of (observation, action, reward) with |reward|-proportional sampling."""

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        action_dim: int,
        priority_exponent: float = 1.0,
        eps: float = 1e-3,
        seed: int | None = None,
    ) -> None:
        if capacity <= 0 or obs_dim <= 0 or action_dim <= 0:
            raise ValueError("capacity, obs_dim and action_dim must be positive")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.priorities = np.zeros(capacity, dtype=np.float64)
        self.priority_exponent = float(priority_exponent)
        self.eps = float(eps)
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def priority(self, reward: np.ndarray) -> np.ndarray:
        return (np.abs(reward) + self.eps) ** self.priority_exponent

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Add a batch (N, obs_dim), (N, action_dim), (N,); replaces the lowest-priority entries when full."""
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs.shape[1])
        actions = np.asarray(actions, dtype=np.int64).reshape(-1, self.actions.shape[1])
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        if not (len(obs) == len(actions) == len(rewards)):
            raise ValueError("obs, actions and rewards must have the same length")
        if not np.all(np.isfinite(rewards)) or not np.all(np.isfinite(obs)):
            raise ValueError("memory refuses NaN/inf observations or rewards")
        prio = self.priority(rewards)
        n_free = min(self.capacity - self.size, len(rewards))
        if n_free:
            sl = slice(self.size, self.size + n_free)
            self.obs[sl], self.actions[sl], self.rewards[sl], self.priorities[sl] = (
                obs[:n_free],
                actions[:n_free],
                rewards[:n_free],
                prio[:n_free],
            )
            self.size += n_free
        rest = np.arange(n_free, len(rewards))
        if len(rest):
            # replace the lowest-priority entries by incoming ones that beat them
            order = np.argsort(self.priorities[: self.size], kind="stable")
            incoming = rest[np.argsort(-prio[rest], kind="stable")]
            for slot, j in zip(order, incoming):
                if prio[j] <= self.priorities[slot]:
                    break
                self.obs[slot], self.actions[slot], self.rewards[slot], self.priorities[slot] = (
                    obs[j],
                    actions[j],
                    rewards[j],
                    prio[j],
                )

    def state_dict(self) -> dict:
        """The stored entries, so a resumed training run still has the states its final EWC consolidation reads."""
        n = self.size
        return {
            "obs": self.obs[:n].copy(),
            "actions": self.actions[:n].copy(),
            "rewards": self.rewards[:n].copy(),
            "priorities": self.priorities[:n].copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        n = len(state["rewards"])
        if n > self.capacity or np.asarray(state["obs"]).shape[1:] != self.obs.shape[1:]:
            raise ValueError(f"memory state of {n} x {np.asarray(state['obs']).shape[1:]} does not fit this memory")
        self.obs[:n], self.actions[:n] = state["obs"], state["actions"]
        self.rewards[:n], self.priorities[:n] = state["rewards"], state["priorities"]
        self.size = n

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample with replacement, P(i) proportional to priority; returns (obs, actions, rewards)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty memory")
        p = self.priorities[: self.size]
        idx = self.rng.choice(self.size, size=int(batch_size), replace=True, p=p / p.sum())
        return self.obs[idx], self.actions[idx], self.rewards[idx]
