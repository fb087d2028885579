"""viewer: the running graph in the Foxglove app, without a ROS distro (``agra-ros view``).

Subscribes to what users look at (``image_annotated``, ``detections``, perception's feedback, the policy's target
and reward, ``/diagnostics``) and serves it on a Foxglove WebSocket (:class:`agra_ros.viewer.FoxgloveView`): the
annotated image, the detections as image annotations, and the FPS / power / energy / accuracy / granularity series
sampled by the same :class:`~agra_ros.record.sampler.GraphSampler` as the dashboard and the recordings. Open the
Foxglove app, "Open connection" -> Foxglove WebSocket -> ``ws://HOST:PORT``, and import
``config/foxglove_layout.json``. On a ROS distro ``foxglove_bridge`` serves the topics themselves instead.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, String

from agra_ros.record.sampler import CONFIGURATION_TOPIC, DIAGNOSTICS_TOPIC, FEEDBACK_TOPIC, SCALAR_TOPICS, GraphSampler
from agra_ros.ros import params as ros_params
from agra_ros.ros.detections import detection_msg_type, parse_detections
from agra_ros.ros.image import msg_to_rgb
from agra_ros.ros.interfaces import PerceptionFeedback
from agra_ros.ros.qos import command_qos, image_qos, latched_qos
from agra_ros.ros.spin import spin_node
from agra_ros.viewer.foxglove_view import FoxgloveView

SPECS = [
    ros_params.ParamSpec(
        "host", "127.0.0.1", "Address the WebSocket server binds (0.0.0.0: every interface).", read_only=True
    ),
    ros_params.ParamSpec(
        "port", 8765, "WebSocket port (0: any free port, logged).", range=(0, 65535, 1), read_only=True
    ),
    ros_params.ParamSpec("jpeg_quality", 80, "JPEG quality of the served image.", range=(1, 100, 1), read_only=True),
    ros_params.ParamSpec("sample_period", 0.5, "Seconds between samples of the series.", range=(0.05, 10.0, 0.0)),
]


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class Viewer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("viewer", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        ros_params.on_set(self, self._specs)
        p = ros_params.values(self, self._specs)
        self.view = FoxgloveView(
            p["host"], p["port"], name=f"agra_ros {self.get_namespace()}", jpeg_quality=p["jpeg_quality"]
        )
        self.sampler = GraphSampler()
        self.t0 = time.monotonic()
        self.bad = 0
        self.create_subscription(Image, "image_annotated", self._on_image, image_qos("best_effort"))
        self.create_subscription(detection_msg_type(), "detections", self._on_detections, command_qos(10))
        for topic in SCALAR_TOPICS:
            q = latched_qos() if topic == "agra/target_fps" else command_qos(10)
            self.create_subscription(Float32, topic, lambda m, t=topic: self.sampler.feed(t, m), q)
        for topic, mtype in ((FEEDBACK_TOPIC, PerceptionFeedback), (CONFIGURATION_TOPIC, String)):
            self.create_subscription(mtype, topic, lambda m, t=topic: self.sampler.feed(t, m), command_qos(10))
        self.create_subscription(
            DiagnosticArray, DIAGNOSTICS_TOPIC, lambda m: self.sampler.feed(DIAGNOSTICS_TOPIC, m), 20
        )
        self.create_timer(p["sample_period"], self._sample)
        self.get_logger().info(
            f"Foxglove WebSocket on ws://{p['host']}:{self.view.port} (Foxglove app: Open connection -> Foxglove "
            "WebSocket; layout: config/foxglove_layout.json)"
        )

    def _reject(self, what: str, exc: Exception) -> None:
        self.bad += 1
        self.get_logger().warning(f"{what} dropped ({self.bad} so far): {exc}", throttle_duration_sec=5.0)

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = msg_to_rgb(msg)
        except ValueError as exc:  # a malformed image: one warning, the view goes on
            self._reject("image", exc)
            return
        self.view.log_image(rgb, _stamp_ns(msg.header), msg.header.frame_id)

    def _on_detections(self, msg) -> None:
        parsed = parse_detections(msg, [])
        names = [d.results[0].hypothesis.class_id if d.results else "?" for d in msg.detections]
        self.view.log_detections(parsed.boxes, parsed.scores, names, _stamp_ns(msg.header))

    def _sample(self) -> None:
        self.sampler.sample(time.monotonic() - self.t0)
        now = time.time_ns()
        self.view.log_series({k: v for k, v in self.sampler.latest.items() if v is not None}, now)
        if self.sampler.configuration:
            self.view.log_configuration(self.sampler.configuration, now)

    def destroy_node(self) -> None:
        self.view.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node("viewer", Viewer, startup_errors=(OSError, RuntimeError), args=args)


if __name__ == "__main__":
    main()
