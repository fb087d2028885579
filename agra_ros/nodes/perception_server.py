"""perception_server_node: runs robots' frames on an edge machine (or a laptop) for perception's ``remote`` target.

No camera. Subscribes ``/agra/remote/request`` (agra_ros/msg/RemoteRequest: a JPEG frame, the configuration to
run, the robot's id and deadline), runs the requested configuration (``run:=full``: always the full one) and
publishes ``/agra/remote/result`` (RemoteResult: the detections with the request's stamp and frame id, the
server's compute time, energy and queue). Announces itself every ``announce_period_s`` on the latched
``/agra/remote/server`` (RemoteServer: id, detector, load, queue), so robots know it is there; its status goes
to ``/diagnostics``. The topic names are absolute (agra_ros.ros.remote): robots in their own namespaces share one
server; remap all three on a fleet's nodes to give it a server of its own.

Threading: the subscription only validates and queues (agra_ros.perception.remote.ServerCore: one request per
robot, a bounded queue, stale requests dropped); one worker thread decodes, detects and publishes, so the
executor keeps taking requests and announcing while the detector runs. ``launch/server.launch.py`` starts it.
"""

from __future__ import annotations

import socket
import threading
import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_msgs.msg import Header

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.detectors.startup import HostedDetector
from agra_ros.msg import RemoteRequest, RemoteResult, RemoteServer
from agra_ros.nodes.perception_server_params import SPECS
from agra_ros.perception.energy import EnergyModelError, make_energy_meter
from agra_ros.perception.host import StartupError, device_rejected, set_threads
from agra_ros.perception.remote import RequestRejected, ServerCore
from agra_ros.ros import params as ros_params
from agra_ros.ros.diagnostics import OK, WARN, DiagnosticsReporter, StatusBuilder
from agra_ros.ros.qos import latched_qos
from agra_ros.ros.remote import (
    REQUEST_TOPIC,
    RESULT_TOPIC,
    SERVER_TOPIC,
    announcement_to_msg,
    answer_to_msg,
    request_from_msg,
    request_qos,
    result_qos,
)
from agra_ros.ros.spin import spin_node

__all__ = ["PerceptionServerNode", "SPECS", "main"]


class PerceptionServerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception_server", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        hosted = HostedDetector.start(p["detector"], p["weights"], p["device"], int(p["threads"]))
        (self.get_logger().warning if hosted.fell_back else self.get_logger().info)(hosted.why)
        try:
            energy = make_energy_meter(p["device_profile"])
        except EnergyModelError as exc:
            raise StartupError(str(exc)) from None
        self.detector_name = hosted.network
        self.server_id = p["server_id"] or f"{socket.gethostname()}:{self.get_fully_qualified_name()}"
        self.energy_source = energy.source
        self.core = ServerCore(
            hosted.detector,
            self.server_id,
            self.detector_name,
            run=p["run"],
            max_queue=int(p["max_queue"]),
            max_request_bytes=int(p["max_request_mb"] * 2**20),
            score_threshold=p["score_threshold"],
            energy=energy,
            busy_clock=hosted.busy_clock,
        )
        warm_ms = self.core.warm_up()
        self.bad = BadInputCounter()
        self._pub_result = self.create_publisher(RemoteResult, RESULT_TOPIC, result_qos())
        self._pub_server = self.create_publisher(RemoteServer, SERVER_TOPIC, latched_qos())
        self.create_subscription(RemoteRequest, REQUEST_TOPIC, self._on_request, request_qos())
        self._announce_timer = self.create_timer(float(p["announce_period_s"]), self._announce)
        ros_params.on_set(self, self._specs, self._validate)
        self.add_post_set_parameters_callback(self._apply)
        self._diag = DiagnosticsReporter(self, hardware_id=f"perception_server:{self.server_id}")
        self._diag.add("perception_server", self._check)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="perception_server_worker", daemon=True)
        self._worker.start()
        self._announce()
        self.get_logger().info(
            f"perception server {self.server_id!r}: {self.detector_name} on {p['device']}, runs {p['run']}; "
            f"listening on {REQUEST_TOPIC}, answering on {RESULT_TOPIC}, announcing on {SERVER_TOPIC} "
            f"(warmed up: full runs in {warm_ms:.0f} ms)"
        )

    @staticmethod
    def _validate(params) -> SetParametersResult:
        for prm in params:
            problem = device_rejected(prm.name, prm.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    def _apply(self, params) -> None:
        for prm in params:
            if prm.name == "device":
                self.core.detector.to(prm.value)
            elif prm.name == "threads":
                self.core.busy_clock = set_threads(int(prm.value))
            elif prm.name == "run":
                self.core.run_mode = prm.value
            elif prm.name == "score_threshold":
                self.core.score_threshold = float(prm.value)
            elif prm.name == "max_queue":
                self.core.max_queue = int(prm.value)
            elif prm.name == "max_request_mb":
                self.core.max_request_bytes = int(prm.value * 2**20)
            elif prm.name == "announce_period_s":
                self._announce_timer.timer_period_ns = int(prm.value * 1e9)
                self._announce_timer.reset()

    # ------------------------------------------------------------------ requests
    def _bad_input(self, kind: str, message: str) -> None:
        n = self.bad.record(kind, time.monotonic())
        if n is not None:
            more = f" ({n - 1} more since the last report)" if n > 1 else ""
            self.get_logger().warning(f"dropped request [{kind}]: {message}{more}")

    def _on_request(self, msg: RemoteRequest) -> None:
        try:
            req = request_from_msg(msg, self.core.n_layers)
        except RequestRejected as exc:
            self.core.reject(exc.kind)
            self._bad_input(exc.kind, f"{msg.robot_id or '?'} #{msg.request_id}: {exc}")
            return
        try:
            self.core.offer(req)
        except RequestRejected as exc:  # counted by the core
            self._bad_input(exc.kind, f"{req.robot_id or '?'} #{req.request_id}: {exc}")

    def _work(self) -> None:
        """The worker thread: take, run, publish, until the node is destroyed."""
        while not self._stop.is_set():
            req = self.core.take(timeout_s=0.1)
            if req is None:
                continue
            try:
                ans = self.core.run(req)
            except RequestRejected as exc:
                self._bad_input(exc.kind, f"{req.robot_id} #{req.request_id}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a frame the detector cannot handle must not end the server
                self.core.reject("inference_error")
                self._bad_input("inference_error", f"{type(exc).__name__}: {exc}")
                continue
            if self._stop.is_set() or not self.context.ok():
                return
            try:
                self._pub_result.publish(answer_to_msg(ans, self.server_id, self.detector_name, self.energy_source))
            except Exception:  # noqa: BLE001 - the context went down between the check and the publish
                if self.context.ok():
                    raise
                return

    def _announce(self) -> None:
        c = self.core
        header = Header(stamp=self.get_clock().now().to_msg())
        self._pub_server.publish(
            announcement_to_msg(
                header, self.server_id, self.detector_name, c.n_classes, c.run_mode, c.queue_length, c.load(),
                c.mean_compute_ms(), c.stats.served, c.stats.dropped_total,
                self._announce_timer.timer_period_ns / 1e9,
            )
        )  # fmt: skip

    def _check(self, status: StatusBuilder) -> None:
        c = self.core
        status.add("server_id", self.server_id)
        status.add("detector", self.detector_name)
        status.add("run", c.run_mode)
        status.add("served", c.stats.served)
        status.add("queue_length", c.queue_length)
        status.add("load", c.load())
        status.add("compute_ms", c.mean_compute_ms())
        status.add("dropped_total", c.stats.dropped_total)
        for kind, n in sorted(dict(c.stats.dropped).items()):
            status.add(f"dropped.{kind}", n)
        if c.load() > 0.95:
            status.summary(WARN, f"saturated: busy {c.load():.0%} of the last second, {c.queue_length} waiting")
        status.summary(OK, f"served {c.stats.served} requests, {c.queue_length} waiting")

    def destroy_node(self) -> None:
        self._stop.set()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node("perception_server", PerceptionServerNode, (StartupError,), args)


if __name__ == "__main__":
    main()
