"""Layout of the policy's observation (W, D, P) and its validation.

The simulator and the policy node build the same flat vector, so the layout is defined once, here:

| block | size | content |
|---|---|---|
| W | ``w_dim`` | workload profile (the workload encoder's features, ``agra_ros.workload``) |
| D | ``d_dim`` | device state (``agra_ros.device.DeviceState.vector()``) |
| P | 5 | performance target and feedback, see :data:`P_FIELDS` |

P is normalised here so that every entry is O(1): the policy node hands raw values to :func:`performance_vector`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FPS_SCALE = 60.0
"""Target FPS is divided by this (60 Hz -> 1.0)."""
RTT_SCALE_S = 0.1
"""Link round-trip time is divided by this (100 ms -> 1.0)."""
MAX_LOAD = 4.0
"""Feedback load (busy time per frame / frame budget) is clipped to this."""

P_FIELDS: tuple[tuple[str, float, float], ...] = (
    ("target_fps / 60", 0.0, 4.0),
    ("accuracy_floor (share of the full configuration's accuracy)", 0.0, 1.0),
    ("link_rtt_s / 0.1 (remote perception node)", 0.0, 20.0),
    ("last_load = last frame latency * target_fps (feedback, clipped to 4)", 0.0, MAX_LOAD),
    ("last_accuracy_ratio (accuracy proxy of the last decision, share of full)", 0.0, 1.5),
)
"""(meaning, low, high) of every entry of the P block."""
P_DIM = len(P_FIELDS)


class InvalidObservationError(ValueError):
    """An observation that is not a finite vector of the expected shape inside the documented bounds."""


def performance_vector(
    target_fps: float, accuracy_floor: float, link_rtt_s: float, last_load: float, last_accuracy_ratio: float
) -> np.ndarray:
    """The P block from raw values (clipped into its bounds; NaN is rejected)."""
    raw = (target_fps / FPS_SCALE, accuracy_floor, link_rtt_s / RTT_SCALE_S, last_load, last_accuracy_ratio)
    out = np.empty(P_DIM, dtype=np.float32)
    for i, (v, (_, lo, hi)) in enumerate(zip(raw, P_FIELDS)):
        if not math.isfinite(v):
            raise InvalidObservationError(f"performance vector has NaN/inf: {raw}")
        out[i] = min(hi, max(lo, v))
    return out


@dataclass(frozen=True)
class ObservationLayout:
    """Sizes and bounds of the (W, D, P) observation."""

    w_dim: int
    d_dim: int
    w_bound: float = 10.0
    """|W entries| must stay below this (the encoder's features are normalised; larger means a broken input)."""
    d_low: tuple[float, ...] | None = None
    d_high: tuple[float, ...] | None = None

    @property
    def p_dim(self) -> int:
        return P_DIM

    @property
    def dim(self) -> int:
        return self.w_dim + self.d_dim + P_DIM

    def slices(self) -> tuple[slice, slice, slice]:
        """Index ranges of the W, D and P blocks."""
        return (
            slice(0, self.w_dim),
            slice(self.w_dim, self.w_dim + self.d_dim),
            slice(self.w_dim + self.d_dim, self.dim),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) float32 vectors, as used by the simulator's Box space."""
        d_low = np.full(self.d_dim, -10.0) if self.d_low is None else np.asarray(self.d_low, dtype=np.float64)
        d_high = np.full(self.d_dim, 10.0) if self.d_high is None else np.asarray(self.d_high, dtype=np.float64)
        low = np.concatenate([np.full(self.w_dim, -self.w_bound), d_low, [f[1] for f in P_FIELDS]])
        high = np.concatenate([np.full(self.w_dim, self.w_bound), d_high, [f[2] for f in P_FIELDS]])
        return low.astype(np.float32), high.astype(np.float32)

    def build(self, w: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Concatenate the three blocks into the flat observation (float32) and validate it."""
        obs = np.concatenate([np.ravel(w), np.ravel(d), np.ravel(p)]).astype(np.float32)
        return self.validate(obs)

    def validate(self, obs: np.ndarray) -> np.ndarray:
        """Return ``obs`` as float32 (1-D or a batch of rows) or raise :class:`InvalidObservationError`."""
        try:
            arr = np.asarray(obs, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidObservationError(f"observation is not numeric: {exc}") from None
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.dim:
            raise InvalidObservationError(
                f"observation has shape {arr.shape}, expected ({self.dim},) = W {self.w_dim} + D {self.d_dim} "
                f"+ P {P_DIM} (or a batch of such rows)"
            )
        if not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.isfinite(arr.reshape(-1, self.dim)).all(axis=0))
            raise InvalidObservationError(f"observation has NaN/inf at indices {bad[:8].tolist()}")
        low, high = self.bounds()
        tol = 1e-4
        out = (arr < low - tol) | (arr > high + tol)
        if np.any(out):
            cols = np.flatnonzero(out.reshape(-1, self.dim).any(axis=0))
            raise InvalidObservationError(
                f"observation out of range at indices {cols[:8].tolist()} "
                f"(values {arr.reshape(-1, self.dim)[0, cols[:4]].tolist()}, bounds "
                f"{low[cols[:4]].tolist()}..{high[cols[:4]].tolist()})"
            )
        return arr
