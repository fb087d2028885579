"""perception_node's link to perception servers: the ROS half of remote execution (the decisions are in
agra_ros.perception.offload.OffloadClient, the messages in agra_ros.ros.remote).

Nothing here blocks the executor. A frame commanded ``remote`` is JPEG-encoded and published on
``/agra/remote/request``, and :meth:`RemoteExecution.handle` returns at once; the node holds newer frames as
pending meanwhile (as it does while pacing). The frame is finished by whichever comes first: the server's reply on
``/agra/remote/result`` (the server's detections, published as perception's own) or a one-shot timer at the
deadline (the frame then runs here in the fallback configuration, a counted ``timeout``). A frame that cannot go out
(no server heard, link down) runs here at once. Either way ``done(image_msg, image, result)`` publishes it.

While frames run here, :meth:`RemoteExecution.probe` sends one of them every ``remote_probe_period_s`` as a link
probe (see agra_ros.perception.offload): the link stays measured, so the policy sees a server it could offload to.
A probe's encode and radio are charged to the next frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from agra_ros.granularity.levels import GranularityConfig
from agra_ros.msg import RemoteRequest, RemoteResult, RemoteServer
from agra_ros.perception.offload import InFlight, OffloadClient, ResultRejected
from agra_ros.perception.remote import encode_jpeg
from agra_ros.perception.runtime import FrameResult, PerceptionRuntime, RemoteCost
from agra_ros.ros.qos import latched_qos
from agra_ros.ros.remote import (
    REQUEST_TOPIC,
    RESULT_TOPIC,
    SERVER_TOPIC,
    announcement_from_msg,
    reply_detections,
    reply_from_msg,
    request_qos,
    request_to_msg,
    result_qos,
)

MESSAGE_OVERHEAD_BYTES = 256
"""Bytes a request or reply carries beyond its JPEG and arrays (ids, header, configuration): counted as sent."""
DEFAULT_DEADLINE_S = 1.0
"""The deadline while no target rate is known (no frame budget to take 1.5x of)."""


@dataclass
class _Waiting:
    image_msg: Image
    image: np.ndarray
    rec: InFlight
    encode_busy_s: float
    config: GranularityConfig


class RemoteExecution:
    """See the module docstring. ``budget_s()`` is the frame budget 1/target FPS (None: unknown); ``bad_input(kind,
    message)`` counts and logs a dropped reply; ``availability_changed()`` runs when remote execution comes on or off
    offer (the node republishes its catalogue)."""

    def __init__(
        self,
        node: Node,
        runtime: PerceptionRuntime,
        detector_name: str,
        p: dict,
        done: Callable[[Image, np.ndarray, FrameResult], None],
        budget_s: Callable[[], float | None],
        bad_input: Callable[[str, str], None],
        availability_changed: Callable[[], None],
    ) -> None:
        self.node = node
        self.runtime = runtime
        self.detector_name = detector_name
        self.robot_id = node.get_fully_qualified_name()
        self.client = OffloadClient(
            self.robot_id,
            detector_name,
            len(runtime.class_names),
            server_timeout_s=p["remote_server_timeout_s"],
            miss_limit=int(p["remote_miss_limit"]),
            retry_s=p["remote_retry_s"],
        )
        self.quality = int(p["remote_jpeg_quality"])
        self.deadline_param_s = float(p["remote_deadline_s"])
        self.probe_period_s = float(p["remote_probe_period_s"])
        self._done, self._budget_s, self._bad_input, self._changed = done, budget_s, bad_input, availability_changed
        self._waiting: _Waiting | None = None
        self.available = False
        self._said_server = ""
        """The kept server last named in the log (a change of server is logged once, when it happens)."""
        self._pub = node.create_publisher(RemoteRequest, REQUEST_TOPIC, request_qos())
        node.create_subscription(RemoteResult, RESULT_TOPIC, self._on_result, result_qos())
        node.create_subscription(RemoteServer, SERVER_TOPIC, self._on_server, latched_qos())
        self._deadline_timer = node.create_timer(1.0, self._on_deadline, autostart=False)
        node.create_timer(0.25, self._check_availability)

    # ------------------------------------------------------------------ settings
    def set_param(self, name: str, value) -> bool:
        """Apply a runtime change of one of the remote_* parameters; False for any other name."""
        c = self.client
        if name == "remote_jpeg_quality":
            self.quality = int(value)
        elif name == "remote_deadline_s":
            self.deadline_param_s = float(value)
        elif name == "remote_server_timeout_s":
            c.server_timeout_s = float(value)
        elif name == "remote_miss_limit":
            c.miss_limit = int(value)
        elif name == "remote_retry_s":
            c.retry_s = float(value)
        elif name == "remote_probe_period_s":
            self.probe_period_s = float(value)
        else:
            return False
        return True

    def deadline_s(self) -> float:
        """``remote_deadline_s``, or 1.5x the frame budget when it is 0."""
        if self.deadline_param_s > 0:
            return self.deadline_param_s
        budget = self._budget_s()
        return 1.5 * budget if budget else DEFAULT_DEADLINE_S

    @property
    def busy(self) -> bool:
        """A request is in flight: the next frame waits (as pending) for its reply or deadline."""
        return self._waiting is not None

    # ------------------------------------------------------------------ frames
    def handle(self, image_msg: Image, image: np.ndarray) -> FrameResult | None:
        """A frame commanded remote: sent (None; ``done`` follows) or run here at once (its result)."""
        rt = self.runtime
        server, cause = self.client.plan()
        if server is None:
            self.client.miss(cause)
            return rt.process(image, RemoteCost(miss=cause))
        config = rt.requested_config()
        rec, encode_busy = self._send(image_msg, image, server, config, rt.shadow.next())
        self._waiting = _Waiting(image_msg, image, rec, encode_busy, config)
        self._deadline_timer.timer_period_ns = max(int(rec.deadline_s * 1e9), 1_000_000)
        self._deadline_timer.reset()
        return None

    def probe(self, image_msg: Image, image: np.ndarray) -> None:
        """A frame that ran here goes out as a link probe when one is due (its reply is measured, not published)."""
        server = self.client.probe_due(self.probe_period_s)
        if server is None:
            return
        c0 = time.thread_time()
        full = GranularityConfig(self.runtime.full_config.levels, 1.0, "remote", 1)
        self._send(image_msg, image, server, full, False, probe=True)
        self.runtime.add_overhead(time.thread_time() - c0, 0.0)

    def _send(
        self, image_msg: Image, image: np.ndarray, server: str, config: GranularityConfig, shadow: bool,
        probe: bool = False,
    ) -> tuple[InFlight, float]:  # fmt: skip
        """JPEG-encode a frame, record it in flight and publish the request; the record and the encode's busy
        seconds."""
        c0 = time.thread_time()
        jpeg = encode_jpeg(image, self.quality)
        encode_busy = time.thread_time() - c0
        deadline = self.deadline_s()
        budget = self._budget_s()
        rec = self.client.sent(
            server, len(jpeg) + MESSAGE_OVERHEAD_BYTES, image.shape[1], image.shape[0], deadline,
            slow_s=budget if budget else math.inf, probe=probe,
        )  # fmt: skip
        self._pub.publish(
            request_to_msg(
                image_msg.header, jpeg, self.robot_id, rec.request_id, server, self.detector_name, config, shadow,
                deadline,
            )
        )  # fmt: skip
        return rec, encode_busy

    def _charge_probe(self, rec: InFlight, rx_bytes: int, seconds: float) -> None:
        energy = self.runtime.energy
        if energy is not None:
            self.runtime.add_overhead(0.0, energy.radio_energy_j(rec.tx_bytes, rx_bytes, seconds))

    def _expire(self) -> None:
        for rec in self.client.expire():
            if rec.probe:
                self._charge_probe(rec, 0, rec.deadline_s)

    def _finish(self, res: FrameResult) -> None:
        w, self._waiting = self._waiting, None
        self._deadline_timer.cancel()
        if w is not None and self.node.context.ok():
            self._done(w.image_msg, w.image, res)

    def _on_result(self, msg: RemoteResult) -> None:
        try:
            accepted = self.client.accept(reply_from_msg(msg))
        except ResultRejected as exc:
            self._bad_input(f"remote_result_{exc.kind}", f"reply from {msg.server_id!r} dropped: {exc}")
            return
        except (ValueError, TypeError) as exc:  # arrays that do not even convert
            self.client.link.rejected["malformed"] += 1
            self._bad_input("remote_result_malformed", f"reply from {msg.server_id!r} dropped: {exc}")
            return
        if accepted is None:
            return  # another robot's
        rec, rtt = accepted
        self._say_server(rtt)
        if rec.probe:
            self._charge_probe(rec, MESSAGE_OVERHEAD_BYTES + 22 * len(msg.scores), rtt)
            return
        w = self._waiting
        if w is None or w.rec.request_id != rec.request_id:
            return  # cannot happen with one request in flight; never publish a frame we no longer hold
        dets, ran, accuracy = reply_detections(msg)
        if ran is None or ran.n_layers != self.runtime.n_layers:
            ran = GranularityConfig(w.config.levels, w.config.resolution_scale, "remote", 1)
        rx = MESSAGE_OVERHEAD_BYTES + 22 * len(dets.scores) + 4 * len(msg.workload_embedding)
        energy = self.runtime.energy
        cost = RemoteCost(
            server_id=msg.server_id,
            rtt_s=rtt,
            encode_busy_s=w.encode_busy_s,
            radio_j=energy.radio_energy_j(rec.tx_bytes, rx, rtt) if energy is not None else 0.0,
            server_compute_ms=float(msg.compute_ms),
            server_energy_j=float(msg.server_energy_j),
        )
        self._finish(self.runtime.remote_frame(w.image, dets, ran, cost, accuracy, dets.embedding))

    def _on_deadline(self) -> None:
        self._deadline_timer.cancel()
        self._expire()
        self._say_server()
        w = self._waiting
        if w is None or w.rec.request_id in self.client.in_flight:
            return
        energy = self.runtime.energy
        cost = RemoteCost(
            miss="timeout",
            rtt_s=w.rec.deadline_s,
            encode_busy_s=w.encode_busy_s,
            radio_j=energy.radio_energy_j(w.rec.tx_bytes, 0, w.rec.deadline_s) if energy is not None else 0.0,
        )
        self._finish(self.runtime.process(w.image, cost))

    # ------------------------------------------------------------------ servers
    def _on_server(self, msg: RemoteServer) -> None:
        if not self.client.heard(announcement_from_msg(msg)):
            self._bad_input("remote_server_mismatch", f"server {msg.server_id!r} runs {msg.detector!r}, not ours")
        self._check_availability()

    def _say_server(self, rtt_s: float | None = None) -> None:
        """Log which server the robot keeps whenever that changes (the feedback's remote_server names it per frame,
        /diagnostics as remote.server)."""
        chosen, said = self.client.chosen, self._said_server
        if chosen == said:
            return
        self._said_server = chosen
        heard = ", ".join(self.client.live_servers()) or "none"
        if chosen:
            rtt = f", round trip {rtt_s * 1e3:.0f} ms" if rtt_s is not None else ""
            self.node.get_logger().info(
                f"remote: keeping perception server {chosen!r} (the first to answer{rtt}; servers heard: {heard})"
            )
        else:
            self.node.get_logger().warning(
                f"remote: perception server {said!r} dropped (silent or unanswered); servers heard: {heard}"
            )

    def _check_availability(self) -> None:
        self._expire()  # link probes have no deadline timer of their own
        available = self.client.available()  # also drops a kept server that stopped announcing itself
        self._say_server()
        if available != self.available:
            self.available = available
            self._changed()

    def status(self) -> list[tuple[str, object]]:
        """Key-value pairs for perception's /diagnostics."""
        c, link = self.client, self.client.link
        values: list[tuple[str, object]] = [
            ("remote.available", self.available),
            ("remote.server", c.chosen),
            ("remote.servers_heard", ",".join(c.live_servers())),
            ("remote.deadline_ms", self.deadline_s() * 1e3),
            ("remote.sent", link.sent),
            ("remote.answered", link.answered),
            ("remote.rtt_ms", link.rtt_ms),
            ("remote.uplink_mbps", link.uplink_mbps),
            ("remote.loss", link.loss),
            ("remote.server_queue", link.server_queue),
        ]
        values += [(f"remote.miss.{cause}", n) for cause, n in sorted(link.misses.items())]
        values += [(f"remote.rejected.{kind}", n) for kind, n in sorted(link.rejected.items())]
        values += [("remote.slow_replies", link.slow), ("remote.probes", link.probes)]
        return values
