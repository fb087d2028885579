"""camera_source_node: publishes frames on ``image_raw`` from the synthetic scene generator, real video or a folder.

The synthetic source is the project's own workload: with a trace, scene density and resolution follow the
trace's phases. ``source: video`` plays the real clips (vtest, Megamind, tree; ``agra-ros fetch-media``) or any
video file, looping at the ``fps`` rate; with a trace, the phases set the resolution and may switch the clip. Either
way (by default) the trace's target FPS is published on ``agra/trace_target_fps`` (latched), the lower-priority input
of the policy's ``target_fps`` parameter: the policy follows it until someone sets that parameter (see
docs/architecture.md), so one YAML file drives the whole closed loop and a user's setting still sticks. Ground
truth of synthetic frames goes out on ``image_raw/ground_truth``.
"""

from __future__ import annotations

import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Header

from agra_ros.limits import InputRejected, parse_target_fps
from agra_ros.ros import params as ros_params
from agra_ros.ros.detections import DetectionPublisher
from agra_ros.ros.diagnostics import OK, WARN, DiagnosticsReporter, StatusBuilder
from agra_ros.ros.image import rgb_to_msg
from agra_ros.ros.qos import image_qos, latched_qos
from agra_ros.ros.spin import spin_node
from agra_ros.workload.scene_types import CLASS_NAMES, SceneParams
from agra_ros.workload.sources import (
    ClipSource,
    ImageFolderSource,
    SourceError,
    SyntheticSource,
    camera_fallback,
    open_source,
)
from agra_ros.workload.trace import Trace, TraceError

SPECS = [
    ros_params.ParamSpec(
        "source",
        "video",
        "Where frames come from (video with no path and no fetched clips runs the synthetic scene, with a warning).",
        choices=("synthetic", "video", "folder"),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "path",
        "",
        "source=video: a clip name (vtest, Megamind, tree), a video file, or a comma-separated playlist; empty: the "
        "clips the trace's phases name (vtest if none). source=folder: an image folder; empty: the fetched photos.",
        read_only=True,
    ),
    ros_params.ParamSpec("fps", 30.0, "Publishing rate of image_raw in Hz.", range=(0.5, 120.0, 0.0)),
    ros_params.ParamSpec(
        "width", 640, "Frame width in pixels (synthetic source; a trace phase overrides it).", range=(32, 3840, 1)
    ),
    ros_params.ParamSpec(
        "height", 480, "Frame height in pixels (synthetic source; a trace phase overrides it).", range=(32, 2160, 1)
    ),
    ros_params.ParamSpec("trace", "", "Workload trace name (config/traces/<name>.yaml) or path; empty: no trace."),
    ros_params.ParamSpec(
        "full_rate_fps",
        0.0,
        "Rate the detector's full configuration runs at on this robot, in FPS: what a trace phase's target_fps_rel "
        "multiplies (0: unknown; a trace with relative targets is then refused, naming the phase).",
        range=(0.0, 1000.0, 0.0),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "seed", 0, "Seed of the synthetic scene generator (same seed, same frames).", range=(0, 2**31 - 1, 1)
    ),
    ros_params.ParamSpec("frame_id", "camera", "frame_id in every image header."),
    ros_params.ParamSpec(
        "reliability",
        "best_effort",
        "Reliability of image_raw (sensor-data QoS otherwise).",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "publish_target_fps",
        True,
        "Publish the trace phase's target FPS on agra/trace_target_fps (latched): the policy's target_fps follows "
        "it until someone sets that parameter (the policy's follow_trace).",
    ),
    ros_params.ParamSpec("publish_ground_truth", True, "Publish synthetic ground truth on image_raw/ground_truth."),
]


def load_trace(name: str, full_rate_fps: float = 0.0) -> Trace:
    """A trace whose every phase target is one the policy and perception accept (agra_ros.limits), relative targets
    resolved against ``full_rate_fps`` (0: unknown), else TraceError: a target they would refuse, or a relative one
    on a device of unknown rate, is refused here, where the file and the phase are named."""
    trace = Trace.load(name)  # a missing or malformed file says so itself
    try:
        trace = trace.resolved(full_rate_fps or None)
    except TraceError as exc:  # a relative target on a robot of unknown rate: name the trace too
        raise TraceError(f"trace {name!r}, {exc}") from None
    for phase in trace.phases:
        try:
            parse_target_fps(phase.target_fps)
        except InputRejected as exc:
            raise TraceError(f"trace {name!r}, phase {phase.name!r}: {exc}") from None
    return trace


