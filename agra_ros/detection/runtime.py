"""The perception runtime: what perception_node does with a frame, without ROS.

A ROS node is a thin adapter (docs/architecture.md); everything that decides *how* a frame is processed lives here so it can
be tested without spinning anything:

- the command watchdog: when no valid command arrived for ``fallback_timeout_s`` the safe configuration runs, and
  the transition in and out of that state is reported once each (so the node logs it once);
- pacing to a target rate: no work is spent beyond the frame rate the robot asked for;
- the shadow accuracy proxy: on a share of frames the full configuration also runs, and the active configuration's
  detections are scored against it (F1 of class-aware IoU >= 0.5 matches);
- energy accounting: measured CPU busy time of the frame (plus MACs/bytes from a cost table when one fits) turned
  into joules by a device power model, with the figure's source named.

Bad inputs are counted by agra_ros.bad_inputs, the same for perception and the policy.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from agra_ros.granularity.levels import (
    EXECUTION_TARGETS,
    LEVELS,
    RESOLUTION_SCALES,
    GranularityConfig,
    GranularityError,
    full_configuration,
)

CATALOGUE_FORMAT = "agra_ros/granularity-catalogue"
CATALOGUE_VERSION = 1


# ---------------------------------------------------------------------- interfaces of the collaborators
class DetectionsLike(Protocol):
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class Detector(Protocol):
    """What the runtime needs of a detector (agra_ros.detection.model.AgraDetector has it)."""

    class_names: tuple[str, ...]

    def switchable_layer_names(self) -> list[str]: ...

    def set_config(self, config: GranularityConfig) -> None: ...

    def detect(self, images: Sequence[np.ndarray], score_threshold: float = 0.3) -> list[DetectionsLike]: ...


class PowerModelLike(Protocol):
    """A device power model: joules of one frame from its busy time and work, and the power at a frame rate."""

    def frame_energy_j(self, busy_s: float, macs: float = 0.0, bytes: float = 0.0) -> float: ...

    def power_w(self, frame_energy_j: float, fps: float) -> float: ...


# ---------------------------------------------------------------------- watchdog (safe-configuration fallback)
class CommandWatchdog:
    """Tracks the age of the last valid granularity command and reports entering/leaving the fallback once each.

    The start counts as a command: the fallback begins ``timeout_s`` after start-up if the policy never speaks.
    """

    ENTERED = "entered"
    RECOVERED = "recovered"

    def __init__(self, timeout_s: float, now: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"fallback timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.last_command: float | None = None
        self._since = now
        self.in_fallback = False
        self.fallbacks = 0
        self.commands = 0

    def command(self, now: float) -> str | None:
        """A valid command arrived; returns RECOVERED when this ends a fallback."""
        self.last_command = now
        self.commands += 1
        if self.in_fallback:
            self.in_fallback = False
            return self.RECOVERED
        return None

    def check(self, now: float) -> str | None:
        """Returns ENTERED the first time the timeout has passed without a command."""
        ref = self.last_command if self.last_command is not None else self._since
        if not self.in_fallback and now - ref >= self.timeout_s:
            self.in_fallback = True
            self.fallbacks += 1
            return self.ENTERED
        return None

    def age(self, now: float) -> float:
        """Seconds since the last valid command (inf when none arrived yet)."""
        return math.inf if self.last_command is None else now - self.last_command


# ---------------------------------------------------------------------- pacing and rates
class RatePacer:
    """Keeps the processing rate at or below ``rate_hz`` (None: unlimited).

    A frame is due when its start time reaches the schedule; a late start catches up by at most half a period,
    so the long-run rate equals the target without bursts.
    """

    def __init__(self, rate_hz: float | None = None) -> None:
        self.rate_hz: float | None = None
        self._next = -math.inf
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz: float | None) -> None:
        if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"pacing rate must be a positive number of Hz, got {rate_hz}")
        if rate_hz != self.rate_hz:
            self.rate_hz = rate_hz
            self._next = -math.inf

    def delay(self, now: float) -> float:
        """Seconds until the next frame may start (0: now)."""
        return 0.0 if self.rate_hz is None else max(0.0, self._next - now)

    def started(self, now: float) -> None:
        """Record that a frame started processing at ``now``."""
        if self.rate_hz is None:
            return
        period = 1.0 / self.rate_hz
        self._next = max(self._next + period, now + period / 2)


class SlidingRate:
    """Events per second over a sliding time window (the fps that rqt_plot shows)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._t: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._t.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()

    def rate(self, now: float | None = None) -> float:
        if now is not None:
            self._trim(now)
        t = self._t
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


