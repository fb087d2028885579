"""perception_node across processes over real DDS: detections, granularity changes, fallback, bad input, start-up.

One camera_source and one perception_node serve the whole module (start-up is the expensive part); each test
drives them from a probe node in this process and leaves the command stream stopped when it ends.
"""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import node_process, probe, read_log, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import Float32

from agra_ros.granularity.levels import GranularityConfig
from agra_ros.perception.agreement import detection_agreement
from agra_ros.ros.detections import detection_msg_type, parse_detections
from agra_ros.ros.diagnostics import array_to_dicts
from agra_ros.ros.interfaces import (
    GranularityCatalogue,
    GranularityCommand,
    PerceptionFeedback,
    command_to_msg,
    configuration_short,
)
from agra_ros.ros.qos import command_qos, image_qos, latched_qos
from agra_ros.workload.scene_types import CLASS_NAMES

pytestmark = pytest.mark.ros

N_LAYERS = 9
TIMEOUT_S = 2.5
FALLBACK = GranularityConfig.uniform("neuron-50", N_LAYERS)
STATUS = "perception: perception"


class Recorder:
    """Everything perception_node publishes, plus a command stream the tests switch on and off."""

    def __init__(self, node) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.feedback: list[tuple[float, PerceptionFeedback]] = []
        self.decision = 0
        """Number of the last command sent (as a policy numbers its decisions)."""
        self.configurations: list[tuple[float, str]] = []
        self.diag: dict[str, str] = {}
        self.detections: dict[tuple[int, int], object] = {}
        self.truth: dict[tuple[int, int], object] = {}
        self.annotated: list[Image] = []
        self.command: GranularityConfig | None = None
        q = command_qos(50)
        node.create_subscription(PerceptionFeedback, "agra/feedback", self._on_feedback, q)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 20)
        node.create_subscription(detection_msg_type(), "detections", self._on_dets, q)
        node.create_subscription(detection_msg_type(), "image_raw/ground_truth", self._on_truth, q)
        node.create_subscription(Image, "image_annotated", self.annotated.append, image_qos("best_effort"))
        self.cmd_pub = node.create_publisher(GranularityCommand, "agra/granularity", command_qos(10))
        self.image_pub = node.create_publisher(Image, "image_raw", image_qos("reliable"))
        self.target_pub = node.create_publisher(Float32, "agra/target_fps", latched_qos())  # as the policy's
        node.create_timer(0.2, self._send_command)

    @staticmethod
    def _key(header) -> tuple[int, int]:
        return header.stamp.sec, header.stamp.nanosec

    def _on_feedback(self, msg: PerceptionFeedback) -> None:
        now = time.monotonic()
        with self.lock:
            self.feedback.append((now, msg))
            self.configurations.append((now, configuration_short(msg.configuration)))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        st = array_to_dicts(msg).get(STATUS)
        if st is not None:
            self.diag = st

    def _on_dets(self, msg) -> None:
        self.detections[self._key(msg.header)] = msg

    def _on_truth(self, msg) -> None:
        self.truth[self._key(msg.header)] = msg

    def _send_command(self) -> None:
        if self.command is not None:
            self.decision += 1
            self.send(command_to_msg(self.command, self.decision))

    def send(self, msg: GranularityCommand) -> None:
        self.cmd_pub.publish(msg)

    def config_now(self) -> str | None:
        with self.lock:
            return self.configurations[-1][1] if self.configurations else None

    def latencies_since(self, t0: float) -> list[float]:
        with self.lock:
            return [msg.latency_ms for t, msg in self.feedback if t >= t0]

    def frames_since(self, t0: float) -> int:
        with self.lock:
            return sum(1 for t, _ in self.feedback if t >= t0)

    def diag_int(self, key: str) -> int:
        return int(self.diag.get(key, "0"))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    logs = tmp_path_factory.mktemp("perception")
    camera = {
        "source": "synthetic",
        "fps": 10.0,
        "width": 640,
        "height": 480,
        "trace": "",
        "seed": 7,
        "reliability": "reliable",
    }
    perception = {
        "fallback_timeout_s": TIMEOUT_S,
        "shadow_share": 0.5,
        "annotate_every": 1,
        "threads": 1,
        "score_threshold": 0.3,
        "detector": "synthetic",  # the fast test double, whatever the default detector is
    }
    with (
        node_process("perception", perception, logs) as proc,
        node_process("camera_source", camera, logs) as cam,
        probe("perception_probe") as pr,
    ):
        rec = Recorder(pr.node)
        assert wait_for(lambda: len(rec.feedback) >= 3, 60), "no feedback from perception:\n" + read_log(proc)
        yield proc, cam, pr, rec
        rec.command = None


