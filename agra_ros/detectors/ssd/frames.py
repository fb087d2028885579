"""Unlabelled frames for distillation and evaluation: the clips split into a trained half and a held-out half, held-out
photos, and a user's own footage (``--footage``: a video, an image folder or a recording folder)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agra_ros.detectors.ssd.network import NATIVE_SIDE


@dataclass
class FrameSplit:
    """Unlabelled frames (RGB uint8, resized to the native side) for training and the two held-out sets."""

    train: np.ndarray
    in_domain: np.ndarray
    out_domain: np.ndarray


def read_video_frames(path: str | Path, side: int = NATIVE_SIDE, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame of a video as (N, side, side, 3) RGB uint8."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    frames, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (side, side), interpolation=cv2.INTER_AREA))
        i += 1
    cap.release()
    if not frames:
        raise ValueError(f"video {path} has no decodable frame")
    return np.stack(frames)


def read_image_folder(path: str | Path, side: int = NATIVE_SIDE) -> np.ndarray:
    """The decodable colour images of a folder (sorted) as (N, side, side, 3) RGB uint8."""
    out = []
    for p in sorted(Path(path).iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
            continue
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < 64:
            continue
        out.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (side, side), interpolation=cv2.INTER_AREA))
    if not out:
        raise ValueError(f"image folder {path} holds no decodable image")
    return np.stack(out)


def read_footage(path: str | Path, side: int = NATIVE_SIDE, max_frames: int = 600) -> np.ndarray:
    """A user's footage (:func:`agra_ros.detectors.footage.read_frames`: video, image folder or recording folder)
    as (N, side, side, 3) RGB uint8; :class:`~agra_ros.detectors.footage.FootageError` names what is wrong."""
    from agra_ros.detectors.footage import read_frames  # local: opencv's video reading and the bag reader

    frames, _ = read_frames(path, every=1, max_frames=max_frames)
    return np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in frames])


def split_frames(
    videos: Sequence[str | Path],
    photo_dirs: Sequence[str | Path],
    train_share: float = 0.5,
    footage: Sequence[np.ndarray] = (),
) -> FrameSplit:
    """In-domain held-out = the later ``1 - train_share`` of every video and of every ``footage`` (frames from
    :func:`read_footage`; never trained on); out-of-domain = photos."""
    train, held = [], []
    clips = [read_video_frames(v) for v in videos] + list(footage)
    for frames in clips:
        cut = int(len(frames) * train_share)
        train.append(frames[:cut])
        held.append(frames[cut:])
    photos = [read_image_folder(d) for d in photo_dirs]
    empty = np.zeros((0, NATIVE_SIDE, NATIVE_SIDE, 3), np.uint8)
    return FrameSplit(
        np.concatenate(train) if train else empty,
        np.concatenate(held) if held else empty,
        np.concatenate(photos) if photos else empty,
    )
