"""Bounds of the values that cross process boundaries, defined once.

Every place that reads one of these values (a parameter at start-up or at runtime, a topic, a trace file) checks it
against the numbers here, so a value one node accepts is never one another node chokes on.
"""

from __future__ import annotations

import math

TARGET_FPS_MIN = 0.5
TARGET_FPS_MAX = 240.0
TARGET_FPS_RANGE = (TARGET_FPS_MIN, TARGET_FPS_MAX)
"""Target frame rate in FPS, inclusive: the policy's ``target_fps`` parameter, ``agra/target_fps`` wherever it is
read (policy, perception) and the target of a trace phase that camera_source announces. Below 0.5 FPS a robot is not
detecting any more; above 240 no camera pipeline in scope delivers."""

ACCURACY_FLOOR = 0.9
ACCURACY_FLOOR_RANGE = (0.0, 1.0)
"""Default accuracy floor of the performance target P, as a share of the full configuration's accuracy, and the
range it may take: the policy's ``accuracy_floor`` parameter, the simulator's default and the contract's."""

CRITICAL_TEMP_C = 95.0
CRITICAL_TEMP_RANGE_C = (20.0, 150.0)
"""Temperature at which the policy's safety override engages when the device state names no critical level of its
own (device_monitor's ``temp_critical_c`` wins whenever reported), and the range the ``critical_temp_c`` parameter
accepts."""
RECOVER_MARGIN_C = 5.0
RECOVER_MARGIN_RANGE_C = (0.0, 50.0)
"""How far below the critical temperature the safety override ends (its hysteresis), and the range the
``recover_margin_c`` parameter accepts."""

MAX_IMAGE_SIDE = 8192
"""Largest image side in pixels that perception and the policy convert; a larger frame is counted and skipped."""
MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""Largest pixel data (step * height) of one frame: 64 MiB, e.g. 8192x8192 mono8 or 4096x4096 rgba8 (a 4K rgb8
frame is 24 MiB). A larger frame is counted and skipped before it is converted."""


class InputRejected(ValueError):
    """An input message that the policy refuses; ``kind`` names the input (the diagnostics counter key)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def bounded(kind: str, name: str, value: float, lo: float, hi: float) -> float:
    """``value`` when finite and inside [lo, hi]; otherwise :class:`InputRejected` naming the input and the field."""
    if not math.isfinite(value):
        raise InputRejected(kind, f"{name} is {value}, expected a finite number")
    if not lo <= value <= hi:
        raise InputRejected(kind, f"{name}={value:g} outside [{lo:g}, {hi:g}]")
    return value


def parse_target_fps(value: float, lo: float = TARGET_FPS_MIN, hi: float = TARGET_FPS_MAX) -> float:
    """A target FPS from a topic, inside the range the ``target_fps`` parameter accepts
    (:data:`agra_ros.limits.TARGET_FPS_RANGE`)."""
    return bounded("target_fps", "target FPS", float(value), lo, hi)
