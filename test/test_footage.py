"""`agra-ros evaluate-footage`: agreement and measured speed of configurations on footage; bad input exits 2."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from agra_ros.cli import main as cli_main
from agra_ros.detectors.footage import COLUMNS, CSV_NAME, PLOT_NAME, read_frames
from agra_ros.detectors.interface import Detections
from agra_ros.detectors.pseudo_eval import confident_agreement, strict_agreement
from agra_ros.workload.scene import SceneGenerator


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    """A dozen consecutive frames of a synthetic video scene, as PNG files (what the synthetic detector knows)."""
    folder = tmp_path_factory.mktemp("scene")
    gen = SceneGenerator(3, video=True)
    for i in range(12):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.cvtColor(gen.next_frame().image, cv2.COLOR_RGB2BGR))
    return folder


def _rows(path):
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, {r["configuration"]: r for r in reader}


def test_synthetic_run_writes_the_table_plot_and_installed_copy(scene_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["evaluate-footage", str(scene_folder), "--detector", "synthetic", "--frontier", "0", "--scales", "1"]
    argv += ["--intervals", "1,6", "--repeats", "3", "--out", str(out), "--install"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "cheapest with agreement >= 0.9" in printed and "cheapest with agreement >= 0.8" in printed
    fields, rows = _rows(out / CSV_NAME)
    assert tuple(fields[:4]) == COLUMNS
    assert {"strict_agreement", "keyframes", "forced_keyframes"} <= set(fields)
    n = 9  # the synthetic detector's switchable layers
    full, full_k6 = rows["F" * n + "/1/local"], rows["F" * n + "/1/local/k6"]
    assert float(full["agreement"]) == 1.0 and float(full["speedup"]) == 1.0 and float(full["strict_agreement"]) == 1.0
    assert int(full["keyframes"]) == 12
    assert int(full_k6["keyframes"]) >= 2 and float(full_k6["latency_ms"]) < float(full["latency_ms"])
    assert float(full_k6["speedup"]) > 1.0
    assert len(rows) == 5 * 2  # every level at scale 1, intervals 1 and 6
    assert all(0.0 <= float(r["agreement"]) <= 1.0 for r in rows.values())
    assert (out / PLOT_NAME).read_bytes()[:4] == b"\x89PNG"
    installed = tmp_path / "cache" / "agra_ros" / CSV_NAME
    assert installed.read_bytes() == (out / CSV_NAME).read_bytes()


def _write_recording(path, topic: str | None, image: np.ndarray | None = None, n: int = 3):
    from agra_ros.record.bag import BagWriter

    bag = BagWriter(path)
    store = bag.store
    stamp = store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0)
    header = store.types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera")
    if topic is None:  # no images: a string topic only
        bag.add_topic("/agra/config", "std_msgs/msg/String")
        msg = store.types["std_msgs/msg/String"](data="FFFFFFFFF/1/local")
        bag.write("/agra/config", 1, store.serialize_cdr(msg, "std_msgs/msg/String"))
    else:
        bag.add_topic(topic, "sensor_msgs/msg/Image")
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        h, w = image.shape[:2]
        for i in range(n):
            msg = store.types["sensor_msgs/msg/Image"](
                header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3, data=bgr.reshape(-1)
            )
            bag.write(topic, 1 + i, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    bag.close()
    return path


def test_a_recording_gives_its_images_as_rgb_in_order(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rec = _write_recording(tmp_path / "rec", "/robot/image_raw", rgb, n=5)
    frames, what = read_frames(rec, every=2)
    assert len(frames) == 3 and "image_raw" in what
    assert all(np.array_equal(f, rgb) for f in frames)
    frames, _ = read_frames(rec, max_frames=2)
    assert len(frames) == 2


BAD_INPUTS = ["missing", "empty folder", "corrupt video", "text only", "empty file", "no images"]


def _bad_input(case: str, tmp_path: Path) -> Path:
    path = tmp_path / "input"
    if case == "empty folder":
        path.mkdir()
    elif case == "corrupt video":
        path = tmp_path / "clip.avi"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif case == "text only":
        path.mkdir()
        (path / "notes.txt").write_text("not a frame\n")
    elif case == "empty file":
        path = tmp_path / "clip.mp4"
        path.touch()
    elif case == "no images":
        path = _write_recording(tmp_path / "rec", None)
    return path


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = _bad_input(case, tmp_path)
    out = tmp_path / "run"
    rc = cli_main(["evaluate-footage", str(path), "--detector", "synthetic", "--out", str(out), "--install"])
    captured = capfd.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(path.name) in lines[0] and lines[0].startswith("agra-ros evaluate-footage:")
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_distill_detector_footage_bad_input_exits_2_before_fetching_or_writing(case, tmp_path, monkeypatch, capfd):
    """distill-detector --footage reads the user's footage first: a bad one is one line, exit 2, no run folder,
    nothing fetched (the cache stays untouched)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = _bad_input(case, tmp_path)
    out = tmp_path / "run"
    rc = cli_main(["distill-detector", "--footage", str(path), "--out", str(out)])
    lines = capfd.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and path.name in lines[0] and lines[0].startswith("agra-ros distill-detector:")
    assert not out.exists() and not (tmp_path / "cache").exists()


def _dets(boxes, scores, labels):
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                      np.asarray(labels, np.int64))  # fmt: skip


def test_confident_agreement_ranks_weak_detections_and_needs_a_reference():
    full = [_dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.6], [1, 2])]
    assert confident_agreement(full, full) == 1.0
    weaker = [_dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.15], [1, 2])]  # same boxes, one less sure
    assert confident_agreement(weaker, full) == 1.0
    assert strict_agreement(weaker, full) < 1.0  # cut at 0.3, the second box is gone
    assert math.isnan(confident_agreement(full, [_dets([[0, 0, 10, 10]], [0.4], [1])]))  # nothing >= 0.5
    with pytest.raises(ValueError):
        confident_agreement(full, full + full)
