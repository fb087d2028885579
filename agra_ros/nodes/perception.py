"""perception_node: runs the granularity-switchable detector on the newest frame at the commanded configuration.

Topics (docs/architecture.md): subscribes ``image_raw`` (depth 1: never a backlog), ``agra/granularity`` and
``agra/target_fps``; publishes ``detections``, ``image_annotated``, the scalar feedback topics, the per-frame
``agra/feedback`` (PerceptionFeedback), the latched ``agra/granularity_catalogue`` (GranularityCatalogue) and its
status on ``/diagnostics``. The package's messages are converted in agra_ros.ros.interfaces.

Why frames are processed inside the image callback: with a depth-1 keep-last reader, frames that arrive while
the detector runs are replaced in DDS and never deserialised, so the node's only per-frame work beyond the
detector is one conversion and a few small publishes. Pacing to the target rate defers an early frame with a
one-shot timer and then processes the newest frame held at that moment.

Everything that is not ROS is in the core: the frame's processing (fallback, shadow accuracy, energy) in
agra_ros.perception.runtime and the modules it composes, command decoding in agra_ros.granularity.levels, pacing in
agra_ros.perception.pacing, what the node reports on /diagnostics in agra_ros.perception.status, the detector's
start-up (device check, torch threads, registry fallback, busy clock; shared with perception_server_node) in
agra_ros.detectors.startup, bad-input counting in agra_ros.bad_inputs. The parameters are declared in
agra_ros.nodes.perception_params.
"""

from __future__ import annotations

import math
import time

import torch
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Header, String

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.detectors.startup import HostedDetector
from agra_ros.device.process_cpu import ProcessCpu
from agra_ros.granularity.levels import (
    GranularityCommandError,
    GranularityConfig,
    GranularityError,
    fallback_configuration,
)
from agra_ros.limits import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, InputRejected, parse_target_fps
from agra_ros.nodes.perception_params import SPECS
from agra_ros.nodes.perception_remote import RemoteExecution
from agra_ros.perception.annotate import annotate
from agra_ros.perception.energy import EnergyModelError, make_energy_meter
from agra_ros.perception.host import StartupError, device_rejected, set_threads
from agra_ros.perception.pacing import RatePacer
from agra_ros.perception.runtime import FrameResult, PerceptionRuntime
from agra_ros.perception.status import FrameCounters, perception_status
from agra_ros.perception.watchdog import CommandWatchdog
from agra_ros.ros import params as ros_params
from agra_ros.ros.detections import DetectionPublisher
from agra_ros.ros.diagnostics import OK, WARN, DiagnosticsReporter, StatusBuilder
from agra_ros.ros.image import ImageConversionError, error_kind, msg_to_rgb, rgb_to_msg
from agra_ros.ros.interfaces import (
    GranularityCatalogue,
    GranularityCommand,
    PerceptionFeedback,
    catalogue_to_msg,
    command_from_msg,
    feedback_to_msg,
)
from agra_ros.ros.qos import command_qos, image_qos, latched_qos
from agra_ros.ros.spin import spin_node

PROCESS_CPU_WINDOW_S = 1.0
"""The window over which the graph's process CPU is measured (power_counts_processes)."""
LOST_LOG_PERIOD_S = 5.0
"""Frames lost in transport are logged at most this often (all are counted in diagnostics)."""


