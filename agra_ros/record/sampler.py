"""The graph's topics -> the named series of a run, in one place for the live dashboard and for recordings.

Core code: messages are read by field name only (duck typing), so the same code takes rclpy messages on the robot
and rosbags' decoded messages from a recording on a laptop with no ROS. What a run is summarised from:

- ``agra/feedback`` (PerceptionFeedback): perception FPS, latency, detector energy per frame, accuracy proxy
  (recordings made before the field was named ``detector_energy_per_frame_j`` carry it as ``energy_per_frame_j``);
- ``agra/target_fps`` and ``agra/reward`` (Float32, from the policy);
- ``agra/configuration`` (String, short form such as ``FF7755522/1/local``, from perception);
- ``/diagnostics``: the device monitor's power, temperature and CPU use with their sources, the camera's rate,
  and the policy's algorithm (its hardware_id ``policy:<algorithm>``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from agra_ros.device.keys import DEVICE_STATUS_NAME
from agra_ros.results.run_record import SERIES, RunRecord, mean_width_of

SCALAR_TOPICS: dict[str, str] = {"agra/target_fps": "target_fps", "agra/reward": "reward"}
"""Float32 topics of the policy -> series."""
FEEDBACK_SERIES: tuple[str, ...] = ("fps", "latency_ms", "detector_energy_per_frame_j", "accuracy_proxy")
"""PerceptionFeedback fields that are series of their own (same names)."""
LEGACY_NAMES: dict[str, str] = {"detector_energy_per_frame_j": "energy_per_frame_j"}
"""Feedback fields and perception status keys under the names older recordings carry."""
DEVICE_KEYS: dict[str, str] = {"power_w": "power_w", "temp_c": "temperature_c", "cpu_util": "cpu_util"}
"""Keys of the device monitor's status -> series."""
FEEDBACK_TOPIC = "agra/feedback"
CONFIGURATION_TOPIC = "agra/configuration"
DIAGNOSTICS_TOPIC = "/diagnostics"
POLICY_HARDWARE_PREFIX = "policy:"


def number(text: Any) -> float | None:
    """A finite float from a diagnostics value, else None."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def topic_key(topic: str) -> str:
    """A recorded topic name without namespace and leading slash (``/robot1/agra/feedback`` -> ``agra/feedback``),
    so a recording made under any namespace is read the same way; ``/diagnostics`` stays absolute."""
    if topic.endswith(DIAGNOSTICS_TOPIC):
        return DIAGNOSTICS_TOPIC
    for key in (*SCALAR_TOPICS, FEEDBACK_TOPIC, CONFIGURATION_TOPIC):
        if topic == key or topic.endswith("/" + key):
            return key
    return topic


class GraphSampler:
    """Keeps the latest value of every series from the messages it is given; :meth:`sample` appends them to a
    :class:`RunRecord` at a fixed period (so that the summary is time-weighted, whatever each topic's rate)."""

    def __init__(self) -> None:
        self.record = RunRecord()
        self.latest: dict[str, float | None] = {k: None for k in SERIES}
        self.configuration = ""
        self.algorithm = ""
        self.counts: dict[str, int] = {}

    def feed(self, topic: str, msg: Any) -> None:
        """Route one message by its (namespace-free) topic; other topics are ignored."""
        key = topic_key(topic)
        self.counts[key] = self.counts.get(key, 0) + 1
        if key in SCALAR_TOPICS:
            self.scalar(SCALAR_TOPICS[key], msg.data)
        elif key == FEEDBACK_TOPIC:
            self.feedback(msg)
        elif key == CONFIGURATION_TOPIC:
            self.set_configuration(str(msg.data))
        elif key == DIAGNOSTICS_TOPIC:
            self.diagnostics(msg.status)

    def scalar(self, series: str, value: float) -> None:
        v = float(value)
        if math.isfinite(v):
            self.latest[series] = v

    def feedback(self, msg: Any) -> None:
        for key in FEEDBACK_SERIES:
            v = float(getattr(msg, key) if hasattr(msg, key) else getattr(msg, LEGACY_NAMES[key]))
            if math.isfinite(v):  # accuracy_proxy is NaN on frames without a shadow run
                self.latest[key] = v
        if msg.energy_source:
            self.record.sources["detector_energy_per_frame_j"] = msg.energy_source

    def set_configuration(self, short: str) -> None:
        if short:
            self.configuration = short
            self.latest["mean_width"] = mean_width_of(short)

    def diagnostics(self, statuses: Iterable[Any]) -> None:
        for s in statuses:
            kv = {v.key: v.value for v in s.values}
            if s.name == DEVICE_STATUS_NAME:
                for key, series in DEVICE_KEYS.items():
                    if number(kv.get(key)) is not None:
                        self.latest[series] = number(kv[key])
                        src = kv.get(f"{key}.source")
                        if src:
                            self.record.sources[series] = src
            if "rate_hz" in kv and "camera" in s.name:
                self.latest["camera_hz"] = number(kv["rate_hz"])
            for key in ("detector_energy_per_frame_j", LEGACY_NAMES["detector_energy_per_frame_j"]):
                if f"{key}.source" in kv:
                    self.record.sources["detector_energy_per_frame_j"] = kv[f"{key}.source"]
            hw = str(getattr(s, "hardware_id", ""))
            if hw.startswith(POLICY_HARDWARE_PREFIX):
                self.algorithm = hw[len(POLICY_HARDWARE_PREFIX) :]

    def sample(self, t: float) -> None:
        self.record.add(t, dict(self.latest), self.configuration)
