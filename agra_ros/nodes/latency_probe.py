"""latency_probe: measures the rate and the header-to-arrival latency of an image topic, then exits.

Used by `agra-ros bench transport` (and the tests) to measure images crossing processes over DDS. Prints one
JSON line with the statistics and writes it to ``out_json`` when set.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image

from agra_ros.ros import params as ros_params
from agra_ros.ros.qos import image_qos
from agra_ros.ros.spin import spin_probe

SPECS = [
    ros_params.ParamSpec("topic", "image_raw", "Image topic to measure."),
    ros_params.ParamSpec("duration", 10.0, "Seconds to measure after the first frame.", range=(0.5, 3600.0, 0.0)),
    ros_params.ParamSpec("warmup", 1.0, "Seconds after the first frame that are not counted.", range=(0.0, 60.0, 0.0)),
    ros_params.ParamSpec(
        "reliability", "best_effort", "Subscription reliability.", choices=("best_effort", "reliable")
    ),
    ros_params.ParamSpec("out_json", "", "Write the statistics here too (empty: stdout only)."),
]


class LatencyProbe(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("latency_probe", **kwargs)
        self.p = ros_params.values(self, ros_params.declare(self, SPECS))
        self.first: float | None = None
        self.arrivals: list[float] = []
        self.latencies_ms: list[float] = []
        self.sizes: set[tuple[int, int, str]] = set()
        self.done = False
        self.create_subscription(Image, self.p["topic"], self._on_image, image_qos(self.p["reliability"], depth=5))

    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if now - self.first < self.p["warmup"]:
            return
        lat = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
        self.arrivals.append(now)
        self.latencies_ms.append(lat)
        self.sizes.add((msg.width, msg.height, msg.encoding))
        if now - self.first >= self.p["warmup"] + self.p["duration"]:
            self.done = True

    def stats(self) -> dict:
        a = np.asarray(self.arrivals)
        lat = np.asarray(self.latencies_ms)
        span = float(a[-1] - a[0]) if a.size > 1 else 0.0
        return {
            "topic": self.p["topic"],
            "frames": int(a.size),
            "rate_hz": (a.size - 1) / span if span > 0 else 0.0,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else None,
            "latency_ms_max": float(lat.max()) if lat.size else None,
            "max_gap_ms": float(np.diff(a).max() * 1e3) if a.size > 1 else None,
            "sizes": sorted(f"{w}x{h} {e}" for w, h, e in self.sizes),
        }


def main(args: list[str] | None = None) -> None:
    deadline: list[float] = []

    def give_up(node: LatencyProbe) -> str | None:
        if not deadline:
            deadline.append(time.monotonic() + node.p["duration"] + node.p["warmup"] + 30.0)
        return "the measurement did not end in time: giving up" if time.monotonic() > deadline[0] else None

    spin_probe(LatencyProbe, give_up, args)


if __name__ == "__main__":
    main()
