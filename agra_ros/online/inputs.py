"""Validation of what the policy hears from the graph: perception feedback, target FPS, device readings.

Every input of the on-robot agent crosses a process boundary and may come from a node we did not write (a jtop node,
a user's ``ros2 topic pub``). Each parser here turns the raw values into a typed record or raises
:class:`InputRejected` with a message that says what was wrong; the node logs it (throttled), counts it by kind
(:class:`agra_ros.bad_inputs.BadInputCounter`) and keeps running on the last good values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agra_ros.core.observation import LinkObservation
from agra_ros.feedback import FEEDBACK_FIELDS
from agra_ros.limits import InputRejected, bounded

MAX_FPS = 1000.0
"""No camera pipeline in scope runs faster; a larger value is a unit or encoding error."""
MAX_LATENCY_MS = 60_000.0
MAX_ENERGY_J = 1_000.0
MAX_POWER_W = 10_000.0
MAX_OBJECTS = 10_000


@dataclass(frozen=True)
class Feedback:
    """One perception feedback vector (one processed frame)."""

    fps: float
    latency_ms: float
    detector_energy_per_frame_j: float
    """Perception's detector energy per frame (dynamic joules, idle excluded); the reward uses the system's."""
    power_w: float
    accuracy_proxy: float
    """Agreement with the full configuration in 0..1, NaN when not measured on this frame."""
    objects: int
    mean_confidence: float

    @property
    def has_accuracy(self) -> bool:
        return not math.isnan(self.accuracy_proxy)


def parse_feedback(values: Sequence[float]) -> Feedback:
    """Feedback from an agra/feedback message's fields, in :data:`FEEDBACK_FIELDS` order."""
    kind = "feedback"
    if len(values) != len(FEEDBACK_FIELDS):
        raise InputRejected(
            kind, f"{len(values)} values, expected {len(FEEDBACK_FIELDS)} ({', '.join(FEEDBACK_FIELDS)})"
        )
    v = [float(x) for x in values]
    accuracy = v[4]
    if not math.isnan(accuracy):
        bounded(kind, "accuracy_proxy", accuracy, 0.0, 1.0)
    objects = bounded(kind, "objects", v[5], 0.0, MAX_OBJECTS)
    return Feedback(
        fps=bounded(kind, "fps", v[0], 0.0, MAX_FPS),
        latency_ms=bounded(kind, "latency_ms", v[1], 0.0, MAX_LATENCY_MS),
        detector_energy_per_frame_j=bounded(kind, "detector_energy_per_frame_j", v[2], 0.0, MAX_ENERGY_J),
        power_w=bounded(kind, "power_w", v[3], 0.0, MAX_POWER_W),
        accuracy_proxy=accuracy,
        objects=int(round(objects)),
        mean_confidence=bounded(kind, "mean_confidence", v[6], 0.0, 1.0),
    )


def parse_link(rtt_ms: float, uplink_mbps: float, loss: float, fallback_rtt_s: float) -> LinkObservation:
    """P's link entries from perception's link measurements (PerceptionFeedback's ``link_rtt_ms``,
    ``link_uplink_mbps``, ``link_loss``), the way the simulator shows them (:meth:`agra_ros.sim.link.LinkSim.
    observation`).

    A server counts as available when a recent request was answered: the smoothed RTT is finite and positive (NaN:
    nothing answered yet; 0: a message built without link stats, a real round trip is never 0) and not every one of
    the last requests went unanswered (loss below 1). Without one the entries are
    the simulator's "no server" values (``fallback_rtt_s``, no uplink, no loss), whatever stale numbers perception
    still carries, so a NaN never reaches the observation. With one, a NaN uplink or loss reads as 0 and values are
    clipped to their physical range (P clips them again to its bounds)."""
    finite = math.isfinite
    loss_v = min(1.0, max(0.0, loss)) if finite(loss) else 0.0
    if not (finite(rtt_ms) and rtt_ms > 0.0 and loss_v < 1.0):
        return LinkObservation(rtt_s=fallback_rtt_s)
    return LinkObservation(
        rtt_s=rtt_ms / 1e3,
        uplink_mbps=max(0.0, uplink_mbps) if finite(uplink_mbps) else 0.0,
        loss=loss_v,
        server=True,
    )