class PerceptionNode(Node):
    """The detector behind ROS topics; see the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        hosted = HostedDetector.start(p["detector"], p["weights"], p["device"], int(p["threads"]))
        (self.get_logger().warning if hosted.fell_back else self.get_logger().info)(hosted.why)
        detector, self._detector_entry, detector_name = hosted.detector, hosted.entry, hosted.network
        n_layers = hosted.n_layers
        try:
            fallback = fallback_configuration(
                p["fallback_configuration"], n_layers, self._detector_entry.fallback_configuration
            )
            energy = make_energy_meter(p["device_profile"], radio=p["remote_radio"])
        except (GranularityError, EnergyModelError) as exc:
            raise StartupError(str(exc)) from None
        self.runtime = PerceptionRuntime(
            detector,
            fallback,
            score_threshold=p["score_threshold"],
            shadow_share=p["shadow_share"],
            fallback_timeout_s=p["fallback_timeout_s"],
            energy=energy,
            detector_name=detector_name,
            busy_clock=hosted.busy_clock,
        )
        self.bad = BadInputCounter()
        self.pacer = RatePacer()
        self._target_fps: float | None = None
        self._pending: Image | None = None
        self.frames = FrameCounters()
        self._lost_logged = -math.inf
        self._processed_since_annotation = 0
        self._last: FrameResult | None = None
        self._last_config_pub = 0.0
        self._published_config: GranularityConfig | None = None
        self._command = GranularityCommand()
        """The last valid command (its decision number and stamp go out with every frame it produced)."""
        self._update_pacing()

        self._pub_dets = DetectionPublisher(self, "detections", self.runtime.class_names)
        self._dets_topic = self.resolve_topic_name("detections")
        self._pub_annotated = self.create_publisher(Image, "image_annotated", image_qos("best_effort"))
        q = command_qos()
        self._pub_scalar = {
            name: self.create_publisher(Float32, f"agra/{name}", q)
            for name in ("fps", "latency_ms", "detector_energy_per_frame_j", "power_w", "accuracy_proxy")
        }
        self._pub_config = self.create_publisher(String, "agra/configuration", q)
        self._pub_feedback = self.create_publisher(PerceptionFeedback, "agra/feedback", q)
        self._pub_catalogue = self.create_publisher(GranularityCatalogue, "agra/granularity_catalogue", latched_qos())

        self.remote = RemoteExecution(
            self, self.runtime, detector_name, p, self._remote_done, self._frame_budget_s, self._bad_input,
            self._publish_catalogue,
        )  # fmt: skip
        self._subscribe_images(p["reliability"])
        self.create_subscription(GranularityCommand, "agra/granularity", self._on_granularity, command_qos(10))
        # the policy publishes its target latched (transient local): a perception started later gets it at once
        self.create_subscription(Float32, "agra/target_fps", self._on_target_fps, latched_qos())
        self._pace_timer = self.create_timer(1.0, self._on_pace_timer, autostart=False)
        self._watch_timer = self.create_timer(0.1, self._check_fallback)
        self._process_cpu = ProcessCpu() if p["power_counts_processes"] else None
        self.create_timer(PROCESS_CPU_WINDOW_S, self._sample_process_cpu)
        self._publish_catalogue()

        ros_params.on_set(self, self._specs, self._validate)
        self.add_post_set_parameters_callback(self._apply)
        self._diag = DiagnosticsReporter(self, hardware_id=f"perception:{detector_name}:{p['device']}")
        self._diag.add("perception", self._check)
        self.get_logger().info(
            f"{detector_name} on {p['device']} ({p['threads']} thread(s)), {n_layers} switchable layers, "
            f"fallback configuration {fallback.short()}, energy source {energy.source}; "
            f"listening on {self.resolve_topic_name('image_raw')}"
        )

    # ------------------------------------------------------------------ parameters
    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        for prm in params:
            problem = device_rejected(prm.name, prm.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            if prm.name == "fallback_configuration":
                try:
                    fallback_configuration(
                        prm.value, self.runtime.n_layers, self._detector_entry.fallback_configuration
                    )
                except GranularityError as exc:
                    return SetParametersResult(successful=False, reason=f"fallback_configuration: {exc}")
            if prm.name == "device_profile":
                try:
                    make_energy_meter(prm.value)
                except EnergyModelError as exc:
                    return SetParametersResult(successful=False, reason=f"device_profile: {exc}")
        return SetParametersResult(successful=True)

    def _apply(self, params: list[Parameter]) -> None:
        rt = self.runtime
        for prm in params:
            name, value = prm.name, prm.value
            if name == "device":
                rt.detector.to(value)
            elif name == "score_threshold":
                rt.set_score_threshold(value)
            elif name == "shadow_share":
                rt.shadow.set_share(value)
            elif name == "fallback_timeout_s":
                rt.set_fallback_timeout(value)
            elif name == "fallback_configuration":
                rt.set_fallback_config(
                    fallback_configuration(value, rt.n_layers, self._detector_entry.fallback_configuration)
                )
                self._publish_catalogue()
            elif name == "device_profile":
                rt.energy = make_energy_meter(value, radio=self.get_parameter("remote_radio").value)
            elif self.remote.set_param(name, value):
                pass
            elif name == "threads":
                rt.busy_clock = set_threads(int(value))
            elif name == "power_counts_processes":
                self._process_cpu = ProcessCpu() if value else None
            elif name in ("pace_to_target", "max_fps"):
                self._update_pacing()
            else:
                continue
            self.get_logger().info(f"{name} set to {value!r}")

    # ------------------------------------------------------------------ inputs
    def _subscribe_images(self, reliability: str) -> None:
        """image_raw, depth 1, counting frames DDS reports lost: a frame too large for best-effort transport
        (tens of MB: its fragments do not all arrive) never reaches the callback, and this is where it shows."""
        qos = image_qos(reliability, depth=1)
        try:
            events = SubscriptionEventCallbacks(message_lost=self._on_frames_lost)
            self.create_subscription(Image, "image_raw", self._on_image, qos, event_callbacks=events)
        except UnsupportedEventTypeError:  # an RMW without the event: frames lost in transport stay uncounted
            self.create_subscription(Image, "image_raw", self._on_image, qos)

    def _on_frames_lost(self, info: QoSMessageLostInfo) -> None:
        self.frames.lost += int(info.total_count_change)
        now = time.monotonic()
        if now - self._lost_logged >= LOST_LOG_PERIOD_S:
            self._lost_logged = now
            self.get_logger().warning(
                f"{self.frames.lost} image_raw frame(s) lost in transport so far (frames too large for "
                f"{self.get_parameter('reliability').value} QoS? reliability:=reliable delivers them; perception "
                f"processes frames up to {MAX_IMAGE_SIDE} px per side and {MAX_IMAGE_BYTES // 2**20} MiB)"
            )

    def _bad_input(self, kind: str, message: str) -> None:
        n = self.bad.record(kind, time.monotonic())
        if n is not None:
            more = f" ({n - 1} more since the last report)" if n > 1 else ""
            self.get_logger().warning(f"skipped bad input [{kind}]: {message}{more}")

    def _on_granularity(self, msg: GranularityCommand) -> None:
        try:
            asked = command_from_msg(msg, self.runtime.n_layers)
            config, transition = self.runtime.command(asked.to_indices(), asked.keyframe_interval)
        except GranularityCommandError as exc:
            self._bad_input(f"granularity_{exc.kind}", str(exc))
            return
        self._command = msg
        if transition == CommandWatchdog.RECOVERED:
            self.get_logger().info(
                f"granularity commands resumed: leaving the fallback configuration for {config.short()}"
            )

    def _on_target_fps(self, msg: Float32) -> None:
        try:  # the bounds of the policy's target_fps parameter: a target outside them would stall or crash pacing
            value = parse_target_fps(msg.data)
        except InputRejected as exc:
            self._bad_input("target_fps", f"agra/target_fps ignored: {exc}")
            return
        if value != self._target_fps:
            self._target_fps = value
            self._update_pacing()

    def _update_pacing(self) -> None:
        rates = []
        if self.get_parameter("pace_to_target").value and self._target_fps is not None:
            rates.append(self._target_fps)
        max_fps = float(self.get_parameter("max_fps").value)
        if max_fps > 0:
            rates.append(max_fps)
        self.pacer.set_rate(min(rates) if rates else None)

    def _on_image(self, msg: Image) -> None:
        self.frames.received += 1
        if self._pending is not None:
            self.frames.dropped += 1  # a newer frame replaces one that waited for its pacing slot
        delay = self.pacer.delay(time.monotonic())
        if delay <= 0.0 and not self.remote.busy:
            self._pending = None
            self._process(msg)
            return
        self._pending = msg  # waits for its pacing slot, or for the reply to the frame at the server
        if delay > 0.0 and self._pace_timer.is_canceled():
            self._pace_timer.timer_period_ns = max(int(delay * 1e9), 100_000)
            self._pace_timer.reset()

    def _on_pace_timer(self) -> None:
        self._pace_timer.cancel()
        if self.remote.busy:
            return  # the reply (or the deadline) of the frame at the server takes the pending frame on
        msg, self._pending = self._pending, None
        if msg is not None:
            self._process(msg)

    def _sample_process_cpu(self) -> None:
        """The graph's CPU over the last window into the power model (power_counts_processes)."""
        if self.runtime.energy is not None:
            meter = self._process_cpu
            self.runtime.energy.process_cpu_s_per_s = meter.sample() if meter is not None else None

    def _check_fallback(self) -> None:
        if self.runtime.check_fallback() == CommandWatchdog.ENTERED:
            self.get_logger().warning(
                f"no valid granularity command for {self.runtime.watchdog.timeout_s:.1f} s: "
                f"running the fallback configuration {self.runtime.fallback_config.short()}"
            )

    # ------------------------------------------------------------------ work
    def _process(self, msg: Image) -> None:
        t_start = time.perf_counter()
        self.pacer.started(time.monotonic())
        try:
            image = msg_to_rgb(msg)
        except ImageConversionError as exc:
            self._bad_input(f"image_{error_kind(exc)}", str(exc))
            return
        self._check_fallback()
        remote = self.runtime.wants_remote()
        try:
            if remote:
                res = self.remote.handle(msg, image)
                if res is None:
                    return  # sent to the server: _remote_done publishes it when the reply or the deadline comes
            else:
                res = self.runtime.process(image)
        except Exception as exc:  # noqa: BLE001 - a frame the detector cannot handle must not end the node
            self._bad_input("inference_error", f"{type(exc).__name__}: {exc}")
            return
        self._last = res
        if self.context.ok():  # Ctrl-C during inference shuts the context down: nothing left to publish to
            self._publish(msg, image, res)
            # the frame ran here (a frame sent to a server returned above): it may go out as a link probe, which
            # keeps the link measured and is the only way back from a link that is down
            self.remote.probe(msg, image)
        # the node's own cost per frame beyond the detector: conversion, bookkeeping, publishing
        self.frames.overhead_ms.append((time.perf_counter() - t_start) * 1e3 - res.latency_ms - res.shadow_ms)

    def _frame_budget_s(self) -> float | None:
        rate = self.pacer.rate_hz
        return 1.0 / rate if rate else None

    def _remote_done(self, msg: Image, image, res: FrameResult) -> None:
        """A frame sent to a server is finished (answered, or run here at its deadline): publish it, then take on
        the frame that waited meanwhile."""
        self._last = res
        self._publish(msg, image, res)
        if self._pending is not None:
            delay = self.pacer.delay(time.monotonic())
            if delay <= 0.0:
                pending, self._pending = self._pending, None
                self._process(pending)
            elif self._pace_timer.is_canceled():
                self._pace_timer.timer_period_ns = max(int(delay * 1e9), 100_000)
                self._pace_timer.reset()

    def _publish(self, msg: Image, image, res: FrameResult) -> None:
        d = res.detections
        # a Detection2DArray of 20 boxes takes ~1 ms to build in Python: only for someone who listens
        if self.count_subscribers(self._dets_topic) > 0:
            self._pub_dets.publish(msg.header, d.boxes, d.scores, d.labels)
        for name, value in (
            ("fps", res.fps),
            ("latency_ms", res.latency_ms),
            ("detector_energy_per_frame_j", res.detector_energy_per_frame_j),
            ("power_w", res.power_w),
        ):
            self._pub_scalar[name].publish(Float32(data=float(value)))
        if not math.isnan(res.accuracy_proxy):
            self._pub_scalar["accuracy_proxy"].publish(Float32(data=float(res.accuracy_proxy)))
        rt = self.runtime
        commanded = not rt.in_fallback and rt.commanded is not None
        self._pub_feedback.publish(
            feedback_to_msg(
                res,
                msg.header,
                rt.energy.power_source if rt.energy else "none",
                decision=self._command.decision if commanded else 0,
                fallback=rt.in_fallback,
                command_header=self._command.header if commanded else None,
                # no server on offer (none announced, or the link down): P shows "no server", as the catalogue does
                link=self.remote.client.link if self.remote.client.available() else None,
            )
        )
        now = time.monotonic()
        if res.config != self._published_config or now - self._last_config_pub >= 1.0:
            self._pub_config.publish(String(data=res.config.short()))
            self._published_config, self._last_config_pub = res.config, now
        every = int(self.get_parameter("annotate_every").value)
        self._processed_since_annotation += 1
        if every > 0 and self._processed_since_annotation >= every:
            if self._pub_annotated.get_subscription_count() > 0:
                self._processed_since_annotation = 0
                lines = [
                    f"{res.fps:.1f} FPS  {res.latency_ms:.1f} ms  {res.objects} objects",
                    f"config {res.config.short()}" + ("  [fallback]" if self.runtime.in_fallback else ""),
                ]
                out = annotate(image, d.boxes, d.scores, d.labels, self.runtime.class_names, lines)
                self._pub_annotated.publish(rgb_to_msg(out, msg.header))

    def _publish_catalogue(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        catalogue = self.runtime.catalogue()
        if not self.remote.available:  # remote is on offer only while a perception server answers
            catalogue["execution_targets"] = [t for t in catalogue["execution_targets"] if t != "remote"]
        self._pub_catalogue.publish(catalogue_to_msg(catalogue, header))

    # ------------------------------------------------------------------ diagnostics
    def _check(self, status: StatusBuilder) -> None:
        report = perception_status(
            self.runtime,
            time.monotonic(),
            self.frames,
            self._last,
            self._target_fps,
            self.pacer.rate_hz,
            self.bad,
            self.get_parameter("device").value,
            torch.get_num_threads(),
        )
        for key, value in [*report.values, *self.remote.status()]:
            status.add(key, value)
        for message in report.warnings:
            status.summary(WARN, message)
        status.summary(OK, report.ok)


def main(args: list[str] | None = None) -> None:
    spin_node("perception", PerceptionNode, (StartupError,), args)


if __name__ == "__main__":
    main()
