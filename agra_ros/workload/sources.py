"""Frame sources for the camera: the synthetic scene generator, real video clips, or a folder of images.

All sources share one small protocol, ``read(t) -> Frame | None`` (``t``: seconds since the stream started), so the
camera node does not care where frames come from. Only the synthetic source has ground truth; the others return
frames with empty boxes. Images are RGB uint8. A video or folder that cannot be read fails in the constructor with a
``SourceError`` that says why, so a node reports it once at start-up instead of crash-looping. The real clips
(vtest, Megamind, tree) and photos come from :mod:`agra_ros.workload.real_media` (``agra-ros fetch-media``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from agra_ros.assets import AssetError
from agra_ros.workload import real_media
from agra_ros.workload.scene import SceneGenerator
from agra_ros.workload.scene_types import Frame, SceneParams
from agra_ros.workload.trace import Phase, Trace

_LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
"""Files an ImageFolderSource picks up (case-insensitive)."""


class SourceError(ValueError):
    """A frame source cannot be opened or read."""


@runtime_checkable
class FrameSource(Protocol):
    """What the camera node needs from a source."""

    def read(self, t: float) -> Frame | None:
        """The next frame at stream time ``t`` seconds; None when a non-looping source has ended."""
        ...

    def close(self) -> None:
        """Release files and devices."""
        ...


def _empty_frame(image_bgr: np.ndarray, index: int, size: tuple[int, int] | None) -> Frame:
    """An RGB frame without ground truth, resized to ``size`` = (width, height) if given."""
    if image_bgr.ndim == 2:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    elif image_bgr.shape[2] == 4:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)
    return Frame(
        image=np.ascontiguousarray(image),
        boxes=np.zeros((0, 4), np.float32),
        labels=np.zeros((0,), np.int64),
        index=index,
    )


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or not all(int(v) == v and 1 <= v <= 8192 for v in size):
        raise SourceError(f"size must be (width, height) with sides in 1..8192, got {size!r}")
    return int(size[0]), int(size[1])


class _Traced:
    """The trace side of a source: the phase, and its target FPS, at stream time ``t``."""

    trace: Trace | None

    def phase_at(self, t: float) -> Phase | None:
        """The trace phase at ``t``, or None without a trace."""
        return self.trace.phase_at(t) if self.trace is not None else None

    def target_fps(self, t: float) -> float | None:
        """The performance target of the phase at ``t``, or None without a trace."""
        phase = self.phase_at(t)
        return phase.target_fps if phase is not None else None


class SyntheticSource(_Traced):
    """Video-mode synthetic scenes; with a trace, the scene follows the phase active at each ``read(t)``.

    Without a trace the scene uses ``params`` throughout. With one, each phase's density, resolution and scene
    overrides are applied on top of ``params`` when the phase starts (settings a phase does not name fall back to
    ``params``), and ``target_fps(t)`` gives the phase's performance target.
    """

    def __init__(self, seed: int, params: SceneParams | None = None, trace: Trace | str | None = None) -> None:
        self.base_params = dataclasses.replace(params) if params is not None else SceneParams()
        self.trace = Trace.load(trace) if isinstance(trace, str) else trace
        self.generator = SceneGenerator(seed, self.base_params, video=True)
        self._phase_index: int | None = None
        if self.trace is not None:
            self._enter_phase(0.0)

    def set_params(self, **changes: object) -> None:
        """Change the base scene settings (e.g. resolution from a node parameter); a trace phase still overrides."""
        self.base_params = dataclasses.replace(self.base_params, **changes)  # validates
        self._phase_index = None  # re-apply the current phase on top of the new base at the next read
        self.generator.set_params(**changes)

    def read(self, t: float) -> Frame:
        if self.trace is not None:
            self._enter_phase(t)
        return self.generator.next_frame()

    def close(self) -> None:
        """Nothing to release."""

    def _enter_phase(self, t: float) -> None:
        assert self.trace is not None
        index = self.trace.phase_index_at(t)
        if index == self._phase_index:
            return
        phase = self.trace.phases[index]
        wanted = dataclasses.replace(self.base_params, **phase.scene_changes())
        current = self.generator.params
        changes = {
            f.name: getattr(wanted, f.name)
            for f in dataclasses.fields(SceneParams)
            if getattr(wanted, f.name) != getattr(current, f.name)
        }
        if changes:
            self.generator.set_params(**changes)
        self._phase_index = index


class VideoFileSource:
    """Frames of a video file in order (OpenCV decoding), looping at the end unless ``loop=False``."""

    def __init__(self, path: str | Path, loop: bool = True, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self.size = _check_size(size)
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist or is not a file")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video {self.path}: OpenCV found no decoder for it")
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise SourceError(f"video {self.path} opened but no frame could be decoded (empty or corrupt file)")
        self._pending: np.ndarray | None = first  # checked in the constructor, handed out by the first read
        self._index = 0
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = fps if fps > 0 else None
        """The file's nominal frame rate, if it declares one."""

    def read(self, t: float) -> Frame | None:
        image = self._pending
        self._pending = None
        if image is None:
            ok, image = self._capture.read()
            if not ok:
                if not self.loop:
                    return None
                self.rewind()
                ok, image = self._capture.read()
                if not ok:
                    raise SourceError(f"video {self.path} could not be rewound to loop")
        frame = _empty_frame(image, self._index, self.size)
        self._index += 1
        return frame

    def rewind(self) -> None:
        """Play from the first frame again (the next ``read`` returns it)."""
        self._pending = None
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def close(self) -> None:
        self._capture.release()