class ShadowScheduler:
    """Picks ``share`` of the frames for a shadow run, evenly spaced and deterministic (no random jitter)."""

    def __init__(self, share: float) -> None:
        self.share = 0.0
        self._acc = 0.0
        self.set_share(share)

    def set_share(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"shadow share must be in [0, 1], got {share}")
        self.share = float(share)

    def next(self) -> bool:
        self._acc += self.share
        if self._acc >= 1.0 - 1e-9:
            self._acc -= 1.0
            return True
        return False


# ---------------------------------------------------------------------- shadow agreement
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def detection_agreement(active: DetectionsLike, reference: DetectionsLike, iou_threshold: float = 0.5) -> float:
    """F1 of greedy, class-aware, score-ordered matches at IoU >= ``iou_threshold`` (1.0 when both are empty).

    The reference (the full configuration) plays the ground truth: precision = matched / active detections,
    recall = matched / reference detections.
    """
    n_a, n_r = len(active.scores), len(reference.scores)
    if n_a == 0 and n_r == 0:
        return 1.0
    if n_a == 0 or n_r == 0:
        return 0.0
    iou = box_iou(active.boxes, reference.boxes)
    iou[np.asarray(active.labels)[:, None] != np.asarray(reference.labels)[None, :]] = 0.0
    taken = np.zeros(n_r, dtype=bool)
    matched = 0
    for i in np.argsort(-np.asarray(active.scores), kind="stable"):
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            taken[j] = True
            matched += 1
    return 2.0 * matched / (n_a + n_r)


# ---------------------------------------------------------------------- energy
@dataclass
class EnergyMeter:
    """Joules per frame and power from a device power model; ``source`` says where the figures come from."""

    model: PowerModelLike
    source: str
    """E.g. ``model:x86_generic`` (modelled from measured busy time with that device profile)."""
    cost_of: Callable[[GranularityConfig], tuple[float, float]] | None = None
    """(MACs, bytes) of a configuration, from a cost table; None: busy time only."""

    def frame_energy_j(self, busy_s: float, config: GranularityConfig) -> float:
        macs, nbytes = self.cost_of(config) if self.cost_of is not None else (0.0, 0.0)
        return float(self.model.frame_energy_j(busy_s, macs=macs, bytes=nbytes))

    def power_w(self, frame_energy_j: float, fps: float) -> float:
        return float(self.model.power_w(frame_energy_j, fps))


class EnergyModelError(ValueError):
    """A power profile or cost table the energy accounting cannot use."""


def make_energy_meter(profile: str, cost_table: object | None = None) -> EnergyMeter:
    """An :class:`EnergyMeter` for the named device profile (source ``model:<profile>``).

    ``cost_table`` (a :class:`~agra_ros.detection.tables.CostTable` of this detector) adds the configuration's
    MACs and bytes to the busy time; without one the model works from busy time alone.
    """
    try:
        from agra_ros.device.power_model import PowerModel, load_profile
    except ImportError as exc:
        raise EnergyModelError(f"the device power model is not installed ({exc})") from None
    try:
        model = PowerModel(load_profile(profile))
    except (KeyError, OSError, ValueError) as exc:
        raise EnergyModelError(f"unknown or unusable power profile {profile!r}: {exc}") from None
    cost_of = None
    if cost_table is not None:

        def cost_of(config: GranularityConfig) -> tuple[float, float]:
            c = cost_table.frame_cost(config)  # type: ignore[attr-defined]
            return c.macs, c.bytes

    return EnergyMeter(model, f"model:{profile}", cost_of)


