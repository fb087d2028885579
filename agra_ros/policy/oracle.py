"""The oracle: knows the tables and the simulator's state, and picks the best configuration for every decision.

It is the upper bound every learned policy is measured against. The search is exact: it evaluates the
simulator's own reward (:meth:`agra_ros.sim.env.AgraEnv.evaluate`, the code path ``step`` uses) for every
configuration that survives neighbour-dominance pruning (:meth:`agra_ros.tables.search.SearchSpace.candidates`,
which only drops configurations another one beats or ties in latency, MACs, bytes and accuracy at once), for both
execution targets and every keyframe interval, and returns the arg-max. Pruning is safe because that reward never improves with more latency,
MACs or bytes, nor with less accuracy.

The oracle needs the environment itself (the state of the simulated world), so it is only for simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agra_ros.core.reward import RewardWeights
from agra_ros.granularity.levels import KEYFRAME_INTERVALS


class OutcomeModel(Protocol):
    """What the oracle needs from the simulator."""

    model: Any

    def evaluate(
        self,
        latency_s,
        macs,
        bytes_moved,
        accuracy,
        scale_index,
        remote,
        weights: RewardWeights | None = None,
        interval=1,
    ) -> dict[str, Any]: ...


class OraclePolicy:
    """Exact per-decision arg-max of the simulator's reward."""

    name = "oracle"

    def __init__(self, env: OutcomeModel | None = None, weights: RewardWeights | None = None) -> None:
        self.env = env
        self.weights = weights
        self._space = None
        self._cand: tuple = ()
        self._keys = np.zeros((0, 0), dtype=np.int64)

    def bind(self, env: OutcomeModel) -> None:
        """Attach the (unwrapped) simulator whose state the oracle reads."""
        self.env = getattr(env, "unwrapped", env)

    def act(self, obs: np.ndarray | None = None) -> np.ndarray:
        """Best action in the env's current state (``obs`` is not needed: the oracle sees the state itself)."""
        target, k_index, rewards = max(self._reward_blocks(), key=lambda b: float(b[2].max()))  # first best
        j = int(np.argmax(rewards))
        return np.concatenate([self._keys[j], [target, k_index]])

    def scored_actions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every candidate action in the env's current state (rows: the candidate configurations for each execution
        target and keyframe interval) and its reward; :meth:`act` takes the first best. The distillation
        (:mod:`agra_ros.training.imitation`) picks among the near-best."""
        blocks = self._reward_blocks()
        n = len(self._keys)
        actions = np.concatenate(
            [np.concatenate([self._keys, np.tile([target, k], (n, 1))], axis=1) for target, k, _ in blocks]
        )
        return actions, np.concatenate([r for _, _, r in blocks])

    def _reward_blocks(self) -> list[tuple[int, int, np.ndarray]]:
        """(execution-target index, keyframe-interval index, reward of every candidate configuration) for each
        target and interval, in that order."""
        if self.env is None:
            raise RuntimeError("the oracle needs a simulator: call bind(env) first")
        env = getattr(self.env, "unwrapped", self.env)
        if self._space is None or self._space.model is not env.model:
            from agra_ros.tables.search import search_space  # the oracle is simulation-only

            self._space = search_space(env.model)
            cand = self._space.candidates()
            sp = self._space
            self._cand = (
                cand,
                sp.latency_s[cand],
                sp.macs[cand],
                sp.bytes[cand],
                sp.accuracy[cand],
                sp.scale_index[cand],
            )
            self._keys = sp.keys[cand].astype(np.int64)
        _, lat, macs, byt, acc, sc = self._cand
        remote_ok = getattr(env, "remote_available", True)  # this episode has a perception server
        return [
            (
                target,
                k_index,
                np.asarray(env.evaluate(lat, macs, byt, acc, sc, target, self.weights, interval)["reward"]),
            )
            for target in ((0, 1) if remote_ok else (0,))
            for k_index, interval in enumerate(KEYFRAME_INTERVALS)
        ]

    def save(self, path: str | Path) -> None:
        """Nothing to learn: writes a marker so a saved set of policies stays complete."""
        import torch

        torch.save({"policy": self.name}, Path(path))

    def load(self, path: str | Path) -> None:
        import torch

        state = torch.load(Path(path), weights_only=True)
        if state.get("policy") != self.name:
            raise ValueError(f"{path} is not an oracle checkpoint (policy={state.get('policy')!r})")
