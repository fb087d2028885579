"""The perception runtime: what perception_node does with a frame, without ROS.

A ROS node is a thin adapter (docs/architecture.md); everything that decides *how* a frame is processed is in
:class:`PerceptionRuntime` so it can be tested without spinning anything. It composes the parts that live in
modules of their own:

- the command watchdog (perception/watchdog.py): when no valid command arrived for ``fallback_timeout_s`` the
  fallback configuration runs, and the transition in and out of that state is reported once each (so the node
  logs it once);
- the measured rate and the shadow schedule (perception/pacing.py; the node paces with its RatePacer);
- the shadow accuracy proxy: on a share of frames the full configuration also runs, and the active configuration's
  detections are scored against it by the confident agreement (perception/agreement.py); on those frames the
  active configuration detects down to min(score_threshold, 0.1) and publishes the cut at score_threshold;
- energy accounting (perception/energy.py): measured CPU busy time of the frame (plus MACs/bytes from a cost table
  when one fits) turned into the detector energy per frame by a device power model, with the figure's source named.

Commands are decoded by GranularityConfig.from_indices (granularity/levels.py).
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
    KEYFRAME_INTERVALS,
    LEVELS,
    RESOLUTION_SCALES,
    GranularityCommandError,
    GranularityConfig,
    GranularityError,
    full_configuration,
)
from agra_ros.perception.agreement import (
    CONFIDENT_CANDIDATE_SCORE,
    CONFIDENT_REFERENCE_SCORE,
    DetectionsLike,
    confident_frame_agreement,
    cut,
)
from agra_ros.perception.energy import EnergyMeter
from agra_ros.perception.pacing import ShadowScheduler, SlidingRate
from agra_ros.perception.tracker import KeyframeTracker
from agra_ros.perception.watchdog import CommandWatchdog
from agra_ros.workload.features import motion_thumbnail, thumbnail_motion

CATALOGUE_FORMAT = "agra_ros/granularity-catalogue"
CATALOGUE_VERSION = 1


# ---------------------------------------------------------------------- interfaces of the collaborators
class Detector(Protocol):
    """What the runtime needs of a detector (agra_ros.detectors.synthetic.network.AgraDetector has it)."""

    class_names: tuple[str, ...]

    def switchable_layer_names(self) -> list[str]: ...

    def set_config(self, config: GranularityConfig) -> None: ...

    def detect(self, images: Sequence[np.ndarray], score_threshold: float = 0.3) -> list[DetectionsLike]: ...


# ---------------------------------------------------------------------- the runtime
@dataclass
class RemoteCost:
    """A frame commanded ``remote``: where it ran, what sending it cost the robot, what the server reported."""

    server_id: str = ""
    """The perception server that ran it; empty: it ran here (a miss)."""
    miss: str = ""
    """Why it ran here (agra_ros.perception.offload.MISS_CAUSES); empty when the server ran it."""
    rtt_s: float = math.nan
    """From the JPEG encode to the reply (the deadline on a timeout); NaN when nothing was sent."""
    encode_busy_s: float = 0.0
    """The robot's busy time encoding the JPEG (charged as detector work)."""
    radio_j: float = 0.0
    """The robot's radio energy for the request (agra_ros.device.radio)."""
    server_compute_ms: float = math.nan
    server_energy_j: float = math.nan
    """The server's own detector energy: reported beside the robot's, never added to it."""