def _set_params(node, params: list[Parameter], timeout: float = 10.0):
    client = node.create_client(SetParameters, "/perception/set_parameters")
    assert client.wait_for_service(timeout_sec=timeout), "parameter service not available"
    fut = client.call_async(SetParameters.Request(parameters=[p.to_parameter_msg() for p in params]))
    assert wait_for(fut.done, timeout), "set_parameters timed out"
    return fut.result().results


def test_detections_feedback_annotation_and_diagnostics(graph):
    proc, _, _, rec = graph
    rec.command = GranularityConfig.uniform("full", N_LAYERS)
    assert wait_for(lambda: rec.config_now() == rec.command.short(), 15), rec.configurations[-3:]
    assert wait_for(lambda: len(set(rec.detections) & set(rec.truth)) >= 8, 20), "no detections with ground truth"
    assert wait_for(lambda: len(rec.annotated) >= 2, 10), "no image_annotated frames"
    rec.command = None

    # one PerceptionFeedback per processed frame, naming the frame, the configuration and its decision
    fb = rec.feedback[-1][1]
    assert 3.0 < fb.fps < 30.0 and 0.0 < fb.latency_ms < 1000.0 and fb.detector_energy_per_frame_j > 0.0
    assert fb.power_w > 0.0 and fb.system_energy_per_frame_j == pytest.approx(fb.power_w / fb.fps, rel=1e-5)
    assert fb.energy_source == "model:x86_generic" and not fb.fallback
    assert fb.header.frame_id == "camera" and (fb.header.stamp.sec, fb.header.stamp.nanosec) != (0, 0)
    assert configuration_short(fb.configuration) == "FFFFFFFFF/1/local" and fb.configuration.decision >= 1
    assert 0.0 <= fb.mean_confidence <= 1.0 and (fb.objects == 0) == (fb.mean_confidence == 0.0)

    # detections agree with the synthetic ground truth (the detector is trained on these scenes)
    f1 = []
    for key in sorted(set(rec.detections) & set(rec.truth)):
        det = parse_detections(rec.detections[key], CLASS_NAMES)
        gt = parse_detections(rec.truth[key], CLASS_NAMES)
        f1.append(detection_agreement(det, gt))
    assert np.mean(f1) >= 0.6, f"mean F1 against ground truth {np.mean(f1):.2f} over {len(f1)} frames"

    img = rec.annotated[-1]
    assert (img.width, img.height, img.encoding) == (640, 480, "rgb8") and len(img.data) == 640 * 480 * 3

    assert wait_for(lambda: rec.diag.get("detector_energy_per_frame_j.source", "").startswith("model:"), 5), rec.diag
    assert rec.diag["detector_energy_per_frame_j.source"] == "model:x86_generic"
    # the full configuration is its own shadow reference (the last shadow frame may predate the switch: wait)
    assert wait_for(lambda: float(rec.diag.get("accuracy_proxy", "nan")) == 1.0, 20), rec.diag
    assert proc.poll() is None


def test_catalogue_reaches_a_late_subscriber(graph):
    _, _, pr, _ = graph
    got: list[GranularityCatalogue] = []
    pr.node.create_subscription(GranularityCatalogue, "agra/granularity_catalogue", got.append, latched_qos())
    assert wait_for(lambda: bool(got), 10), "latched catalogue not received"
    cat = got[-1]
    assert len(cat.layer_names) == N_LAYERS and cat.detector and cat.class_names == list(CLASS_NAMES)
    assert cat.level_names == ["full", "partitioned", "neuron-75", "neuron-50", "neuron-25"]
    assert list(cat.resolution_scales) == [1.0, 0.75, 0.5] and cat.execution_targets == [
        "local"
    ]  # remote: only while a server answers
    assert configuration_short(cat.safe_configuration) == FALLBACK.short() and cat.safe_configuration.decision == 0


