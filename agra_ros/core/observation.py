"""Layout of the policy's observation (W, D, P), its one builder, and the own-speed state.

The simulator and the policy node build the same flat vector with the same functions, defined once, here (the
core imports neither gymnasium nor the simulator, so the robot process never loads them):

| block | size | content |
|---|---|---|
| W | ``w_dim`` | workload profile (the detector backbone's embedding and four scalars, ``agra_ros.workload.features``) |
| D | ``d_dim`` | device state (``agra_ros.device.DeviceState.vector()``) |
| P | 13 | performance target, the robot's own speed, the accuracy feedback and the link to a perception server, see :data:`P_FIELDS` |

Own speed is what the robot measures about itself, built by :meth:`OwnSpeed.measure` from the last decision's
frames on both sides: the latency against the frame budget 1/target, the achieved FPS against the target, how
much slower than the cost table the configuration ran (log2 of measured over table latency: this is what tells a
Jetson Nano from a laptop, and a throttled or loaded device from a fresh one), and the configuration that produced
them (its mean channel width, resolution scale and execution target). Without it one policy cannot fit fast and
slow devices: the same (W, D, target) asks for ``full`` on a laptop and for ``neuron-25`` on a Nano.

The link (:class:`LinkObservation`) is what perception measured of its link to a perception server: RTT, uplink
throughput, share of requests lost, and whether a server answers at all; without a server the entries take neutral
values (the default RTT, no uplink, no loss), so one policy serves robots with and without a server.

P is normalised here so that every entry is O(1): the policy node and the simulator hand raw values to
:func:`performance_vector`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES

FPS_SCALE = 60.0
"""Target FPS is divided by this (60 Hz -> 1.0)."""
RTT_SCALE_S = 0.1
"""Link round-trip time is divided by this (100 ms -> 1.0)."""
LINK_RTT_S = 0.03
"""Default round-trip time to a perception server: what P shows while none was measured."""
UPLINK_SCALE_MBPS = 50.0
"""Link uplink throughput is divided by this (50 Mbit/s, a good Wi-Fi link -> 1.0)."""
MAX_LOAD = 4.0
"""Feedback load (latency per frame / frame budget) is clipped to this."""
SLOWDOWN_RANGE = (-2.0, 6.0)
"""log2(measured latency / table latency) is clipped to this: 4x faster to 64x slower than the table's device."""

P_FIELDS: tuple[tuple[str, float, float], ...] = (
    ("target_fps / 60", 0.0, 4.0),
    ("accuracy_floor (share of the full configuration's accuracy)", 0.0, 1.0),
    ("link_rtt_s / 0.1 (remote perception node)", 0.0, 20.0),
    ("own speed: load = last latency * target_fps (latency against the frame budget, clipped to 4)", 0.0, MAX_LOAD),
    ("last_accuracy_ratio (accuracy of the last decision, share of full)", 0.0, 1.5),
    ("own speed: achieved FPS / target FPS", 0.0, 1.5),
    ("own speed: log2(last latency / cost-table latency of its configuration)", *SLOWDOWN_RANGE),
    ("own speed: mean channel width of the configuration that ran", 0.0, 1.0),
    ("own speed: resolution scale of the configuration that ran", 0.0, 1.0),
    ("own speed: 1 if it ran remotely", 0.0, 1.0),
    ("link uplink Mbit/s / 50 (0 without a server)", 0.0, 4.0),
    ("link loss: share of recent requests unanswered (0 without a server)", 0.0, 1.0),
    ("link: 1 if a perception server answers", 0.0, 1.0),
)
"""(meaning, low, high) of every entry of the P block."""
P_DIM = len(P_FIELDS)


class InvalidObservationError(ValueError):
    """An observation that is not a finite vector of the expected shape inside the documented bounds."""


@dataclass(frozen=True)
class LinkObservation:
    """The link to a perception server as the policy sees it (built by the simulator's link model and, on the
    robot, from perception's link measurements by :func:`agra_ros.online.inputs.parse_link`). The defaults are a
    robot without a server: RTT is then only the configured default, which the policy learns to ignore."""

    rtt_s: float = LINK_RTT_S
    uplink_mbps: float = 0.0
    loss: float = 0.0
    server: bool = False