def resolve_clip(name: str | Path) -> Path:
    """The file of a clip name (vtest, Megamind, tree: the fetched copy) or a video path as given."""
    if isinstance(name, str) and real_media.canonical_clip(name) is not None:
        try:
            return real_media.video_path(name)
        except AssetError as exc:
            raise SourceError(str(exc)) from None
    return Path(name)


class ClipSource(_Traced):
    """Real video clips played in order, looping; with a trace, its phases set the target FPS, size and clip.

    ``clips`` is a playlist of clip names (:data:`agra_ros.workload.real_media.CLIPS`) or video files. Empty: the
    clips the trace's phases name (a phase naming a clip switches to it, one naming none keeps the clip playing),
    starting with the first one named, or :data:`~agra_ros.workload.real_media.DEFAULT_CLIP`. A playlist of several
    clips moves to the next clip at every phase change (with a trace) or whenever a clip ends (without one); each
    clip carries on where it left off. With a trace, frames are resized to the phase's resolution; without one, to
    ``size`` if given. Every clip is opened in the constructor, so a missing one is a start-up error.
    """

    def __init__(
        self, clips: Sequence[str | Path] = (), trace: Trace | str | None = None, size: tuple[int, int] | None = None
    ) -> None:
        self.trace = Trace.load(trace) if isinstance(trace, str) else trace
        self.size = _check_size(size)
        self.follow_trace = not clips
        """True when the trace's phases choose the clip (no playlist given)."""
        if self.follow_trace:
            named = [p.clip for p in self.trace.phases if p.clip] if self.trace is not None else []
            clips = list(dict.fromkeys(named)) or [real_media.DEFAULT_CLIP]
        self.playlist = [str(c) for c in clips]
        self._videos: dict[str, VideoFileSource] = {}
        try:
            for clip in self.playlist:
                if clip not in self._videos:
                    self._videos[clip] = VideoFileSource(resolve_clip(clip), loop=False)
        except SourceError:
            self.close()
            raise
        self._cursor = 0
        self.current = self.playlist[0]
        """The clip playing now."""
        self._phase_index: int | None = None
        self._index = 0

    def read(self, t: float) -> Frame:
        size = self.size
        if self.trace is not None:
            size = self._enter_phase(t).resolution
        video = self._videos[self.current]
        frame = video.read(t)
        if frame is None:  # the clip ended: rewind it, and without a trace a playlist moves on
            video.rewind()
            if self.trace is None:
                self._advance()
            video = self._videos[self.current]
            frame = video.read(t)
            if frame is None:
                raise SourceError(f"video {video.path} could not be rewound to loop")
        if size is not None and frame.image.shape[1::-1] != tuple(size):
            frame.image = cv2.resize(frame.image, tuple(size), interpolation=cv2.INTER_AREA)
        frame.index = self._index
        self._index += 1
        return frame

    def close(self) -> None:
        for video in self._videos.values():
            video.close()

    def _advance(self) -> None:
        self._cursor = (self._cursor + 1) % len(self.playlist)
        self.current = self.playlist[self._cursor]

    def _enter_phase(self, t: float) -> Phase:
        assert self.trace is not None
        index = self.trace.phase_index_at(t)
        phase = self.trace.phases[index]
        if index != self._phase_index:
            if self.follow_trace:
                self.current = phase.clip or self.current
            elif self._phase_index is not None:
                self._advance()
            self._phase_index = index
        return phase