def test_granularity_change_takes_effect_and_cuts_latency(graph):
    _, _, _, rec = graph
    medians: dict[str, list[float]] = {"full": [], "neuron-25": []}  # 10th percentiles
    # two rounds, alternating, and the best 10th percentile of each level: a neighbour loading the machine must not
    # decide the comparison; the quick frames are those its time slices left alone (the cost table's ratio is about
    # 3x; 0.8x is asked; with one core busy the medians were 15.8 ms against 19.6, 0.81x)
    for level in ("full", "neuron-25", "full", "neuron-25"):
        rec.command = GranularityConfig.uniform(level, N_LAYERS)
        assert wait_for(lambda: rec.config_now() == rec.command.short(), 10), rec.configurations[-3:]
        t0 = time.monotonic()
        assert wait_for(lambda t0=t0: len(rec.latencies_since(t0)) >= 12, 15)
        medians[level].append(float(np.percentile(rec.latencies_since(t0), 10)))
    rec.command = None
    assert min(medians["neuron-25"]) < 0.8 * min(medians["full"]), medians
    assert wait_for(lambda: rec.diag.get("configuration") == "222222222/1/local", 5), rec.diag


def test_a_keyframe_interval_tracks_between_keyframes(graph):
    """Temporal granularity over DDS: at interval 3 two frames in three are tracked, and their feedback says so."""
    _, _, _, rec = graph
    cmd = GranularityConfig.uniform("neuron-50", N_LAYERS).with_keyframe_interval(3)
    rec.command = cmd
    assert wait_for(lambda: rec.config_now() == cmd.short(), 10), rec.configurations[-3:]
    t0 = time.monotonic()
    assert wait_for(lambda: rec.frames_since(t0) >= 12, 20)
    with rec.lock:
        window = [m for t, m in rec.feedback if t >= t0]
    tracked = [m.tracked for m in window]
    assert 0.4 <= sum(tracked) / len(tracked) <= 0.75, tracked  # 2 in 3, less any keyframe a scene cut forces
    assert all(m.configuration.keyframe_interval == 3 for m in window)
    assert all(np.isfinite(m.motion) and m.motion >= 0 for m in window)
    rec.command = None


def test_fallback_after_timeout_and_recovery(graph):
    proc, _, _, rec = graph
    cmd = GranularityConfig.uniform("neuron-75", N_LAYERS)
    rec.command = cmd
    assert wait_for(lambda: rec.config_now() == cmd.short(), 10)
    before = rec.diag_int("fallbacks")
    rec.command = None  # the policy goes silent
    assert wait_for(lambda: rec.config_now() == FALLBACK.short(), TIMEOUT_S + 5), rec.configurations[-3:]
    assert wait_for(lambda: rec.diag.get("fallback") == "1", 5), rec.diag
    time.sleep(1.0)
    rec.command = cmd  # and speaks again
    assert wait_for(lambda: rec.config_now() == cmd.short(), 10), rec.configurations[-3:]
    assert wait_for(lambda: rec.diag.get("fallback") == "0", 5), rec.diag
    assert rec.diag_int("fallbacks") == before + 1
    rec.command = None
    log = read_log(proc)
    assert log.count("running the fallback configuration") >= 1
    assert log.count("granularity commands resumed") >= 1
    # logged once per transition, not once per frame or per check
    assert log.count("running the fallback configuration") <= rec.diag_int("fallbacks")


def _bad_images() -> dict[str, Image]:
    def img(**kw) -> Image:
        m = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=bytes(48 * 64 * 3))
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    return {
        "image_encoding": img(encoding="32FC1"),
        "image_step": img(step=10),
        "image_zero_size": img(height=0, width=0, step=0, data=b""),
        "image_truncated": img(data=bytes(100)),
    }