@dataclass(frozen=True)
class OwnSpeed:
    """What the robot measured about its own speed over the last decision, and the configuration behind it."""

    load: float = 0.5
    """Latency per frame / frame budget (1 / target): above 1 the target is missed."""
    fps_ratio: float = 1.0
    """Achieved FPS / target FPS."""
    slowdown_log2: float = 0.0
    """log2 of the measured latency over the cost table's latency of the same configuration (0: the table's
    device; 3: eight times slower)."""
    mean_width: float = 1.0
    scale: float = 1.0
    remote: bool = False

    @classmethod
    def measure(
        cls,
        latency_s: float,
        fps: float,
        target_fps: float,
        table_latency_s: float,
        levels: Sequence[int],
        scale_index: int,
        remote: bool,
        slowdown_log2: float | None = None,
    ) -> OwnSpeed:
        """From one decision's mean frame latency and achieved FPS, and the configuration that produced them
        (level indices per layer, resolution-scale index, execution target) with its cost-table latency;
        ``slowdown_log2``, when given, is a calibrated estimate used instead of this one measurement's."""
        if not (math.isfinite(latency_s) and math.isfinite(fps) and target_fps > 0 and table_latency_s > 0):
            raise InvalidObservationError(
                f"own speed needs finite latency/fps and positive target and table latency, got "
                f"{latency_s}, {fps}, {target_fps}, {table_latency_s}"
            )
        lo, hi = SLOWDOWN_RANGE
        slow = math.log2(max(latency_s, 1e-6) / table_latency_s) if slowdown_log2 is None else slowdown_log2
        if not math.isfinite(slow):
            raise InvalidObservationError(f"own speed needs a finite slowdown, got {slow}")
        widths = [LEVEL_WIDTH[LEVELS[int(i)]] for i in levels]
        return cls(
            load=min(MAX_LOAD, max(0.0, latency_s * target_fps)),
            fps_ratio=min(1.5, max(0.0, fps / target_fps)),
            slowdown_log2=min(hi, max(lo, slow)),
            mean_width=float(np.mean(widths)) if widths else 1.0,
            scale=float(RESOLUTION_SCALES[int(scale_index)]),
            remote=bool(remote),
        )


def performance_vector(
    target_fps: float,
    accuracy_floor: float,
    link: LinkObservation,
    own_speed: OwnSpeed,
    last_accuracy_ratio: float,
) -> np.ndarray:
    """The P block from raw values (clipped into its bounds; NaN is rejected)."""
    o = own_speed
    raw = (
        target_fps / FPS_SCALE,
        accuracy_floor,
        link.rtt_s / RTT_SCALE_S,
        o.load,
        last_accuracy_ratio,
        o.fps_ratio,
        o.slowdown_log2,
        o.mean_width,
        o.scale,
        float(o.remote),
        link.uplink_mbps / UPLINK_SCALE_MBPS,
        link.loss,
        float(link.server),
    )
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
        """(low, high) float32 vectors, as used by the simulator's Box space (computed once per layout)."""
        return self._bounds

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        d_low = np.full(self.d_dim, -10.0) if self.d_low is None else np.asarray(self.d_low, dtype=np.float64)
        d_high = np.full(self.d_dim, 10.0) if self.d_high is None else np.asarray(self.d_high, dtype=np.float64)
        low = np.concatenate([np.full(self.w_dim, -self.w_bound), d_low, [f[1] for f in P_FIELDS]])
        high = np.concatenate([np.full(self.w_dim, self.w_bound), d_high, [f[2] for f in P_FIELDS]])
        return low.astype(np.float32), high.astype(np.float32)

    def build(self, w: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The flat observation (float32) from its three blocks, clipped into the bounds: the one builder the
        simulator and the robot share (a robot's device can report more than the simulator ever produces, e.g. a
        temperature over the modelled range; both sides then see the same clipped value)."""
        obs = np.concatenate([np.ravel(w), np.ravel(d), np.ravel(p)]).astype(np.float32)
        if obs.shape != (self.dim,):
            raise InvalidObservationError(f"observation has {obs.size} entries, the layout needs {self.dim}")
        if not np.all(np.isfinite(obs)):
            raise InvalidObservationError("observation has NaN/inf entries")
        low, high = self.bounds()
        return np.clip(obs, low, high)

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
