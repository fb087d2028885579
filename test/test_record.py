"""Recordings: rosbags writes rosbag2/MCAP from rclpy-serialised messages, they read back (also with mcap_ros2, an
independent reader), the report rebuilds a run's rows from them, and every kind of bad recording is a clear error."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from agra_ros.msg import PerceptionFeedback
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.serialization import serialize_message
from std_msgs.msg import Float32, Header, String

from agra_ros.device.keys import DEVICE_STATUS_NAME
from agra_ros.record.bag import BagWriter, RecordingError
from agra_ros.record.replay import messages, open_recording
from agra_ros.record.report import algorithm_row, main, replay, write_report
from agra_ros.results.paper_table import AlgorithmRow, ratios

FB = "/agra/feedback"
TGT = "/agra/target_fps"
DIAG = "/diagnostics"
CFG = "/agra/configuration"


def _feedback(fps: float, acc: float) -> PerceptionFeedback:
    return PerceptionFeedback(
        header=Header(frame_id="camera"), fps=fps, latency_ms=20.0, detector_energy_per_frame_j=0.1, power_w=2.0,
        energy_source="model:test", accuracy_proxy=acc, objects=3, mean_confidence=0.6,
    )  # fmt: skip


def _device(power_w: float) -> DiagnosticArray:
    kv = [KeyValue(key="power_w", value=str(power_w)), KeyValue(key="power_w.source", value="model:test")]
    status = [
        DiagnosticStatus(name=DEVICE_STATUS_NAME, hardware_id="test", values=kv),
        DiagnosticStatus(name="policy: state", hardware_id="policy:rule", values=[]),
    ]
    return DiagnosticArray(status=status)


def write_run(
    path: Path,
    fps: float,
    power_w: float,
    target: float = 10.0,
    seconds: float = 30.0,
    algorithm: str | None = None,
    feedback_until: float | None = None,
    planned: float | None = None,
    measure: float | None = None,
) -> Path:
    """A recording of a steady run: feedback at 10 Hz, device power and the target at 1 Hz."""
    bag = BagWriter(path)
    for topic, mtype in (
        (FB, "agra_ros/msg/PerceptionFeedback"),
        (TGT, "std_msgs/msg/Float32"),
        (DIAG, "diagnostic_msgs/msg/DiagnosticArray"),
        (CFG, "std_msgs/msg/String"),
    ):
        bag.add_topic(topic, mtype)
    if algorithm:
        bag.set_metadata("algorithm", algorithm)
    if planned:
        bag.set_metadata("duration", str(planned))
    if measure:
        bag.set_metadata("measure", str(measure))
    t0 = 1_700_000_000 * 10**9
    for i in range(int(seconds * 10)):
        t = t0 + i * 10**8
        if feedback_until is None or i / 10 < feedback_until:
            bag.write(FB, t, serialize_message(_feedback(fps, 0.8 if i % 2 else math.nan)))
        if i % 10 == 0:
            bag.write(TGT, t, serialize_message(Float32(data=target)))
            bag.write(DIAG, t, serialize_message(_device(power_w)))
            bag.write(CFG, t, serialize_message(String(data="FF7755522/1/local")))
    bag.close()
    return path


def test_round_trip_keeps_every_message_and_field(tmp_path):
    path = write_run(tmp_path / "run", fps=12.0, power_w=3.0, seconds=5, algorithm="agra")
    rec = open_recording(path)
    assert rec.topics[FB] == ("agra_ros/msg/PerceptionFeedback", 50)
    assert rec.topics[TGT][1] == rec.topics[DIAG][1] == 5
    assert rec.metadata["algorithm"] == "agra"
    assert open_recording(path / "run.mcap").topics == rec.topics  # the bare MCAP file reads the same
    fbs = [m for t, _, m in messages(path) if t == FB]
    assert len(fbs) == 50 and fbs[0].fps == pytest.approx(12.0) and fbs[0].energy_source == "model:test"
    assert fbs[0].configuration.levels is not None and fbs[1].accuracy_proxy == pytest.approx(0.8)
    # an independent reader (the one Foxglove's tooling uses) decodes it from the embedded definitions alone
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path / "run.mcap", "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        decoded = [m for _, _, _, m in reader.iter_decoded_messages(topics=[FB])]
    assert len(decoded) == 50 and decoded[0].objects == 3


def test_report_rows_from_recordings(tmp_path):
    static = replay(write_run(tmp_path / "static", fps=10.0, power_w=4.0, algorithm="static"), warmup_s=2.0)
    agra = replay(write_run(tmp_path / "agra", fps=12.0, power_w=3.0, algorithm="agra"), warmup_s=2.0)
    row = algorithm_row(agra)
    assert row.algorithm == "agra" and row.power_source == "model:test"
    assert row.power_w == pytest.approx(3.0) and row.fps == pytest.approx(12.0)
    assert row.system_energy_per_frame_j == pytest.approx(0.25) and row.attainment == pytest.approx(1.0)
    assert row.detector_energy_per_frame_j == pytest.approx(0.1)
    assert row.accuracy == pytest.approx(0.8)  # NaN (no shadow run) frames do not count
    assert 50 <= row.samples <= 60  # 28 s after warm-up at 0.5 s
    r = ratios([algorithm_row(static), row])
    assert r["static"]["system_energy_per_frame"] == pytest.approx(0.25 / 0.4)
    md, csv_path, png = write_report([agra, static], tmp_path / "out", "test")
    text = md.read_text()
    assert text.index("| static |") < text.index("| agra |")  # the paper's order
    assert "system energy per frame vs static" in text and png.stat().st_size > 10_000
    assert (tmp_path / "out" / "agra" / "summary.md").is_file() and csv_path.read_text().count("\n") == 3
    assert isinstance(row, AlgorithmRow)


def test_recordings_made_before_the_rename_still_report_the_detector_energy():
    """Recordings from before PerceptionFeedback's field became detector_energy_per_frame_j carry energy_per_frame_j."""
    from types import SimpleNamespace

    from agra_ros.record.sampler import GraphSampler

    old = SimpleNamespace(
        fps=10.0, latency_ms=20.0, energy_per_frame_j=0.1, accuracy_proxy=0.5, energy_source="model:x"
    )
    s = GraphSampler()
    s.feed("/agra/feedback", old)
    assert s.latest["detector_energy_per_frame_j"] == pytest.approx(0.1)
    assert s.record.sources["detector_energy_per_frame_j"] == "model:x"


