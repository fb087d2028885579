"""Frame sources: synthetic (trace-driven), video file and image folder; unreadable inputs fail at construction."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agra_ros.workload.scene_types import SceneParams
from agra_ros.workload.sources import (
    FrameSource,
    ImageFolderSource,
    SourceError,
    SyntheticSource,
    VideoFileSource,
    open_source,
)
from agra_ros.workload.trace import Trace

TRACE = {
    "name": "t",
    "phases": [
        {"name": "a", "duration_s": 1, "density": [0, 2], "resolution": [160, 120], "target_fps": 30},
        {"name": "b", "duration_s": 1, "density": [15, 20], "resolution": [200, 100], "target_fps": 10},
    ],
}


def _bgr_frames(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """Frames whose blue channel encodes the frame number, so order and BGR->RGB can be checked."""
    frames = []
    for i in range(n):
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = 40 + 40 * i  # blue in OpenCV's BGR order
        image[..., 2] = 10  # red
        frames.append(image)
    return frames


def test_synthetic_source_follows_the_trace() -> None:
    source = SyntheticSource(0, SceneParams(noise=1.0), Trace.from_dict(TRACE))
    assert isinstance(source, FrameSource)
    first = source.read(0.0)
    assert first.image.shape == (120, 160, 3) and len(first.boxes) <= 2
    assert source.target_fps(0.5) == 30 and source.target_fps(1.5) == 10
    frames = [source.read(1.0 + i / 30) for i in range(20)]
    assert frames[-1].image.shape == (100, 200, 3)
    assert len(frames[-1].boxes) > 8  # denser phase: objects fade in over a few frames
    assert source.generator.params.noise == 1.0  # base settings the phase does not name are kept
    assert [f.index for f in frames] == list(range(1, 21))
    assert source.read(2.1).image.shape == (120, 160, 3)  # looped back to phase a


def test_synthetic_source_without_trace_and_determinism() -> None:
    a = SyntheticSource(5, SceneParams(width=96, height=64))
    b = open_source("synthetic", seed=5, params=SceneParams(width=96, height=64))
    assert a.target_fps(0.0) is None and a.phase_at(0.0) is None
    for i in range(3):
        fa, fb = a.read(i / 30), b.read(i / 30)
        assert fa.image.tobytes() == fb.image.tobytes()
    a.set_params(width=128)
    assert a.read(0.2).image.shape == (64, 128, 3)
    with pytest.raises(ValueError):
        a.set_params(width=-5)
    named = SyntheticSource(0, trace="bench")
    assert named.trace is not None and named.trace.name == "bench"


def test_video_file_source_reads_in_order_as_rgb_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for image in _bgr_frames(4):
        writer.write(image)
    writer.release()
    source = VideoFileSource(path)
    blues = []
    for i in range(6):
        frame = source.read(i / 10)
        assert frame is not None and frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        assert len(frame.boxes) == 0 and frame.index == i
        assert frame.image[..., 2].mean() > frame.image[..., 0].mean()  # blue ends up in channel 2 (RGB)
        blues.append(float(frame.image[..., 2].mean()))
    assert blues[0] < blues[1] < blues[2] < blues[3]
    assert abs(blues[4] - blues[0]) < 8  # looped back to the first frame
    assert source.fps == pytest.approx(10.0, abs=0.5)
    source.close()
    once = VideoFileSource(path, loop=False, size=(32, 24))
    frames = [once.read(0.0) for _ in range(5)]
    assert frames[0] is not None and frames[0].image.shape == (24, 32, 3)
    assert frames[4] is None
    once.close()


def test_image_folder_source_sorted_rgb_loops(tmp_path: Path) -> None:
    for i, image in enumerate(_bgr_frames(3)):
        cv2.imwrite(str(tmp_path / f"img_{2 - i}.png"), image)  # names sort in reverse order of creation
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source("folder", path=tmp_path)
    assert isinstance(source, ImageFolderSource)
    blues = [int(source.read(0.0).image[0, 0, 2]) for _ in range(4)]  # type: ignore[union-attr]
    assert blues == [120, 80, 40, 120]
    first = ImageFolderSource(tmp_path).read(0.0)
    assert first is not None and first.image[0, 0].tolist() == [10, 0, 120]  # R, G, B


def test_unreadable_inputs_fail_in_the_constructor(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match=str(junk.name)):
        VideoFileSource(junk)
    with pytest.raises(SourceError, match="not a directory"):
        ImageFolderSource(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(empty)
    (empty / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SourceError, match="cannot be decoded"):
        ImageFolderSource(empty)
    with pytest.raises(SourceError, match="unknown source"):
        open_source("webcam")
    assert issubclass(SourceError, ValueError)
