"""Real camera media: three video clips and a few photos from Debian packages, in one stable layout in the cache.

Debian's ``opencv-doc`` package carries OpenCV's sample data: ``vtest.avi`` (pedestrians walking through a hall,
768x576, 795 frames), ``Megamind.avi`` (an animated film scene, 720x528, 270 frames) and ``tree.avi`` (a tree in
the wind, 320x240, 444 frames), plus photos. Debian's ``darknet`` package carries the photos YOLO's examples use
(a dog, a person with a horse, horses, giraffes, ...). :func:`fetch_real_media` fetches both packages with
:func:`agra_ros.assets.fetch_deb_package` (``apt-get download`` + ``dpkg-deb -x``, nothing installed) and copies the
files the project uses into ``$XDG_CACHE_HOME/agra_ros/media`` (``~/.cache/agra_ros/media`` by default)::

    media/videos/{vtest,Megamind,tree}.avi
    media/photos/*.jpg

The layout is written into a temporary folder and renamed into place when complete, so it is either all there or
absent. ``agra-ros fetch-media`` runs the fetch; ``./agra.sh`` set-up runs it once. Core code: no rclpy, no cv2.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from agra_ros.assets import AssetError, _install_dir, cache_dir, fetch_deb_package

_LOG = logging.getLogger(__name__)

VIDEO_PACKAGE = "opencv-doc"
"""Debian package with the video clips (required: without it there is no real video)."""
_OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
_DARKNET_DATA = "usr/share/darknet/data"

CLIPS: dict[str, str] = {
    "vtest": "pedestrians walking through a hall (768x576, 795 frames)",
    "Megamind": "animated film scene, one or two characters (720x528, 270 frames)",
    "tree": "a tree moving in the wind, almost nothing to detect (320x240, 444 frames)",
}
"""Clip name -> what it shows. Files are ``videos/<name>.avi``; names match case-insensitively."""

DEFAULT_CLIP = "vtest"

PHOTOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opencv-doc": (
        _OPENCV_DATA,
        ("messi5.jpg", "fruits.jpg", "apple.jpg", "orange.jpg", "baboon.jpg", "butterfly.jpg", "home.jpg"),
    ),
    "darknet": (
        _DARKNET_DATA,
        ("dog.jpg", "person.jpg", "horses.jpg", "giraffe.jpg", "kite.jpg", "eagle.jpg", "scream.jpg"),
    ),
}
"""Debian package -> (its data folder, the photos copied from it). darknet is optional (opencv-doc suffices)."""


def media_dir() -> Path:
    """Root of the media layout: ``$XDG_CACHE_HOME/agra_ros/media``."""
    return cache_dir("media")


def canonical_clip(name: str) -> str | None:
    """The clip name for ``name`` (case-insensitive, ``.avi`` optional), or None if it names no known clip."""
    stem = name[:-4] if name.lower().endswith(".avi") else name
    return next((c for c in CLIPS if c.lower() == stem.lower()), None)


def media_available(root: Path | None = None) -> bool:
    """True when the layout is complete: every clip and at least one photo are in place."""
    root = root or media_dir()
    return (
        (root / ".complete").is_file()
        and all((root / "videos" / f"{c}.avi").is_file() for c in CLIPS)
        and any((root / "photos").glob("*.jpg"))
    )


def _require_media(root: Path) -> None:
    if not media_available(root):
        raise AssetError(
            f"the real media are not in {root}: run `agra-ros fetch-media` (it fetches the Debian packages "
            f"{' and '.join(PHOTOS)} with apt-get download; nothing is installed)"
        )


def video_path(name: str, root: Path | None = None) -> Path:
    """The cached file of clip ``name`` (vtest, Megamind, tree); AssetError if unknown or not fetched yet."""
    clip = canonical_clip(name)
    if clip is None:
        raise AssetError(f"unknown video clip {name!r}; known clips: {', '.join(CLIPS)}")
    root = root or media_dir()
    _require_media(root)
    return root / "videos" / f"{clip}.avi"


def photos_dir(root: Path | None = None) -> Path:
    """The folder of cached photos; AssetError if not fetched yet."""
    root = root or media_dir()
    _require_media(root)
    return root / "photos"


def fetch_real_media(
    root: Path | None = None, fetch: Callable[[str], Path] = fetch_deb_package, force: bool = False
) -> Path:
    """Fetch the Debian packages (cached) and write the media layout under ``root`` (default :func:`media_dir`).

    Returns at once when the layout is complete (unless ``force``). opencv-doc is required (AssetError saying why
    when it cannot be fetched or lacks a file); darknet only adds photos, so its failure is a warning.
    """
    root = root or media_dir()
    if media_available(root) and not force:
        return root
    packages: dict[str, Path] = {VIDEO_PACKAGE: fetch(VIDEO_PACKAGE)}
    for name in PHOTOS:
        if name not in packages:
            try:
                packages[name] = fetch(name)
            except AssetError as exc:
                _LOG.warning("no photos from %s (%s); the other photos and the videos are enough", name, exc)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".media-") as work:
        layout = Path(work, "media")
        videos, photos = layout / "videos", layout / "photos"
        videos.mkdir(parents=True)
        photos.mkdir()
        data = packages[VIDEO_PACKAGE] / _OPENCV_DATA
        for clip in CLIPS:
            _copy(data / f"{clip}.avi", videos / f"{clip}.avi", VIDEO_PACKAGE)
        for name, folder in packages.items():
            sub, files = PHOTOS[name]
            for file in files:
                _copy(folder / sub / file, photos / file, name)
        (layout / ".complete").write_text("".join(f"{name}\n" for name in packages))
        return _install_dir(layout, root)


def _copy(src: Path, dest: Path, package: str) -> None:
    if not src.is_file():
        raise AssetError(f"Debian package {package} has no {src.name} (looked for {src}); its layout changed")
    shutil.copyfile(src, dest)


def describe_media(root: Path | None = None) -> list[str]:
    """One line per clip (file size, what it shows) and one for the photos."""
    root = root or media_dir()
    lines = []
    for clip, about in CLIPS.items():
        size_mb = (root / "videos" / f"{clip}.avi").stat().st_size / 1e6
        lines.append(f"videos/{clip}.avi ({size_mb:.1f} MB): {about}")
    photos = sorted(p.name for p in (root / "photos").glob("*.jpg"))
    lines.append(f"photos/ ({len(photos)}): {', '.join(photos)}")
    return lines


__all__ = [
    "CLIPS",
    "DEFAULT_CLIP",
    "canonical_clip",
    "describe_media",
    "fetch_real_media",
    "media_available",
    "media_dir",
    "photos_dir",
    "video_path",
]