def test_a_benchmarks_measurement_span_is_kept(tmp_path):
    run = replay(write_run(tmp_path / "r", fps=10.0, power_w=4.0, measure=10.0), warmup_s=2.0)
    assert run.record.t[-1] - run.record.t[0] == pytest.approx(10.0)  # 28 s after warm-up, 10 s measured
    assert len(run.record.t) == 21


def test_algorithm_falls_back_to_the_policy_diagnostics(tmp_path):
    run = replay(write_run(tmp_path / "r", fps=10.0, power_w=4.0), warmup_s=1.0)
    assert run.algorithm == "rule"  # from the policy's hardware_id in /diagnostics


def test_bad_recordings_are_clear_errors_naming_the_file(tmp_path):
    good = write_run(tmp_path / "good", fps=10.0, power_w=4.0)
    with pytest.raises(RecordingError, match="no such recording"):
        open_recording(tmp_path / "missing.mcap")
    trunc = tmp_path / "trunc.mcap"
    trunc.write_bytes((good / "good.mcap").read_bytes()[:40])  # inside its header; later cuts: test_record_truncated
    with pytest.raises(RecordingError, match=r"trunc\.mcap: truncated or corrupt recording: .* inside the MCAP header"):
        replay(trunc)
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"not an mcap file at all" * 10)
    with pytest.raises(RecordingError, match="junk.mcap"):
        open_recording(junk)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(RecordingError, match="not an MCAP file"):
        open_recording(other)
    bag = BagWriter(tmp_path / "diag_only")
    bag.add_topic(DIAG, "diagnostic_msgs/msg/DiagnosticArray")
    bag.write(DIAG, 1, serialize_message(_device(1.0)))
    bag.close()
    with pytest.raises(RecordingError, match=r"diag_only: no messages on agra/feedback, agra/target_fps"):
        replay(tmp_path / "diag_only")
    with pytest.raises(RecordingError, match="exists already"):
        BagWriter(good)


def test_runs_cut_short_are_refused(tmp_path):
    died = write_run(tmp_path / "died", fps=10.0, power_w=4.0, feedback_until=12.0)
    with pytest.raises(RecordingError, match=r"died.*feedback stops 17 s before the end.*perception"):
        replay(died)
    short = write_run(tmp_path / "short", fps=10.0, power_w=4.0, planned=100.0)
    with pytest.raises(RecordingError, match="covers 30 s of the planned 100 s"):
        replay(short)