def test_each_kind_of_bad_input_is_counted_and_survived(graph):
    proc, _, _, rec = graph

    def cmd(levels=(0,) * N_LAYERS, scale=1.0, target=0, interval=1) -> GranularityCommand:
        return GranularityCommand(
            levels=list(levels), resolution_scale=scale, execution_target=target, keyframe_interval=interval, decision=1
        )

    bad_commands = [
        ("granularity_wrong_length", cmd(levels=[0, 0, 0])),
        ("granularity_unknown_level", cmd(levels=[0] * 3 + [7] + [0] * 5)),
        ("granularity_unknown_scale", cmd(scale=0.6)),
        ("granularity_unknown_scale", cmd(scale=float("nan"))),
        ("granularity_unknown_target", cmd(target=GranularityCommand.TARGET_REMOTE + 8)),
        ("granularity_unknown_interval", cmd(interval=5)),
    ]
    images = _bad_images()
    for kind, msg in bad_commands:
        n0 = rec.diag_int(f"bad_input.{kind}")
        assert wait_for(lambda m=msg, k=kind, n0=n0: rec.send(m) or rec.diag_int(f"bad_input.{k}") > n0, 10, 0.3), (
            kind,
            rec.diag,
        )
    for kind, msg in images.items():
        # the camera publishes on the same depth-1 topic; repeat until one of ours is the frame taken
        assert wait_for(
            lambda m=msg, k=kind: rec.image_pub.publish(m) or rec.diag_int(f"bad_input.{k}") >= 1, 15, 0.05
        ), (
            kind,
            rec.diag,
        )
    assert wait_for(
        lambda: rec.target_pub.publish(Float32(data=float("nan"))) or rec.diag_int("bad_input.target_fps"), 10
    )
    assert rec.diag_int("bad_input_total") >= len(bad_commands) + len(images) + 1
    t0 = time.monotonic()
    assert wait_for(lambda: rec.frames_since(t0) >= 3, 10), "perception stopped processing after bad input"
    assert proc.poll() is None
    log = read_log(proc)
    assert "skipped bad input [image_truncated]" in log and "Traceback" not in log


def _counters(rec: Recorder) -> tuple[int, int]:
    return rec.diag_int("frames_received"), rec.diag_int("frames_processed")


def _window(rec: Recorder, seconds: float) -> tuple[float, float]:
    """(processed frames per second seen on agra/feedback, processed/received share from the node's counters)."""
    wait_for(lambda: False, 1.1)  # a fresh diagnostics report
    t0, (r0, p0) = time.monotonic(), _counters(rec)
    time.sleep(seconds)
    rate = rec.frames_since(t0) / (time.monotonic() - t0)
    wait_for(lambda: False, 1.1)
    r1, p1 = _counters(rec)
    return rate, (p1 - p0) / max(1, r1 - r0)


def test_pacing_to_target_fps_and_parameter_validation(graph):
    _, _, pr, rec = graph
    rec.target_pub.publish(Float32(data=1.5))  # far below the 10 Hz camera, even on a loaded machine
    rate, share = _window(rec, 3.0)
    assert 0.7 <= rate <= 2.2, f"expected ~1.5 FPS paced from a 10 Hz camera, got {rate:.1f}"
    assert _set_params(pr.node, [Parameter("pace_to_target", value=False)])[0].successful
    rate_free, share_free = _window(rec, 2.0)
    # unpaced, the node (tens of ms a frame) keeps up with the camera: it takes nearly every frame it receives
    assert share_free >= 0.8 and share_free > share + 0.2 and rate_free > rate, (rate, share, rate_free, share_free)
    for bad in (
        Parameter("device", value="cuda"),
        Parameter("shadow_share", value=1.5),
        Parameter("fallback_configuration", value="FFF"),
        Parameter("device_profile", value="no_such_board"),
    ):
        res = _set_params(pr.node, [bad])[0]
        assert not res.successful and res.reason, bad.name
    res = _set_params(pr.node, [Parameter("fallback_configuration", value="222222222/0.5/local")])[0]
    assert res.successful, res.reason
    assert wait_for(lambda: rec.diag.get("fallback_configuration") == "222222222/0.5/local", 5)


