"""What every registered detector shares: its detections type, its weights error and its image input checks.

One place for both networks (the synthetic test double and the real SSD), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from agra_ros.workload.features import workload_embedding


class WeightsError(ValueError):
    """Detector weights that are missing, corrupt, or do not fit this code's architecture."""


@dataclass
class Detections:
    """Detections of one image, in the original image's pixel coordinates."""

    boxes: np.ndarray
    """(N, 4) float32 xyxy."""
    scores: np.ndarray
    """(N,) float32 in [0, 1]."""
    labels: np.ndarray
    """(N,) int64 class indices into ``AgraDetector.class_names``."""
    embedding: np.ndarray | None = None
    """(EMBEDDING_DIM,) float32 workload embedding of the image from the detector's own backbone
    (:func:`agra_ros.workload.features.workload_embedding`), None where the detector did not compute one."""

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def pooled_features(tensors: Sequence[torch.Tensor]) -> np.ndarray:
    """(B, sum of channels) float32: each NCHW tensor averaged over space, concatenated: what a detector hands to
    :func:`agra_ros.workload.features.workload_embedding` (a few microseconds; no extra network work)."""
    with torch.no_grad():
        return torch.cat([t.float().mean(dim=(2, 3)) for t in tensors], dim=1).cpu().numpy()


def with_embeddings(dets: list[Detections], pooled: np.ndarray) -> list[Detections]:
    """Attach each image's workload embedding (from its row of ``pooled``) to its detections."""
    for d, row in zip(dets, pooled):
        d.embedding = workload_embedding(row)
    return dets


def as_image_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        batch = [images] if images.ndim == 3 else list(images)
    else:
        batch = list(images)
    if not batch:
        raise ValueError("no images given")
    for im in batch:
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            got = (getattr(im, "shape", None), getattr(im, "dtype", type(im)))
            raise ValueError(f"expected uint8 RGB images of shape (H, W, 3), got {got}")
        if im.shape[0] < 1 or im.shape[1] < 1:
            raise ValueError(f"empty image of shape {im.shape}")
    return batch


def resize_image(image: np.ndarray, side: int) -> np.ndarray:
    """Resize to side x side (area interpolation when shrinking: keeps small objects visible)."""
    if image.shape[0] == side and image.shape[1] == side:
        return np.ascontiguousarray(image)
    shrink = image.shape[0] > side and image.shape[1] > side
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