def test_report_cli_writes_nothing_from_a_partial_set(tmp_path, capsys):
    good = write_run(tmp_path / "a", fps=10.0, power_w=4.0, algorithm="static")
    died = write_run(tmp_path / "b", fps=10.0, power_w=4.0, algorithm="agra", feedback_until=5.0)
    out = tmp_path / "out"
    assert main([str(good), str(died), "--out", str(out)]) == 1
    assert "b: perception's feedback stops" in capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert not out.exists()
    assert main([str(good), "--out", str(out)]) == 0
    assert (out / "static" / "run.png").is_file() and not (out / "paper_table.md").exists()


@pytest.mark.ros
def test_recorder_node_records_what_was_published(tmp_path):
    """Over DDS: a latched target published before the recorder starts, 40 feedback messages, diagnostics, and
    images at 10 Hz thinned to 2 Hz; SIGINT closes the recording, which then holds exactly that."""
    import time

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_harness import node_process, probe, read_log, wait_for
    from sensor_msgs.msg import Image

    from agra_ros.ros.qos import command_qos, image_qos, latched_qos

    out = tmp_path / "rec"
    params = {"out": str(out), "image_rate_hz": 2.0, "metadata": ["algorithm=test"]}
    with probe("rec_probe") as pr:
        node = pr.node
        tgt = node.create_publisher(Float32, "agra/target_fps", latched_qos())
        fb = node.create_publisher(PerceptionFeedback, "agra/feedback", command_qos(10))
        diag = node.create_publisher(
            DiagnosticArray, "/diagnostics", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        img = node.create_publisher(Image, "image_annotated", image_qos("best_effort"))
        tgt.publish(Float32(data=12.5))
        with node_process("recorder", params, tmp_path) as proc:
            topics = ("/agra/target_fps", "/agra/feedback", "/diagnostics", "/image_annotated")
            ready = lambda: all(f"recording {t} (" in read_log(proc) for t in topics)  # noqa: E731
            assert wait_for(ready, 40), "recorder did not subscribe:\n" + read_log(proc)
            assert wait_for(lambda: fb.get_subscription_count() >= 1 and img.get_subscription_count() >= 1, 10)
            time.sleep(0.5)
            image = Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(48))
            for i in range(40):
                fb.publish(_feedback(float(i), 0.5))
                if i % 2 == 0:
                    img.publish(image)
                if i % 10 == 0:
                    diag.publish(_device(2.0))
                time.sleep(0.05)
            time.sleep(1.0)
        log = read_log(proc)
    assert "recording closed" in log, log
    rec = open_recording(out)
    assert rec.metadata["algorithm"] == "test"
    assert rec.topics["/agra/target_fps"][1] == 1  # the latched value, published before the recorder existed
    assert rec.topics["/agra/feedback"][1] == 40 and rec.topics["/diagnostics"][1] >= 4
    assert 2 <= rec.topics["/image_annotated"][1] <= 6  # 2 s of images at 10 Hz, thinned to 2 Hz
    msgs = list(messages(out, skip_images=False))
    fps = [m.fps for t, _, m in msgs if t == "/agra/feedback"]
    assert fps == [float(i) for i in range(40)]
    assert next(m.data for t, _, m in msgs if t == "/agra/target_fps") == pytest.approx(12.5)
    assert next(m for t, _, m in msgs if t == "/image_annotated").width == 4


def test_report_takes_a_folder_holding_recordings(tmp_path, capsys):
    """A bench run's output folder (<algorithm>/recording/ below it) is reported as it is, every recording in it."""
    bench = tmp_path / "bench_paper_live"
    write_run(bench / "static" / "recording", fps=10.0, power_w=4.0, algorithm="static")
    write_run(bench / "agra" / "recording", fps=12.0, power_w=3.0, algorithm="agra")
    (bench / "notes").mkdir()  # a folder without recordings is passed over
    out = tmp_path / "out"
    assert main([str(bench), "--out", str(out), "--warmup", "2"]) == 0
    assert (out / "static" / "run.png").is_file() and (out / "agra" / "run.png").is_file()
    assert (out / "paper_table.md").is_file()
    assert main([str(tmp_path / "notes_only_missing")]) == 1
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    assert "no recordings in this folder or below" in capsys.readouterr().err