@dataclass
class FrameResult:
    """Everything perception_node publishes about one processed frame."""

    detections: DetectionsLike
    config: GranularityConfig
    """The configuration that actually ran (target ``remote`` only when a perception server answered)."""
    latency_ms: float
    busy_s: float
    detector_energy_per_frame_j: float
    """The detector's dynamic joules of this frame (the device power model's E_dyn), idle power excluded."""
    power_w: float
    fps: float
    accuracy_proxy: float
    """Shadow agreement with the full configuration, NaN when not measured on this frame."""
    shadow_ms: float = 0.0
    tracked: bool = False
    """True: the keyframe's detections moved onto this frame by the tracker (no detector run)."""
    motion: float = 0.0
    """Mean absolute grey-level change from the previous frame (0-255, thumbnails): W's cheap motion feature."""
    resolution_mpix: float = 0.0
    """Size of the frame: width x height / 1e6."""
    embedding: np.ndarray | None = None
    """The workload embedding of the last keyframe (the detector's pooled backbone), None before the detector
    computed one."""
    remote: RemoteCost | None = None
    """Set for frames commanded ``remote``: the server's answer, or the miss that made it run here."""

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
    """Frames commanded remote that ran here (no server, link down, timeout)."""
    remote_frames: int = 0
    """Frames a perception server ran."""
    switches: int = 0
    busy_s_total: float = 0.0
    shadow_busy_s_total: float = 0.0
    last_accuracy_proxy: float = math.nan
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=200))
    tracked_frames: int = 0
    forced_keyframes: dict[str, int] = field(default_factory=dict)
    """Keyframes the tracker asked for before their interval was up, by reason (scene cut, lost every box)."""


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
        fallback_config: GranularityConfig,
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
        self.fallback_config = self._check_layers(fallback_config)
        self.full_config = full_configuration(self.n_layers)
        self._overhead = (0.0, 0.0)
        """Busy seconds and joules waiting for the next frame (:meth:`add_overhead`)."""
        self.watchdog = CommandWatchdog(fallback_timeout_s, clock())
        self.commanded: GranularityConfig | None = None
        self.rate = SlidingRate()
        self.stats = RuntimeStats()
        self._loaded: GranularityConfig | None = None
        self.tracker = KeyframeTracker()
        self._since_keyframe = 0
        self._previous: np.ndarray | None = None
        self._embedding: np.ndarray | None = None

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

    def set_fallback_config(self, config: GranularityConfig) -> None:
        self.fallback_config = self._check_layers(config)

    def set_fallback_timeout(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"fallback timeout must be > 0 s, got {timeout_s}")
        self.watchdog.timeout_s = float(timeout_s)

    # ------------------------------------------------------------------ commands and fallback
    def command(self, data: Sequence[int], keyframe_interval: int = 1) -> tuple[GranularityConfig, str | None]:
        """Accept a wire-form command and its keyframe interval; returns (config, watchdog transition). Raises
        GranularityCommandError (an interval outside the catalogue is kind ``unknown_interval``)."""
        config = GranularityConfig.from_indices(data, self.n_layers)
        if keyframe_interval not in KEYFRAME_INTERVALS:
            raise GranularityCommandError(
                "unknown_interval",
                f"granularity command: keyframe interval {keyframe_interval}, known {', '.join(map(str, KEYFRAME_INTERVALS))}",
            )
        config = config.with_keyframe_interval(keyframe_interval)
        self.commanded = config
        return config, self.watchdog.command(self.clock())

    def check_fallback(self) -> str | None:
        """Call periodically: returns CommandWatchdog.ENTERED once when the fallback starts."""
        return self.watchdog.check(self.clock())

    @property
    def in_fallback(self) -> bool:
        return self.watchdog.in_fallback

    def requested_config(self) -> GranularityConfig:
        """What should run now: the commanded configuration, or the fallback configuration (the policy fell
        silent, or no command yet)."""
        if self.watchdog.in_fallback or self.commanded is None:
            return self.fallback_config
        return self.commanded

    def active_config(self) -> GranularityConfig:
        """What runs here now: the requested configuration, or for a remote request that must run here (no server,
        link down, timeout) the fallback configuration."""
        req = self.requested_config()
        if req.execution_target != "local":
            return self.fallback_config
        return req

    def wants_remote(self) -> bool:
        """Whether the configuration in force asks for a perception server."""
        return self.requested_config().execution_target == "remote"

    # ------------------------------------------------------------------ processing
    def _load(self, config: GranularityConfig) -> None:
        config = config.detector_config()  # the interval is the runtime's, not the network's
        if config != self._loaded:
            self.detector.set_config(config)
            if self._loaded is not None:
                self.stats.switches += 1
            self._loaded = config

    def _run(
        self, image: np.ndarray, config: GranularityConfig, score: float | None = None
    ) -> tuple[DetectionsLike, float, float]:
        """The detector's output at ``config`` down to ``score`` (default: the published threshold), timed."""
        self._load(config)
        clock = self.busy_clock
        c0 = clock() if clock is not None else 0.0
        t0 = time.perf_counter()
        dets = self.detector.detect([image], self.score_threshold if score is None else score)[0]
        wall = time.perf_counter() - t0
        return dets, wall, (clock() - c0) if clock is not None else wall

    def _track(self, image: np.ndarray, config: GranularityConfig):
        """The tracked detections of a frame between keyframes, or None when a keyframe is due or forced."""
        if config.keyframe_interval == 1 or self._since_keyframe + 1 >= config.keyframe_interval:
            return None
        if not self.tracker.has_keyframe:
            return None
        clock = self.busy_clock
        c0 = clock() if clock is not None else 0.0
        res = self.tracker.track(image)
        busy = (clock() - c0) if clock is not None else res.seconds
        if not res.ok:
            forced = self.stats.forced_keyframes
            forced[res.reason] = forced.get(res.reason, 0) + 1
            return None
        return res, res.seconds, busy

    def process(self, image: np.ndarray, remote: RemoteCost | None = None) -> FrameResult:
        """Detect objects in one uint8 RGB frame at the active configuration (plus a shadow run when scheduled).

        At keyframe interval k the detector runs on every k-th frame and the tracker moves its detections onto the
        frames in between; a scene cut or a tracking failure forces a keyframe. ``remote``: the frame was commanded
        remote and runs here (a miss); what sending it cost (JPEG, radio, the wait) is added to its energy and
        latency."""
        if self.requested_config().execution_target != "local":
            self.stats.remote_run_locally += 1
        config = self.active_config()
        thumb = motion_thumbnail(image)
        motion = thumbnail_motion(self._previous, thumb) if self._previous is not None else 0.0
        self._previous = thumb
        shadow = self.shadow.next()
        tracked = self._track(image, config)
        if tracked is not None:
            dets, wall_s, busy_s = tracked
            candidate = dets
            self._since_keyframe += 1
            self.stats.tracked_frames += 1
        else:
            low = min(self.score_threshold, CONFIDENT_CANDIDATE_SCORE) if shadow else None
            candidate, wall_s, busy_s = self._run(image, config, low)
            dets = cut(candidate, self.score_threshold) if shadow else candidate  # what is published
            self._since_keyframe = 0
            self._embedding = getattr(dets, "embedding", None)
            if config.keyframe_interval > 1:
                self.tracker.keyframe(image, dets.boxes, dets.scores, dets.labels)
            else:
                self.tracker.reset()  # a later interval > 1 starts from a fresh keyframe, never a stale one
        now = self.clock()
        self.rate.tick(now)
        fps = self.rate.rate()
        accuracy = math.nan
        shadow_ms = 0.0
        if shadow:
            reference_ran = config.levels == self.full_config.levels and config.resolution_scale == 1.0
            if reference_ran and tracked is None:  # the active configuration is the reference itself: 1 (NaN
                accuracy = confident_frame_agreement(candidate, candidate)  # when it has no confident box)
            else:
                ref, shadow_wall, shadow_busy = self._run(image, self.full_config, CONFIDENT_REFERENCE_SCORE)
                accuracy = confident_frame_agreement(candidate, ref)  # NaN: full has no confident box here
                shadow_ms = shadow_wall * 1e3
                self.stats.shadow_busy_s_total += shadow_busy
            self.stats.shadow_frames += 1
            if not math.isnan(accuracy):
                self.stats.last_accuracy_proxy = accuracy
        energy = self.energy
        detector_ran = tracked is None
        detector_j = (
            energy.detector_energy_per_frame_j(busy_s, config, detector_ran) if energy is not None else math.nan
        )
        if remote is not None:  # the miss still paid for encoding and sending the frame, and for the wait
            wait_s = remote.rtt_s if math.isfinite(remote.rtt_s) else 0.0
            wall_s += wait_s
            busy_s += remote.encode_busy_s
            if energy is not None:
                detector_j += energy.detector_energy_per_frame_j(remote.encode_busy_s, config, False) + remote.radio_j
        return self._finish(image.shape, dets, config, wall_s, busy_s, detector_j, fps, accuracy, shadow_ms,
                            not detector_ran, motion, remote)  # fmt: skip

    def add_overhead(self, busy_s: float, energy_j: float) -> None:
        """Work done for no frame of its own (a link probe's encode: ``busy_s`` of CPU; its radio: ``energy_j``):
        charged to the next frame, as a remote frame's own encode and radio are charged to it."""
        self._overhead = (self._overhead[0] + busy_s, self._overhead[1] + energy_j)

    def _finish(self, shape, dets, config, wall_s, busy_s, detector_j, fps, accuracy, shadow_ms, tracked, motion,
                remote) -> FrameResult:  # fmt: skip
        (extra_busy_s, extra_j), self._overhead = self._overhead, (0.0, 0.0)
        energy = self.energy
        if extra_busy_s or extra_j:
            busy_s += extra_busy_s
            if energy is not None:
                detector_j += energy.detector_energy_per_frame_j(extra_busy_s, config, False) + extra_j
        power_w = energy.power_w(detector_j, fps, busy_s) if energy is not None else math.nan
        self.stats.frames += 1
        self.stats.busy_s_total += busy_s
        self.stats.latencies_ms.append(wall_s * 1e3)
        return FrameResult(
            dets,
            config,
            wall_s * 1e3,
            busy_s,
            detector_j,
            power_w,
            fps,
            accuracy,
            shadow_ms,
            tracked,
            motion,
            shape[0] * shape[1] / 1e6,
            self._embedding,
            remote,
        )

    def remote_frame(
        self,
        image: np.ndarray,
        dets: DetectionsLike,
        config: GranularityConfig,
        remote: RemoteCost,
        accuracy: float = math.nan,
        embedding: np.ndarray | None = None,
    ) -> FrameResult:
        """The result of a frame a perception server ran: its detections, the configuration it ran (target
        ``remote``), the server's shadow agreement (NaN: not measured). The robot's energy is its JPEG encode and its
        radio only: the server's joules stay in ``remote.server_energy_j``; the latency is the round trip."""
        thumb = motion_thumbnail(image)
        motion = thumbnail_motion(self._previous, thumb) if self._previous is not None else 0.0
        self._previous = thumb
        if embedding is not None:
            self._embedding = embedding
        self._since_keyframe = 0
        self.tracker.reset()  # the server ran a keyframe the local tracker never saw
        self.rate.tick(self.clock())
        energy = self.energy
        detector_j = math.nan
        if energy is not None:
            detector_j = energy.detector_energy_per_frame_j(remote.encode_busy_s, config, False) + remote.radio_j
        if not math.isnan(accuracy):
            self.stats.shadow_frames += 1
            self.stats.last_accuracy_proxy = accuracy
        self.stats.remote_frames += 1
        wall_s = remote.rtt_s if math.isfinite(remote.rtt_s) else 0.0
        return self._finish(image.shape, dets, config, wall_s, remote.encode_busy_s, detector_j, self.rate.rate(),
                            accuracy, 0.0, False, motion, remote)  # fmt: skip

    # ------------------------------------------------------------------ views
    def catalogue(self) -> dict:
        """The latched agra/granularity_catalogue content: layer and level names, knobs, fallback configuration."""
        return {
            "format": CATALOGUE_FORMAT,
            "version": CATALOGUE_VERSION,
            "layers": list(self.layer_names),
            "levels": list(LEVELS),
            "resolution_scales": list(RESOLUTION_SCALES),
            "execution_targets": list(EXECUTION_TARGETS),
            "keyframe_intervals": list(KEYFRAME_INTERVALS),
            "detector": self.detector_name,
            "classes": list(self.class_names),
            "fallback_configuration": self.fallback_config.short(),
        }

    def latency_percentile(self, q: float) -> float:
        lat = self.stats.latencies_ms
        return float(np.percentile(np.asarray(lat), q)) if lat else math.nan


__all__ = ["Detector", "FrameResult", "PerceptionRuntime", "RemoteCost", "RuntimeStats"]