class CameraSourceNode(Node):
    """Publishes camera frames at a configurable rate; parameters change at runtime."""

    def __init__(self, **kwargs) -> None:
        super().__init__("camera_source", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        self._source = self._open_source(p)  # raises SourceError: a clear error at start-up, not a crash loop
        self._image_pub = self.create_publisher(Image, "image_raw", image_qos(p["reliability"]))
        self._target_pub = self.create_publisher(Float32, "agra/trace_target_fps", latched_qos())
        self._gt_pub = DetectionPublisher(self, "image_raw/ground_truth", CLASS_NAMES)
        self._t0 = time.monotonic()
        self._published = 0
        self._last_target: float | None = None
        self._phase = None
        self._rate_window: list[float] = []
        self._timer = self.create_timer(1.0 / p["fps"], self._tick)
        ros_params.on_set(self, self._specs, self._validate)
        self.add_post_set_parameters_callback(self._apply)
        self._diag = DiagnosticsReporter(self, hardware_id=f"camera:{p['source']}")
        self._diag.add("camera", self._check)
        self.get_logger().info(
            f"publishing {p['source']} frames on {self.resolve_topic_name('image_raw')} at {p['fps']:.1f} Hz"
            + (f", clips {', '.join(self._source.playlist)}" if isinstance(self._source, ClipSource) else "")
            + (f", trace {p['trace']!r}" if p["trace"] else "")
        )

    # ------------------------------------------------------------------ set-up
    def _open_source(self, p: dict):
        source, trace_name, why = camera_fallback(p["source"], p["path"], p["trace"])
        if why:
            self.get_logger().warning(f"source video: {why}; running the synthetic scene with trace {trace_name!r}")
            p.update(source=source, trace=trace_name)
        trace = load_trace(p["trace"], p["full_rate_fps"]) if p["trace"] and p["source"] != "folder" else None
        scene = SceneParams(width=int(p["width"]), height=int(p["height"]))
        return open_source(p["source"], int(p["seed"]), p["path"], scene, trace)

    def _validate(self, params: list[Parameter]) -> SetParametersResult:
        for prm in params:
            if prm.name == "trace" and prm.value:
                try:
                    trace = load_trace(prm.value, float(self.get_parameter("full_rate_fps").value))
                    if isinstance(self._source, ClipSource):  # the clips the new trace names must open
                        ClipSource(self._source.playlist if not self._source.follow_trace else (), trace).close()
                except (OSError, ValueError) as exc:
                    return SetParametersResult(successful=False, reason=f"trace: {exc}")
        return SetParametersResult(successful=True)

    def _apply(self, params: list[Parameter]) -> None:
        names = {prm.name for prm in params}
        p = ros_params.values(self, self._specs)
        if "fps" in names:
            self._timer.cancel()
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / p["fps"], self._tick)
            self._rate_window.clear()
            self.get_logger().info(f"rate set to {p['fps']:.2f} Hz")
        restart = {"width", "height", "seed", "trace"} if isinstance(self._source, SyntheticSource) else {"trace"}
        if names & restart and not isinstance(self._source, ImageFolderSource):
            self._source.close()
            self._source = self._open_source(p)
            self._t0 = time.monotonic()
            self.get_logger().info(
                f"{p['source']} source restarted ({p['width']}x{p['height']}, seed {p['seed']}, trace {p['trace']!r})"
            )

    # ------------------------------------------------------------------ work
    def _tick(self) -> None:
        t = time.monotonic() - self._t0
        frame = self._source.read(t)
        if frame is None:
            return
        header = Header(frame_id=self.get_parameter("frame_id").value)
        header.stamp = self.get_clock().now().to_msg()
        self._image_pub.publish(rgb_to_msg(frame.image, header))
        if self.get_parameter("publish_ground_truth").value and isinstance(self._source, SyntheticSource):
            self._gt_pub.publish(header, frame.boxes, None, frame.labels)
        phase = self._source.phase_at(t) if isinstance(self._source, (SyntheticSource, ClipSource)) else None
        self._phase = phase
        if phase is not None and self.get_parameter("publish_target_fps").value:
            if self._last_target != phase.target_fps:  # latched: once per phase reaches late joiners too
                self._target_pub.publish(Float32(data=float(phase.target_fps)))
                self._last_target = phase.target_fps
        self._published += 1
        now = time.monotonic()
        self._rate_window.append(now)
        while self._rate_window and now - self._rate_window[0] > 5.0:
            self._rate_window.pop(0)

    def measured_rate(self) -> float:
        w = self._rate_window
        return (len(w) - 1) / (w[-1] - w[0]) if len(w) > 2 and w[-1] > w[0] else 0.0

    def _check(self, status: StatusBuilder) -> None:
        want = self.get_parameter("fps").value
        rate = self.measured_rate()
        status.add("frames_published", self._published)
        status.add("rate_hz", rate)
        status.add("target_rate_hz", want)
        phase = self._phase
        if isinstance(self._source, ClipSource):
            status.add("clip", self._source.current)
        if phase is not None:
            status.add("trace_phase", phase.name)
            status.add("trace_target_fps", phase.target_fps)
        if self._published > 10 and rate < 0.8 * want:
            status.summary(WARN, f"publishing at {rate:.1f} Hz, below the requested {want:.1f} Hz")
        else:
            status.summary(OK, "publishing")


def main(args: list[str] | None = None) -> None:
    spin_node("camera_source", CameraSourceNode, (SourceError, TraceError), args)


if __name__ == "__main__":
    main()
