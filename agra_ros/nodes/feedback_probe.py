"""feedback_probe: records perception_node's agra/feedback stream for a while, prints statistics, then exits.

Used by `agra_ros.bench.node_bench` to measure the end-to-end rate of perception_node from another process (one
PerceptionFeedback on agra/feedback per processed frame). Optionally subscribes ``detections`` and ``image_annotated`` too, so
the node does the publishing work it skips while nobody listens. Prints one JSON line and writes it to
``out_json`` when set.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image

from agra_ros.device.keys import DEVICE_STATUS_NAME
from agra_ros.record.sampler import number
from agra_ros.ros import params as ros_params
from agra_ros.ros.detections import detection_msg_type
from agra_ros.ros.diagnostics import array_to_dicts
from agra_ros.ros.interfaces import PerceptionFeedback, configuration_short
from agra_ros.ros.qos import command_qos, image_qos
from agra_ros.ros.spin import spin_probe

FIELDS = ("fps", "latency_ms", "detector_energy_per_frame_j", "power_w", "objects", "accuracy_proxy")
"""PerceptionFeedback fields the statistics summarise."""

SPECS = [
    ros_params.ParamSpec("duration", 10.0, "Seconds to record after the warm-up.", range=(0.5, 3600.0, 0.0)),
    ros_params.ParamSpec(
        "warmup", 2.0, "Seconds after the first feedback vector that are not counted.", range=(0.0, 600.0, 0.0)
    ),
    ros_params.ParamSpec("timeout", 60.0, "Give up when no feedback arrived for this long.", range=(1.0, 3600.0, 0.0)),
    ros_params.ParamSpec(
        "detections", False, "Also subscribe to detections (the node builds them only for subscribers)."
    ),
    ros_params.ParamSpec("annotated", False, "Also subscribe to image_annotated."),
    ros_params.ParamSpec("out_json", "", "Write the statistics here too (empty: stdout only)."),
]


class FeedbackProbe(Node):
    """Collects feedback (arrival time + the FIELDS values) inside the measuring window."""

    def __init__(self, **kwargs) -> None:
        super().__init__("feedback_probe", **kwargs)
        self.p = ros_params.values(self, ros_params.declare(self, SPECS))
        self.first: float | None = None
        self.arrivals: list[float] = []
        self.values: dict[str, list[float]] = {name: [] for name in FIELDS}
        self.configurations: dict[str, int] = {}
        """Frames per configuration (short form) in the window."""
        self.received = 0
        """Feedback messages received in all, warm-up included (for the no-data timeout)."""
        self.detection_msgs = 0
        self.annotated_msgs = 0
        self.done = False
        self.diagnostics: dict[str, dict[str, str]] = {}
        """Last status of every node on /diagnostics (camera rate, perception's frame counters)."""
        self.device_power_w: list[float] = []
        """The device monitor's power readings in the window (the whole device's, where perception's are modelled)."""
        self.create_subscription(PerceptionFeedback, "agra/feedback", self._on_feedback, command_qos(50))
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 20)
        if self.p["detections"]:
            self.create_subscription(detection_msg_type(), "detections", self._on_detections, command_qos())
        if self.p["annotated"]:
            self.create_subscription(Image, "image_annotated", self._on_annotated, image_qos("best_effort"))

    def _in_window(self) -> bool:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        return now - self.first >= self.p["warmup"]

    def _on_feedback(self, msg: PerceptionFeedback) -> None:
        self.received += 1
        if not self._in_window():
            return
        now = time.monotonic()
        self.arrivals.append(now)
        for name, values in self.values.items():
            values.append(float(getattr(msg, name)))
        config = configuration_short(msg.configuration) or "invalid"
        self.configurations[config] = self.configurations.get(config, 0) + 1
        if now - self.first >= self.p["warmup"] + self.p["duration"]:
            self.done = True

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        statuses = array_to_dicts(msg)
        self.diagnostics.update(statuses)
        power = number(statuses.get(DEVICE_STATUS_NAME, {}).get("power_w"))
        if power is not None and self.first is not None and self._in_window():
            self.device_power_w.append(power)

    def _on_detections(self, _msg) -> None:
        if self.first is not None and self._in_window():
            self.detection_msgs += 1

    def _on_annotated(self, _msg: Image) -> None:
        if self.first is not None and self._in_window():
            self.annotated_msgs += 1

    def stats(self) -> dict:
        a = np.asarray(self.arrivals)
        span = float(a[-1] - a[0]) if a.size > 1 else 0.0

        def col(name: str, fn) -> float | None:
            x = np.asarray(self.values[name], dtype=np.float64)
            x = x[np.isfinite(x)]
            return float(fn(x)) if x.size else None

        return {
            "frames": int(a.size),
            "rate_hz": (a.size - 1) / span if span > 0 else 0.0,
            "node_fps_mean": col("fps", np.mean),
            "latency_ms_p50": col("latency_ms", np.median),
            "latency_ms_mean": col("latency_ms", np.mean),
            "detector_energy_per_frame_j_mean": col("detector_energy_per_frame_j", np.mean),
            "power_w_mean": col("power_w", np.mean),
            "device_power_w_mean": float(np.mean(self.device_power_w)) if self.device_power_w else None,
            "objects_mean": col("objects", np.mean),
            "accuracy_proxy_mean": col("accuracy_proxy", np.mean),
            "max_gap_ms": float(np.diff(a).max() * 1e3) if a.size > 1 else None,
            "configurations": self.configurations,
            "detection_msgs": self.detection_msgs,
            "annotated_msgs": self.annotated_msgs,
            "diagnostics": self.diagnostics,
        }


def main(args: list[str] | None = None) -> None:
    last = {"t": time.monotonic(), "seen": 0}

    def give_up(node: FeedbackProbe) -> str | None:
        if node.received != last["seen"]:
            last["t"], last["seen"] = time.monotonic(), node.received
        if time.monotonic() - last["t"] > node.p["timeout"]:
            return f"no agra/feedback for {node.p['timeout']:.0f} s: giving up"
        return None

    spin_probe(FeedbackProbe, give_up, args)


if __name__ == "__main__":
    main()
