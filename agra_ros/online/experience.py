"""The unit of on-robot experience: :class:`ExperienceBatch`, what the acting agent hands to the learner.

Its own module so that every field is written once: each field declares its shape (and whether it must be finite)
in its metadata, and validation, concatenation, splitting and the dict that crosses the process boundary are all
derived from :func:`dataclasses.fields`. A new field is one line here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

DECISIONS = "T"
"""The leading dimension of a per-decision field: one row per decision of the batch."""


def _array(*shape: str, finite: bool = False) -> Any:
    """A field of ``shape`` (names of dimensions: :data:`DECISIONS`, ``obs_dim``, ``n_heads``); ``finite``: NaN/inf
    are rejected by :meth:`ExperienceBatch.validate`."""
    return field(metadata={"shape": shape, "finite": finite})


@dataclass
class ExperienceBatch:
    """Consecutive decisions of the acting policy (T rows) and the observation after the last one."""

    obs: np.ndarray = _array(DECISIONS, "obs_dim", finite=True)
    """(T, obs_dim) float32."""
    actions: np.ndarray = _array(DECISIONS, "n_heads")
    """(T, n_heads) int64: level indices, then scale index, then target index."""
    logprobs: np.ndarray = _array(DECISIONS, finite=True)
    """(T,) log-probability of each action under the policy that took it (PPO's old log-prob)."""
    energy_norm: np.ndarray = _array(DECISIONS, finite=True)
    fps_shortfall: np.ndarray = _array(DECISIONS, finite=True)
    accuracy_loss: np.ndarray = _array(DECISIONS, finite=True)
    switch: np.ndarray = _array(DECISIONS, finite=True)
    """(T,) the reward terms measured over each decision's interval (:data:`agra_ros.core.reward.REWARD_TERMS`)."""
    next_obs: np.ndarray = _array("obs_dim", finite=True)
    """(obs_dim,) observation after the last decision (bootstrap of the value)."""
    starts: np.ndarray = _array(DECISIONS)
    """(T,) 1.0 where a decision does not follow the previous one (a gap: learning paused, safety override)."""

    def __len__(self) -> int:
        return len(self.obs)

    @classmethod
    def per_decision(cls) -> tuple[str, ...]:
        """Names of the fields with one row per decision (in field order)."""
        return tuple(f.name for f in fields(cls) if f.metadata["shape"][:1] == (DECISIONS,))

    def validate(self, obs_dim: int, n_heads: int) -> None:
        """Raise ValueError unless every field has its shape (per-decision fields first) and the finite ones are."""
        dims = {DECISIONS: len(self.obs), "obs_dim": obs_dim, "n_heads": n_heads}
        rows = self.per_decision()
        for f in sorted(fields(self), key=lambda f: f.name not in rows):
            got, want = tuple(getattr(self, f.name).shape), tuple(dims[d] for d in f.metadata["shape"])
            if got != want:
                raise ValueError(f"experience batch: {f.name} has shape {got}, expected {want}")
        for f in fields(self):
            if f.metadata["finite"] and not np.all(np.isfinite(getattr(self, f.name))):
                raise ValueError(f"experience batch: {f.name} holds NaN/inf")

    @staticmethod
    def concatenate(parts: Sequence[ExperienceBatch]) -> ExperienceBatch:
        """One batch of ``parts`` in order: per-decision fields joined, the rest from the last part."""
        rows = {name: np.concatenate([getattr(p, name) for p in parts]) for name in ExperienceBatch.per_decision()}
        return replace(parts[-1], **rows)

    def split(self, n: int) -> tuple[ExperienceBatch, ExperienceBatch | None]:
        """The first ``n`` decisions (bootstrapped from decision ``n``'s observation when there is one) and the
        rest (None when nothing is left)."""
        names = self.per_decision()
        head = replace(
            self,
            **{name: getattr(self, name)[:n] for name in names},
            next_obs=self.obs[n] if len(self) > n else self.next_obs,
        )
        if len(self) <= n:
            return head, None
        return head, replace(self, **{name: getattr(self, name)[n:] for name in names})

    def to_dict(self) -> dict[str, np.ndarray]:
        """The fields as a plain dict (what goes into the learner's queue)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, np.ndarray]) -> ExperienceBatch:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)