def test_target_fps_outside_the_bounds_is_counted_logged_and_ignored(graph):
    """Issue 11: a target below ~5e-11 crashed the node (timer period overflow), 0.01 stopped detection silently.
    Every target outside agra_ros.limits.TARGET_FPS_RANGE is refused: counted, logged, pacing unchanged."""
    proc, _, pr, rec = graph
    assert _set_params(pr.node, [Parameter("pace_to_target", value=True)])[0].successful
    rec.target_pub.publish(Float32(data=5.0))
    assert wait_for(lambda: float(rec.diag.get("target_fps", "nan")) == 5.0, 10), rec.diag
    for value in (1e-12, 0.01, 0.49, 241.0, 1e30, -3.0, float("inf")):
        n = rec.diag_int("bad_input.target_fps")
        # one at a time: the reader keeps only the newest sample, so a burst could be counted as one
        assert wait_for(
            lambda n=n, v=value: rec.target_pub.publish(Float32(data=v)) or rec.diag_int("bad_input.target_fps") > n,
            15,
            0.5,
        ), (value, rec.diag)
    t0 = time.monotonic()
    assert wait_for(lambda: rec.frames_since(t0) >= 4, 15), "detection stopped after out-of-bounds targets"
    assert float(rec.diag["target_fps"]) == 5.0 and float(rec.diag["pacing_hz"]) == 5.0, rec.diag
    assert proc.poll() is None
    log = read_log(proc)
    assert "agra/target_fps ignored" in log and "outside [0.5, 240]" in log and "Traceback" not in log
    rec.target_pub.publish(Float32(data=30.0))  # leave the pace above the camera for the tests after this one


def test_oversize_frames_are_counted_and_frames_lost_in_transport_are_visible(graph):
    """Issue 11: frames of tens of MB on best-effort image_raw never arrived and were counted nowhere. The size
    limit (agra_ros.limits) is checked before conversion and counted; DDS's message-lost events are counted too."""
    proc, _, _, rec = graph
    # a header claiming more than MAX_IMAGE_BYTES is refused before its data is even looked at
    claim = Image(height=4800, width=4800, encoding="rgb8", step=4800 * 3, data=bytes(64))
    assert wait_for(lambda: rec.image_pub.publish(claim) or rec.diag_int("bad_input.image_too_large") >= 1, 15, 0.05), (
        rec.diag
    )
    assert int(rec.diag["max_frame_mib"]) == 64 and int(rec.diag["max_frame_side_px"]) == 8192
    # real 64 MiB frames over the best-effort subscription: most are lost in transport on a busy machine; whatever
    # DDS loses is counted in frames_lost and logged, and the node keeps processing the camera's frames
    big = Image(height=8192, width=8192, encoding="mono8", step=8192, data=bytes(8192 * 8192))
    lost0 = rec.diag_int("frames_lost")
    for _ in range(6):
        rec.image_pub.publish(big)
        time.sleep(0.3)
    t0 = time.monotonic()
    assert wait_for(lambda: rec.frames_since(t0) >= 3, 20), "perception stopped processing after large frames"
    assert "frames_lost" in rec.diag and proc.poll() is None
    if rec.diag_int("frames_lost") > lost0:
        assert wait_for(lambda: "lost in transport" in read_log(proc), 10)
    assert "Traceback" not in read_log(proc)


def test_clean_ctrl_c(graph):
    proc, _, _, _ = graph
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    assert "Traceback" not in read_log(proc)


def test_missing_or_corrupt_weights_are_a_clear_startup_error(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file" * 10)
    with (
        node_process("perception", {"weights": str(tmp_path / "missing.pt")}, tmp_path, "missing") as p1,
        node_process("perception", {"weights": str(corrupt)}, tmp_path, "corrupt") as p2,
    ):
        assert p1.wait(timeout=60) == 2 and p2.wait(timeout=60) == 2
    for p, text in ((p1, "not found"), (p2, "cannot read")):
        log = read_log(p)
        assert text in log and "Traceback" not in log, log
