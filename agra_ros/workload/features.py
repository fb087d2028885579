"""The workload profile W: what the camera sees, as the granularity policy network reads it, from perception's own work.

W is a compact embedding of the frame taken from the detector's own backbone plus four scalars (docs/architecture.md):
resolution, objects in the last frame, mean detection confidence and motion. Perception already runs the backbone
on every keyframe, so W costs nothing extra: the detector pools a few of its block outputs over space (each keeps its
full channel count at every width, so the vector has one shape whatever the configuration), and
:func:`workload_embedding` projects that pooled vector onto :data:`EMBEDDING_DIM` numbers with a fixed, seeded random
matrix (a Johnson-Lindenstrauss projection: distances between scenes survive, the message stays small). Perception
publishes it in ``PerceptionFeedback.workload_embedding``; the policy node builds W from the feedback alone and
never sees a raw image. The simulator's W comes from the same function on the same detector (``agra_ros.sim.
workload_cache``), so both sides mean the same thing.

Motion has one definition too, :func:`frame_motion`: perception measures it per frame (the tracker's scene-cut
test uses the same number), the simulator measures it on rendered clips.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

EMBEDDING_DIM = 32
"""Length of the frame embedding (``PerceptionFeedback.workload_embedding``)."""
SCALAR_NAMES: tuple[str, ...] = ("resolution_mpix", "objects", "mean_confidence", "motion")
"""Scalars appended to the embedding, in ``WorkloadFeatures.vector()`` order."""
WORKLOAD_DIM = EMBEDDING_DIM + len(SCALAR_NAMES)
"""Length of ``WorkloadFeatures.vector()``: the W part of the policy's observation."""
OBJECTS_SCALE = 40.0
"""Object counts are divided by this in ``vector()`` (the scene's usual maximum), so every entry is O(1)."""
MOTION_SCALE = 16.0
"""Motion (grey levels, 0-255) is divided by this in ``vector()``: consecutive frames of the package's clips measure
2 (vtest) to 27 (Megamind at its cuts), so the entry is O(1)."""
EMBEDDING_BOUND = 8.0
"""Embedding entries are clipped to +-this (the observation's W bound is 10; a larger value is a broken input)."""
PROJECTION_SEED = 20260
"""Seed of the projection matrix (numpy's PCG64: the same matrix on every machine)."""
MOTION_THUMBNAIL = 32
"""Side of the grey thumbnails :func:`frame_motion` compares."""


@functools.lru_cache(maxsize=8)
def _projection(n_in: int) -> np.ndarray:
    """(EMBEDDING_DIM, n_in) float32 Gaussian matrix scaled by 1/sqrt(n_in), fixed by :data:`PROJECTION_SEED`."""
    rng = np.random.default_rng(PROJECTION_SEED + n_in)
    return (rng.standard_normal((EMBEDDING_DIM, n_in)) / math.sqrt(n_in)).astype(np.float32)


def workload_embedding(pooled: np.ndarray) -> np.ndarray:
    """(EMBEDDING_DIM,) float32 from a detector's pooled block outputs (any length, finite), clipped to the bound.

    Raises ValueError on an empty or non-finite vector (a detector that did not run, or diverged)."""
    p = np.asarray(pooled, dtype=np.float32).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)):
        raise ValueError(f"pooled backbone features must be a non-empty finite vector, got {p.size} values")
    return np.clip(_projection(p.size) @ p, -EMBEDDING_BOUND, EMBEDDING_BOUND).astype(np.float32)


def check_embedding(values) -> np.ndarray:
    """The embedding of a feedback message as float32, or ValueError: missing, wrong length or non-finite."""
    e = np.asarray(values, dtype=np.float32).ravel()
    if e.shape != (EMBEDDING_DIM,):
        raise ValueError(f"workload_embedding has {e.size} values, expected {EMBEDDING_DIM}")
    if not np.all(np.isfinite(e)):
        raise ValueError("workload_embedding has NaN/inf values")
    return np.clip(e, -EMBEDDING_BOUND, EMBEDDING_BOUND)


def as_grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def motion_thumbnail(image: np.ndarray) -> np.ndarray:
    """The (32, 32) float32 grey thumbnail :func:`frame_motion` compares (area interpolation)."""
    side = MOTION_THUMBNAIL
    return cv2.resize(as_grey(image), (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)


def thumbnail_motion(previous: np.ndarray, current: np.ndarray) -> float:
    """:func:`frame_motion` of two :func:`motion_thumbnail` results (a stream keeps the previous thumbnail)."""
    return float(np.mean(np.abs(previous - current)))


def frame_motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two frames' 32x32 grey thumbnails, 0-255: W's cheap motion feature (about
    0.1 ms) and the tracker's scene-cut test."""
    return thumbnail_motion(motion_thumbnail(previous), motion_thumbnail(current))


@dataclass
class WorkloadFeatures:
    """The workload profile W of one frame."""

    embedding: np.ndarray
    """(EMBEDDING_DIM,) float32: what the scene looks like to the detector's backbone."""
    resolution_mpix: float
    """Image size in megapixels (width * height / 1e6)."""
    objects: int
    """Objects detected in the last frame."""
    mean_confidence: float
    """Mean detection confidence in the last frame, 0..1 (0 when nothing was detected)."""
    motion: float
    """:func:`frame_motion` of this frame against the previous one, 0-255 grey levels (0 at first)."""

    def vector(self) -> np.ndarray:
        """(WORKLOAD_DIM,) float32: embedding, then the scalars in SCALAR_NAMES order (objects / OBJECTS_SCALE,
        motion / MOTION_SCALE)."""
        scalars = np.array(
            [
                self.resolution_mpix,
                self.objects / OBJECTS_SCALE,
                self.mean_confidence,
                min(self.motion / MOTION_SCALE, EMBEDDING_BOUND),
            ],
            np.float32,
        )
        return np.concatenate([np.asarray(self.embedding, np.float32).ravel(), scalars])