# ---------------------------------------------------------------------- the runtime
@dataclass
class FrameResult:
    """Everything perception_node publishes about one processed frame."""

    detections: DetectionsLike
    config: GranularityConfig
    """The configuration that actually ran (remote requests run locally: target ``local``)."""
    latency_ms: float
    busy_s: float
    energy_j: float
    power_w: float
    fps: float
    accuracy_proxy: float
    """Shadow agreement with the full configuration, NaN when not measured on this frame."""
    shadow_ms: float = 0.0

    @property
    def objects(self) -> int:
        return int(len(self.detections.scores))

    @property
    def mean_confidence(self) -> float:
        s = np.asarray(self.detections.scores)
        return float(s.mean()) if s.size else 0.0


@dataclass
class RuntimeStats:
    frames: int = 0
    shadow_frames: int = 0
    remote_run_locally: int = 0
    switches: int = 0
    busy_s_total: float = 0.0
    shadow_busy_s_total: float = 0.0
    last_accuracy_proxy: float = math.nan
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=200))


class PerceptionRuntime:
    """Runs the detector at the commanded granularity configuration, with fallback, shadow runs and accounting.

    Not thread-safe: one caller (the node's executor) drives it.

    Busy time (the energy model's input) is read from ``busy_clock`` around each detector call: by default the
    calling thread's CPU time, exact when torch runs on that thread (one intra-op thread). With more threads the
    work spreads over torch's pool, so pass ``busy_clock=None`` to use the wall time of the call instead.
    (``time.process_time`` would cover every thread, but it cost ~1.8 ms per read inside a node process with
    DDS threads on this machine, against ~1 us for the thread clock.)
    """

    def __init__(
        self,
        detector: Detector,
        safe_config: GranularityConfig,
        *,
        score_threshold: float = 0.3,
        shadow_share: float = 0.1,
        fallback_timeout_s: float = 2.0,
        energy: EnergyMeter | None = None,
        detector_name: str = "",
        clock: Callable[[], float] = time.monotonic,
        busy_clock: Callable[[], float] | None = time.thread_time,
    ) -> None:
        self.detector = detector
        self.layer_names: tuple[str, ...] = tuple(detector.switchable_layer_names())
        self.class_names: tuple[str, ...] = tuple(detector.class_names)
        self.detector_name = detector_name
        self.clock = clock
        self.busy_clock = busy_clock
        self.energy = energy
        self.score_threshold = 0.0
        self.set_score_threshold(score_threshold)
        self.shadow = ShadowScheduler(shadow_share)
        self.safe_config = self._check_layers(safe_config)
        self.full_config = full_configuration(self.n_layers)
        self.watchdog = CommandWatchdog(fallback_timeout_s, clock())
        self.commanded: GranularityConfig | None = None
        self.rate = SlidingRate()
        self.stats = RuntimeStats()
        self._loaded: GranularityConfig | None = None

    # ------------------------------------------------------------------ settings
    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def _check_layers(self, config: GranularityConfig) -> GranularityConfig:
        if config.n_layers != self.n_layers:
            raise GranularityError(f"configuration has {config.n_layers} layers, the detector has {self.n_layers}")
        return config

    def set_score_threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"score threshold must be in [0, 1], got {value}")
        self.score_threshold = float(value)

    def set_safe_config(self, config: GranularityConfig) -> None:
        self.safe_config = self._check_layers(config)

    def set_fallback_timeout(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"fallback timeout must be > 0 s, got {timeout_s}")
        self.watchdog.timeout_s = float(timeout_s)

    # ------------------------------------------------------------------ commands and fallback
    def command(self, data: Sequence[int]) -> tuple[GranularityConfig, str | None]:
        """Accept a wire-form command; returns (config, watchdog transition). Raises GranularityCommandError."""
        config = GranularityConfig.from_indices(data, self.n_layers)
        self.commanded = config
        return config, self.watchdog.command(self.clock())

    def check_fallback(self) -> str | None:
        """Call periodically: returns CommandWatchdog.ENTERED once when the fallback starts."""
        return self.watchdog.check(self.clock())

    @property
    def in_fallback(self) -> bool:
        return self.watchdog.in_fallback

    def requested_config(self) -> GranularityConfig:
        """What should run now: the commanded configuration, or the safe one (fallback, or no command yet)."""
        if self.watchdog.in_fallback or self.commanded is None:
            return self.safe_config
        return self.commanded

    def active_config(self) -> GranularityConfig:
        """What runs now: remote requests run locally (this node has no remote executor configured)."""
        req = self.requested_config()
        if req.execution_target != "local":
            return GranularityConfig(req.levels, req.resolution_scale, "local")
        return req

    # ------------------------------------------------------------------ processing
    def _load(self, config: GranularityConfig) -> None:
        if config != self._loaded:
            self.detector.set_config(config)
            if self._loaded is not None:
                self.stats.switches += 1
            self._loaded = config

    def _run(self, image: np.ndarray, config: GranularityConfig) -> tuple[DetectionsLike, float, float]:
        self._load(config)
        clock = self.busy_clock
        c0 = clock() if clock is not None else 0.0
        t0 = time.perf_counter()
        dets = self.detector.detect([image], self.score_threshold)[0]
        wall = time.perf_counter() - t0
        return dets, wall, (clock() - c0) if clock is not None else wall

    def process(self, image: np.ndarray) -> FrameResult:
        """Detect objects in one uint8 RGB frame at the active configuration (plus a shadow run when scheduled)."""
        if self.requested_config().execution_target != "local":
            self.stats.remote_run_locally += 1
        config = self.active_config()
        dets, wall_s, busy_s = self._run(image, config)
        now = self.clock()
        self.rate.tick(now)
        fps = self.rate.rate()
        accuracy = math.nan
        shadow_ms = 0.0
        if self.shadow.next():
            if config.levels == self.full_config.levels and config.resolution_scale == 1.0:
                accuracy = 1.0  # the active configuration is the reference itself: agreement is 1 by definition
            else:
                ref, shadow_wall, shadow_busy = self._run(image, self.full_config)
                accuracy = detection_agreement(dets, ref)
                shadow_ms = shadow_wall * 1e3
                self.stats.shadow_busy_s_total += shadow_busy
            self.stats.shadow_frames += 1
            self.stats.last_accuracy_proxy = accuracy
        energy_j = self.energy.frame_energy_j(busy_s, config) if self.energy is not None else math.nan
        power_w = self.energy.power_w(energy_j, fps) if self.energy is not None else math.nan
        self.stats.frames += 1
        self.stats.busy_s_total += busy_s
        self.stats.latencies_ms.append(wall_s * 1e3)
        return FrameResult(dets, config, wall_s * 1e3, busy_s, energy_j, power_w, fps, accuracy, shadow_ms)

    # ------------------------------------------------------------------ views
    def catalogue(self) -> dict:
        """The latched agra/granularity_catalogue content: layer and level names, knobs, safe configuration."""
        return {
            "format": CATALOGUE_FORMAT,
            "version": CATALOGUE_VERSION,
            "layers": list(self.layer_names),
            "levels": list(LEVELS),
            "resolution_scales": list(RESOLUTION_SCALES),
            "execution_targets": list(EXECUTION_TARGETS),
            "detector": self.detector_name,
            "classes": list(self.class_names),
            "safe": self.safe_config.short(),
        }

    def latency_percentile(self, q: float) -> float:
        lat = self.stats.latencies_ms
        return float(np.percentile(np.asarray(lat), q)) if lat else math.nan


__all__ = [
    "CommandWatchdog",
    "EnergyMeter",
    "EnergyModelError",
    "FrameResult",
    "PerceptionRuntime",
    "RatePacer",
    "ShadowScheduler",
    "SlidingRate",
    "box_iou",
    "detection_agreement",
    "make_energy_meter",
]
