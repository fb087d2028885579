"""Real camera media: the cache layout (from stand-in packages, no network), real-video sources that loop and switch
clips by trace phase, the demo's fallback to the synthetic camera, and the real clips themselves when fetchable."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from agra_ros import cli, demo
from agra_ros.assets import AssetError
from agra_ros.workload import real_media
from agra_ros.workload.real_media import CLIPS, PHOTOS, canonical_clip, fetch_real_media, media_available
from agra_ros.workload.sources import ClipSource, SourceError, open_source
from agra_ros.workload.trace import ClipPhase, Trace, TraceError


def _write_video(path: Path, n: int, level: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip whose frame i has blue level ``level + 10 i`` (so clip and position can be read back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(n):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[..., 0] = level + 10 * i  # blue in OpenCV's BGR order
        writer.write(image)
    writer.release()
    return path


def _blue(frame) -> int:
    return int(round(float(frame.image[..., 2].mean())))


def _fake_packages(root: Path, broken: frozenset[str] = frozenset()):
    """A stand-in for fetch_deb_package: unpacked folders with the files real_media copies; ``broken`` ones fail."""
    calls: list[str] = []

    def fetch(name: str) -> Path:
        calls.append(name)
        if name in broken:
            raise AssetError(f"cannot fetch Debian package {name}: test says no")
        folder = root / name
        if folder.is_dir():  # unpacked once, like the real cache
            return folder
        sub, photos = PHOTOS[name]
        for file in photos:
            (folder / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / sub / file), np.full((8, 8, 3), 100, np.uint8))
        if name == real_media.VIDEO_PACKAGE:
            for i, clip in enumerate(CLIPS):
                _write_video(folder / sub / f"{clip}.avi", 3, 40 * (i + 1))
        return folder

    return fetch, calls


def test_layout_is_complete_atomic_and_cached(tmp_path: Path) -> None:
    root = tmp_path / "media"
    assert not media_available(root)
    with pytest.raises(AssetError, match="fetch-media"):
        real_media.video_path("vtest", root)
    with pytest.raises(AssetError, match="fetch-media"):
        real_media.photos_dir(root)
    fetch, calls = _fake_packages(tmp_path / "deb")
    assert fetch_real_media(root, fetch) == root
    assert media_available(root)
    assert sorted(p.name for p in (root / "videos").iterdir()) == sorted(f"{c}.avi" for c in CLIPS)
    expected_photos = {f for _, files in PHOTOS.values() for f in files}
    assert {p.name for p in real_media.photos_dir(root).glob("*.jpg")} == expected_photos
    assert real_media.video_path("MEGAMIND.avi", root) == root / "videos" / "Megamind.avi"
    with pytest.raises(AssetError, match="unknown video clip.*vtest"):
        real_media.video_path("cats", root)
    assert len(real_media.describe_media(root)) == len(CLIPS) + 1
    calls.clear()
    fetch_real_media(root, fetch)  # complete: nothing fetched again
    assert calls == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".media-")] == []  # no leftovers


def test_darknet_is_optional_opencv_doc_is_not(tmp_path: Path) -> None:
    fetch, _ = _fake_packages(tmp_path / "deb", broken=frozenset({"darknet"}))
    root = fetch_real_media(tmp_path / "media", fetch)
    assert media_available(root)
    assert {p.name for p in (root / "photos").iterdir()} == set(PHOTOS["opencv-doc"][1])

    fetch, _ = _fake_packages(tmp_path / "deb2", broken=frozenset({"opencv-doc"}))
    with pytest.raises(AssetError, match="opencv-doc"):
        fetch_real_media(tmp_path / "none", fetch)
    assert not (tmp_path / "none").exists()

    fetch, _ = _fake_packages(tmp_path / "deb3")
    folder = fetch(real_media.VIDEO_PACKAGE)
    (folder / PHOTOS["opencv-doc"][0] / "tree.avi").unlink()  # a package whose layout changed
    with pytest.raises(AssetError, match="tree.avi"):
        fetch_real_media(tmp_path / "partial", fetch)
    assert not (tmp_path / "partial").exists()


def test_clip_names_in_traces_are_validated() -> None:
    assert canonical_clip("megamind") == "Megamind" and canonical_clip("tree.avi") == "tree"
    assert canonical_clip("forest") is None
    phase = {"duration_s": 1, "density": 1, "resolution": [64, 48], "target_fps": 5}
    trace = Trace.from_dict({"phases": [{**phase, "clip": "VTEST"}, {**phase, "clip": "/data/run.mp4"}, phase]})
    assert [p.clip for p in trace.phases] == ["vtest", "/data/run.mp4", ""]
    # a phase without a clip is a plain Phase: its fields (hashed by the simulator's workload cache) are unchanged
    assert "clip" not in dataclasses.asdict(trace.phases[2]) and isinstance(trace.phases[0], ClipPhase)
    for bad, message in (("forest", "unknown clip"), (3, "clip must be"), ("", "clip must be")):
        with pytest.raises(TraceError, match=message):
            Trace.from_dict({"phases": [{**phase, "clip": bad}]})
    video = Trace.load("video")
    assert {p.clip for p in video.phases} == set(CLIPS)
    assert len({p.target_fps for p in video.phases}) >= 3


def test_clip_source_loops_and_plays_a_playlist(tmp_path: Path) -> None:
    a = _write_video(tmp_path / "a.avi", 3, 40)
    b = _write_video(tmp_path / "b.avi", 2, 150)
    single = open_source("video", path=str(a))
    assert isinstance(single, ClipSource) and single.playlist == [str(a)]
    assert [_blue(single.read(0.0)) for _ in range(7)] == pytest.approx([40, 50, 60, 40, 50, 60, 40], abs=4)
    # without a trace, a playlist moves to the next clip whenever one ends, and comes back round
    playlist = open_source("video", path=f"{a}, {b}", size=(32, 24))
    frames = [playlist.read(0.0) for _ in range(8)]
    assert [_blue(f) for f in frames] == pytest.approx([40, 50, 60, 150, 160, 40, 50, 60], abs=4)
    assert frames[0].image.shape == (24, 32, 3) and [f.index for f in frames] == list(range(8))
    assert playlist.target_fps(0.0) is None and playlist.phase_at(0.0) is None
    playlist.close()


def test_clip_source_switches_clip_size_and_target_by_phase(tmp_path: Path) -> None:
    a = _write_video(tmp_path / "a.avi", 3, 40)
    b = _write_video(tmp_path / "b.avi", 3, 150)
    phase = {"duration_s": 1, "density": 1, "target_fps": 5}
    trace = Trace.from_dict(
        {
            "phases": [
                {**phase, "name": "p0", "clip": str(a), "resolution": [64, 48]},
                {**phase, "name": "p1", "clip": str(b), "resolution": [48, 32], "target_fps": 20},
                {**phase, "name": "p2", "resolution": [64, 48]},  # names no clip: b keeps playing
                {**phase, "name": "p3", "clip": str(a), "resolution": [64, 48]},
            ]
        }
    )
    source = ClipSource((), trace)
    assert source.follow_trace and source.playlist == [str(a), str(b)]
    first = source.read(0.1)
    assert _blue(first) == pytest.approx(40, abs=4) and first.image.shape == (48, 64, 3)
    assert source.target_fps(0.1) == 5 and source.target_fps(1.5) == 20
    second = source.read(1.2)
    assert _blue(second) == pytest.approx(150, abs=4) and second.image.shape == (32, 48, 3)
    assert source.current == str(b)
    assert _blue(source.read(2.5)) == pytest.approx(160, abs=4)  # p2: b carries on
    assert _blue(source.read(3.5)) == pytest.approx(50, abs=4)  # p3: back to a, where it left off
    assert source.read(4.2).image.shape == (48, 64, 3) and source.current == str(a)  # the trace loops to p0
    # a playlist given explicitly wins over the phases' clips and moves on at every phase change
    listed = ClipSource([str(b), str(a)], trace)
    assert not listed.follow_trace
    assert [_blue(listed.read(t)) for t in (0.1, 1.1, 2.1)] == pytest.approx([150, 40, 160], abs=4)


def test_video_without_media_or_file_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    for path in ("", "vtest", "tree,Megamind"):
        with pytest.raises(SourceError, match="fetch-media"):
            open_source("video", path=path)
    with pytest.raises(SourceError, match="fetch-media"):
        open_source("folder")
    with pytest.raises(SourceError, match="missing.avi"):
        open_source("video", path=str(tmp_path / "missing.avi"))


def test_demo_falls_back_to_the_synthetic_camera_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_media() -> Path:
        raise AssetError("cannot fetch Debian package opencv-doc: `apt-get` is not installed")

    monkeypatch.setattr(demo, "fetch_real_media", no_media)
    with caplog.at_level(logging.WARNING, logger="agra_ros.demo"):
        assert demo.camera_settings("video", None) == {"source": "synthetic", "trace": "default"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "synthetic" in warnings[0].getMessage()
    assert "apt-get" in warnings[0].getMessage()
    assert demo.camera_settings("video", "bench") == {"source": "synthetic", "trace": "bench"}
    assert demo.camera_settings("synthetic", None) == {"source": "synthetic", "trace": "default"}
    monkeypatch.setattr(demo, "fetch_real_media", lambda: Path("/media"))
    assert demo.camera_settings("video", None) == {"source": "video", "trace": "video"}


def test_fetch_media_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fetch-media", "--help"])
    assert exit_.value.code == 0 and "opencv-doc" in capsys.readouterr().out
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def fail(root=None, fetch=None, force=False):
        raise AssetError("cannot fetch Debian package opencv-doc: no network")

    monkeypatch.setattr(real_media, "fetch_real_media", fail)
    assert cli.main(["fetch-media"]) == 1
    assert "no network" in capsys.readouterr().err
    fetch, _ = _fake_packages(tmp_path / "deb")
    monkeypatch.setattr(real_media, "fetch_real_media", lambda force=False: fetch_real_media(None, fetch, force))
    assert cli.main(["fetch-media"]) == 0
    out = capsys.readouterr().out
    assert "vtest.avi" in out and "photos" in out


# ---------------------------------------------------------------------------------------------- the real clips
@pytest.fixture(scope="module")
def real_media_root() -> Path:
    """The fetched media (fetching them if needed, ~100 MB once); skip where they cannot be had."""
    try:
        return fetch_real_media()
    except AssetError as exc:
        pytest.skip(f"real media absent and unfetchable (the demo falls back to synthetic): {exc}")


def test_real_clips_play_loop_and_follow_the_video_trace(real_media_root: Path) -> None:
    vtest = open_source("video", path="vtest")
    frames = [vtest.read(0.0) for _ in range(800)]  # 795 frames, then from the start again
    assert frames[0].image.shape == (576, 768, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].image.std() > 10  # a real picture, not a blank
    np.testing.assert_array_equal(frames[795].image, frames[0].image)
    vtest.close()
    trace = Trace.load("video")
    source = open_source("video", trace=trace)
    t = 0.0
    seen = {}
    for phase in trace.phases:
        frame = source.read(t + 0.1)
        seen[phase.name] = (source.current, frame.image.shape[1::-1], source.target_fps(t + 0.1))
        assert seen[phase.name] == (phase.clip, phase.resolution, phase.target_fps)
        t += phase.duration_s
    assert {clip for clip, _, _ in seen.values()} == set(CLIPS)
    source.close()
