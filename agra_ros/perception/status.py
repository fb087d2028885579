"""What perception reports about itself on /diagnostics, built without ROS.

The node counts what only it sees (frames received, replaced while waiting for their pacing slot, lost in
transport, its own cost per frame) in :class:`FrameCounters`; :func:`perception_status` turns those, the runtime's
state and the last frame into the key-value pairs and summary lines the node copies into its DiagnosticStatus.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.limits import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE
from agra_ros.perception.runtime import FrameResult, PerceptionRuntime


@dataclass
class FrameCounters:
    """image_raw as the node sees it, beyond what the runtime counts."""

    received: int = 0
    dropped: int = 0
    """Frames replaced by a newer one while they waited for their pacing slot."""
    lost: int = 0
    """Frames DDS reported lost before they reached the node (message-lost event)."""
    overhead_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    """The node's own cost per frame beyond the detector (conversion, bookkeeping, publishing)."""
    _reported: tuple[int, int] = (0, 0)
    """(lost, received) at the last report."""

    def mostly_lost_since_last_report(self) -> bool:
        """More frames lost in transport than received since the last call."""
        lost0, received0 = self._reported
        self._reported = (self.lost, self.received)
        return self.lost - lost0 > self.received - received0


@dataclass
class PerceptionStatus:
    values: list[tuple[str, object]] = field(default_factory=list)
    """Key-value pairs, in the order they are published."""
    warnings: list[str] = field(default_factory=list)
    """What is wrong; none: the node processes normally."""
    ok: str = ""
    """The summary when nothing is wrong."""


def perception_status(
    rt: PerceptionRuntime,
    now: float,
    frames: FrameCounters,
    last: FrameResult | None,
    target_fps: float | None,
    pacing_hz: float | None,
    bad: BadInputCounter,
    device: str,
    threads: int,
) -> PerceptionStatus:
    """Perception's status at ``now`` (the runtime's clock)."""
    fps = rt.rate.rate(now)
    source = rt.energy.source if rt.energy else "none"
    overhead = frames.overhead_ms
    values: list[tuple[str, object]] = [
        ("frames_received", frames.received),
        ("frames_processed", rt.stats.frames),
        ("frames_dropped", frames.dropped),
        ("frames_lost", frames.lost),
        ("max_frame_side_px", MAX_IMAGE_SIDE),
        ("max_frame_mib", MAX_IMAGE_BYTES // 2**20),
        ("fps", fps),
        ("target_fps", target_fps if target_fps is not None else math.nan),
        ("pacing_hz", pacing_hz if pacing_hz is not None else 0.0),
        ("latency_ms", last.latency_ms if last else math.nan),
        ("latency_ms_p50", rt.latency_percentile(50)),
        ("latency_ms_p95", rt.latency_percentile(95)),
        ("node_overhead_ms", sum(overhead) / len(overhead) if overhead else math.nan),
        ("detector_energy_per_frame_j", last.detector_energy_per_frame_j if last else math.nan),
        ("detector_energy_per_frame_j.source", source),
        ("power_w", last.power_w if last else math.nan),
        ("power_w.source", source),
        ("accuracy_proxy", rt.stats.last_accuracy_proxy),
        ("shadow_frames", rt.stats.shadow_frames),
        ("configuration", rt.active_config().short()),
        ("requested_configuration", rt.requested_config().short()),
        ("fallback_configuration", rt.fallback_config.short()),
        ("fallback", rt.in_fallback),
        ("fallbacks", rt.watchdog.fallbacks),
        ("command_age_s", rt.watchdog.age(now)),
        ("granularity_commands", rt.watchdog.commands),
        ("configuration_switches", rt.stats.switches),
        ("remote_run_locally", rt.stats.remote_run_locally),
        ("remote_frames", rt.stats.remote_frames),
        ("bad_input_total", bad.total()),
        *((f"bad_input.{kind}", n) for kind, n in sorted(bad.counts().items())),
        ("device", device),
        ("threads", threads),
    ]
    warnings = []
    if rt.in_fallback:
        warnings.append(f"no granularity command: fallback configuration {rt.fallback_config.short()}")
    if frames.mostly_lost_since_last_report():
        warnings.append(f"most image_raw frames lost in transport ({frames.lost} so far): too large?")
    if frames.received == 0:
        warnings.append("no frames received on image_raw")
    if rt.wants_remote() and last is not None and last.remote is not None and last.remote.miss:
        warnings.append(f"remote execution commanded, running here ({last.remote.miss}): see remote.miss.*")
    ok = f"processing at {fps:.1f} FPS, configuration {rt.active_config().short()}"
    return PerceptionStatus(values, warnings, ok)
