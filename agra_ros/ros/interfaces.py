"""The package's own messages (msg/, generated as ``agra_ros.msg``) to and from the core's types.

One place for these conversions, so perception, the policy, the probes and the tests read and write the same
fields the same way, and the core (granularity/, detection/, online/) never sees a message:

- ``GranularityCommand`` (agra/granularity) <-> :class:`~agra_ros.granularity.levels.GranularityConfig`;
- ``PerceptionFeedback`` (agra/feedback) from a :class:`~agra_ros.perception.runtime.FrameResult`, and back to the
  policy's validated :class:`~agra_ros.online.inputs.Feedback`;
- ``GranularityCatalogue`` (agra/granularity_catalogue) from the runtime's catalogue.

Malformed messages raise the core's typed errors (``GranularityCommandError`` with its ``kind``,
``InputRejected``), which the nodes count, log and skip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from std_msgs.msg import Header

from agra_ros.core.reward import system_energy_per_frame_j
from agra_ros.feedback import FEEDBACK_FIELDS
from agra_ros.granularity.levels import (
    EXECUTION_TARGETS,
    KEYFRAME_INTERVALS,
    RESOLUTION_SCALES,
    GranularityCommandError,
    GranularityConfig,
)
from agra_ros.limits import InputRejected, bounded
from agra_ros.msg import GranularityCatalogue, GranularityCommand, PerceptionFeedback
from agra_ros.online.inputs import Feedback, parse_feedback
from agra_ros.perception.offload import LinkStats
from agra_ros.perception.runtime import FrameResult, RemoteCost
from agra_ros.workload.features import WorkloadFeatures, check_embedding

MAX_RESOLUTION_MPIX = 100.0
"""No camera in scope sends more than this; a larger size is an encoding error."""

__all__ = [
    "workload_from_msg",
    "GranularityCatalogue",
    "GranularityCommand",
    "PerceptionFeedback",
    "catalogue_layers_levels",
    "catalogue_to_msg",
    "command_from_msg",
    "command_to_msg",
    "configuration_short",
    "feedback_from_msg",
    "feedback_to_msg",
]


# ---------------------------------------------------------------------- GranularityCommand
def command_to_msg(config: GranularityConfig, decision: int = 0, header: Header | None = None) -> GranularityCommand:
    """The command of ``config``; ``decision`` numbers the policy's decision (0: not a policy's, e.g. the fallback
    configuration)."""
    idx = config.to_indices()
    return GranularityCommand(
        header=header if header is not None else Header(),
        levels=idx[: config.n_layers],
        resolution_scale=float(config.resolution_scale),
        execution_target=idx[-1],
        keyframe_interval=int(config.keyframe_interval),
        decision=int(decision),
    )


def command_from_msg(msg: GranularityCommand, n_layers: int) -> GranularityConfig:
    """The configuration a command asks for, for a detector of ``n_layers``.

    Raises :class:`GranularityCommandError` with kind ``wrong_length``, ``unknown_level``, ``unknown_scale``,
    ``unknown_target`` or ``unknown_interval`` (the perception node's counters), as the core decoder does.
    """
    scale = float(msg.resolution_scale)
    matches = [i for i, s in enumerate(RESOLUTION_SCALES) if math.isfinite(scale) and abs(scale - s) < 1e-6]
    if not matches:
        raise GranularityCommandError(
            "unknown_scale",
            f"granularity command: resolution scale {scale:g}, known {', '.join(f'{s:g}' for s in RESOLUTION_SCALES)}",
        )
    config = GranularityConfig.from_indices([*msg.levels, matches[0], int(msg.execution_target)], n_layers)
    interval = int(msg.keyframe_interval) or 1  # 0: a sender that predates the field
    if interval not in KEYFRAME_INTERVALS:
        raise GranularityCommandError(
            "unknown_interval",
            f"granularity command: keyframe interval {interval}, known {', '.join(map(str, KEYFRAME_INTERVALS))}",
        )
    return config.with_keyframe_interval(interval)


def configuration_short(msg: GranularityCommand) -> str:
    """The short form of a command (``FF7755522/1/local``), or "" when it is not a valid configuration: for views
    and logs, which show what they can and skip the rest."""
    try:
        return command_from_msg(msg, len(msg.levels)).short()
    except GranularityCommandError:
        return ""


# ---------------------------------------------------------------------- PerceptionFeedback
def feedback_to_msg(
    res: FrameResult,
    header: Header,
    energy_source: str,
    decision: int = 0,
    fallback: bool = False,
    command_header: Header | None = None,
    link: LinkStats | None = None,
) -> PerceptionFeedback:
    """The feedback of one processed frame; ``header`` is the camera frame's, ``decision`` and ``command_header``
    those of the command in force (0 and an empty header for the fallback configuration). The system energy per
    frame is :func:`~agra_ros.core.reward.system_energy_per_frame_j` of the frame's power and FPS (NaN at 0 FPS).
    A frame commanded remote carries where it ran and what it cost (``res.remote``); ``link``: the measurements of
    the link to the perception server."""
    fps = float(res.fps)
    system_j = float(system_energy_per_frame_j(res.power_w, fps)) if fps > 0 else math.nan
    return PerceptionFeedback(
        header=header,
        fps=fps,
        latency_ms=float(res.latency_ms),
        detector_energy_per_frame_j=float(res.detector_energy_per_frame_j),
        system_energy_per_frame_j=system_j,
        power_w=float(res.power_w),
        energy_source=energy_source,
        accuracy_proxy=float(res.accuracy_proxy),
        objects=int(res.objects),
        mean_confidence=float(res.mean_confidence),
        configuration=command_to_msg(res.config, decision, command_header),
        fallback=bool(fallback),
        tracked=bool(res.tracked),
        motion=float(res.motion),
        resolution_mpix=float(res.resolution_mpix),
        workload_embedding=[] if res.embedding is None else [float(v) for v in res.embedding],
        **_remote_fields(getattr(res, "remote", None), link),
    )


def _remote_fields(remote: RemoteCost | None, link: LinkStats | None) -> dict:
    nan = math.nan
    r = remote if remote is not None else RemoteCost()
    out = {
        "remote_server": r.server_id,
        "remote_miss": r.miss,
        "remote_rtt_ms": float(r.rtt_s * 1e3),
        "radio_energy_per_frame_j": float(r.radio_j),
        "server_compute_ms": float(r.server_compute_ms),
        "server_energy_per_frame_j": float(r.server_energy_j),
        "link_rtt_ms": nan,
        "link_uplink_mbps": nan,
        "link_loss": nan,
        "server_queue": 0,
    }
    if link is not None:
        out.update(
            link_rtt_ms=float(link.rtt_ms),
            link_uplink_mbps=float(link.uplink_mbps),
            link_loss=float(link.loss),
            server_queue=int(link.server_queue),
        )
    return out


def workload_from_msg(msg: PerceptionFeedback, fb: Feedback) -> WorkloadFeatures:
    """W from a feedback message (its embedding, motion and frame size, and ``fb``'s objects and confidence);
    raises :class:`InputRejected` (kind ``embedding``) when the embedding is missing, of the wrong length or
    non-finite, or motion or size are out of range: the policy then keeps the last good W."""
    kind = "embedding"
    try:
        embedding = check_embedding(msg.workload_embedding)
    except ValueError as exc:
        raise InputRejected(kind, str(exc)) from None
    return WorkloadFeatures(
        embedding=embedding,
        resolution_mpix=bounded(kind, "resolution_mpix", float(msg.resolution_mpix), 0.0, MAX_RESOLUTION_MPIX),
        objects=fb.objects,
        mean_confidence=fb.mean_confidence,
        motion=bounded(kind, "motion", float(msg.motion), 0.0, 255.0),
    )


def feedback_from_msg(msg: PerceptionFeedback) -> Feedback:
    """The policy's validated feedback; raises :class:`InputRejected` (kind ``feedback``) for non-finite or
    out-of-range values."""
    # the message's fields carry the names of the core's feedback fields (test/test_interfaces.py checks it)
    return parse_feedback([float(getattr(msg, name)) for name in FEEDBACK_FIELDS])


# ---------------------------------------------------------------------- GranularityCatalogue
def catalogue_to_msg(catalogue: Mapping, header: Header | None = None) -> GranularityCatalogue:
    """The message of :meth:`~agra_ros.perception.runtime.PerceptionRuntime.catalogue`'s content."""
    fallback = GranularityConfig.from_short(catalogue["fallback_configuration"])
    return GranularityCatalogue(
        header=header if header is not None else Header(),
        detector=str(catalogue["detector"]),
        class_names=[str(c) for c in catalogue["classes"]],
        layer_names=[str(n) for n in catalogue["layers"]],
        level_names=[str(n) for n in catalogue["levels"]],
        resolution_scales=[float(s) for s in catalogue["resolution_scales"]],
        execution_targets=[str(t) for t in catalogue.get("execution_targets", EXECUTION_TARGETS)],
        keyframe_intervals=[int(k) for k in catalogue.get("keyframe_intervals", KEYFRAME_INTERVALS)],
        safe_configuration=command_to_msg(fallback, 0, header),  # the message's name of the fallback configuration
    )


def catalogue_layers_levels(msg: GranularityCatalogue) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(layer names, level names) of a catalogue; raises :class:`InputRejected` (kind ``catalogue``) when it names
    no layer or no level: such a catalogue describes no detector."""
    layers, levels = tuple(msg.layer_names), tuple(msg.level_names)
    if not layers or not levels:
        raise InputRejected("catalogue", f"not a granularity catalogue: {len(layers)} layers, {len(levels)} levels")
    return layers, levels
