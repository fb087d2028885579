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
