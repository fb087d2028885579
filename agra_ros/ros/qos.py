"""QoS profiles: sensor-data for images (overridable, as image_proc does), latched for catalogues."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str = "best_effort", depth: int = 1) -> QoSProfile:
    """Sensor-data QoS (keep-last, volatile) with the reliability a parameter picked.

    Depth 1 by default: a perception node wants the newest frame, never a backlog of stale ones.
    """
    if reliability not in RELIABILITY:
        raise ValueError(f"reliability must be one of {sorted(RELIABILITY)}, got {reliability!r}")
    return QoSProfile(
        history=qos_profile_sensor_data.history,
        depth=depth,
        durability=qos_profile_sensor_data.durability,
        reliability=RELIABILITY[reliability],
    )


def command_qos(depth: int = 5) -> QoSProfile:
    """Reliable, volatile: commands (granularity, target FPS) and feedback scalars."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def latched_qos() -> QoSProfile:
    """Reliable + transient-local: a late subscriber still gets the last message (catalogues, layer names)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