class ImageFolderSource:
    """The images of a folder in sorted file-name order, looping unless ``loop=False``.

    Images that fail to decode later on are skipped with a warning; if none of a full pass decodes, SourceError.
    """

    def __init__(self, path: str | Path, loop: bool = True, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self.size = _check_size(size)
        if not self.path.is_dir():
            raise SourceError(f"image folder {self.path} does not exist or is not a directory")
        self.files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"image folder {self.path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        if cv2.imread(str(self.files[0]), cv2.IMREAD_UNCHANGED) is None:
            raise SourceError(f"image folder {self.path}: first image {self.files[0].name} cannot be decoded")
        self._cursor = 0
        self._index = 0

    def read(self, t: float) -> Frame | None:
        for _ in range(len(self.files)):
            if self._cursor >= len(self.files):
                if not self.loop:
                    return None
                self._cursor = 0
            file = self.files[self._cursor]
            self._cursor += 1
            image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            if image is None:
                _LOG.warning("skipping unreadable image %s", file)
                continue
            if image.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bit
                image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
            frame = _empty_frame(image, self._index, self.size)
            self._index += 1
            return frame
        if not self.loop and self._cursor >= len(self.files):
            return None
        raise SourceError(f"image folder {self.path}: no image could be decoded")

    def close(self) -> None:
        """Nothing held open between reads."""


def camera_fallback(kind: str, path: str, trace: str) -> tuple[str, str, str | None]:
    """(source, trace, why) a camera should run: ``video`` with no clip named and no fetched media falls back to
    the synthetic scene (trace ``video`` becoming ``default``), with the reason to log once; anything else as
    given, with ``why`` None. One rule for the camera node and the demo, so the default camera works everywhere."""
    if kind != "video" or str(path).strip() or real_media.media_available():
        return kind, trace, None
    why = "no real video fetched (agra-ros fetch-media)"
    return "synthetic", ("default" if trace in ("", "video") else trace), why


def open_source(
    kind: str,
    seed: int = 0,
    path: str | Path = "",
    params: SceneParams | None = None,
    trace: Trace | str | None = None,
    size: tuple[int, int] | None = None,
) -> SyntheticSource | ClipSource | ImageFolderSource:
    """The source the camera's ``source`` parameter names: ``synthetic`` | ``video`` | ``folder``.

    ``video``: ``path`` is a clip name, a video file, or a comma-separated playlist of them; empty: the clips the
    trace names (:class:`ClipSource`). ``folder``: ``path`` is an image folder; empty: the fetched photos.
    """
    if kind == "synthetic":
        return SyntheticSource(seed, params, trace)
    if kind == "video":
        return ClipSource([c.strip() for c in str(path).split(",") if c.strip()], trace, size)
    if kind == "folder":
        if not str(path):
            try:
                path = real_media.photos_dir()
            except AssetError as exc:
                raise SourceError(str(exc)) from None
        return ImageFolderSource(path, size=size)
    raise SourceError(f"unknown source kind {kind!r}; use synthetic, video or folder")
