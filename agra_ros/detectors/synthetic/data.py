"""Detector data: synthetic scene frames cached at every input resolution, CenterNet targets, augmentation.

Seeds: training frames come from ``make_dataset(train_seed(run_seed, chunk), ...)`` and validation frames from
``make_dataset(VAL_SEED + i, ...)``. :func:`train_seed` stays below ``VAL_SEED`` for any run seed below 10 000 and
chunk below 100 000, so the two sets are disjoint by construction (checked in :func:`train_seed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agra_ros.detectors.interface import resize_image
from agra_ros.detectors.synthetic.network import PIXEL_MEAN, PIXEL_STD, log_size_target
from agra_ros.workload.scene import make_dataset
from agra_ros.workload.scene_types import Frame, SceneParams

VAL_SEED = 2_000_000_000
"""First seed of the held-out validation set (training seeds are always below it)."""


def train_seed(run_seed: int, chunk: int) -> int:
    """Seed of training chunk ``chunk`` of a run seeded ``run_seed`` (never overlaps the validation seeds)."""
    if not 0 <= run_seed < 10_000 or not 0 <= chunk < 100_000:
        raise ValueError(f"run seed must be in 0..9999 and chunk in 0..99999, got {run_seed}, {chunk}")
    s = 1_000 + run_seed * 100_000 + chunk
    assert s < VAL_SEED
    return s


def validation_frames(n: int, params: SceneParams | None = None) -> list[Frame]:
    """The held-out validation set: ``n`` frames from seeds disjoint from any training run."""
    return make_dataset(VAL_SEED, n, params)


@dataclass
class CachedFrames:
    """Frames resized once per input side, with boxes in each side's pixel coordinates."""

    images: dict[int, np.ndarray]
    """side -> (N, side, side, 3) uint8."""
    boxes: list[np.ndarray]
    """Per frame (n_i, 4) float32 xyxy, normalised to [0, 1] of width/height."""
    labels: list[np.ndarray]
    """Per frame (n_i,) int64."""

    @classmethod
    def from_frames(cls, frames: Sequence[Frame], sides: Sequence[int]) -> CachedFrames:
        images = {s: np.stack([resize_image(f.image, s) for f in frames]) for s in sides}
        boxes = []
        for f in frames:
            h, w = f.image.shape[:2]
            boxes.append((f.boxes / np.array([w, h, w, h], np.float32)).astype(np.float32))
        return cls(images, boxes, [f.labels.astype(np.int64) for f in frames])

    def __len__(self) -> int:
        return len(self.boxes)

    def replace(self, start: int, other: CachedFrames) -> None:
        """Overwrite frames [start, start + len(other)) (the training pool's refresh)."""
        n = len(other)
        for s, arr in self.images.items():
            arr[start : start + n] = other.images[s]
        self.boxes[start : start + n] = other.boxes
        self.labels[start : start + n] = other.labels


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> normalised (B, 3, H, W) float, as AgraDetector.preprocess does."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return x.mul_(1.0 / (255.0 * PIXEL_STD)).sub_(PIXEL_MEAN / PIXEL_STD)


def augment(
    images: np.ndarray, boxes: list[np.ndarray], rng: np.random.Generator
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Random horizontal flip and brightness/contrast jitter; returns the normalised batch and flipped boxes."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    out_boxes = []
    for i in range(x.shape[0]):
        b = boxes[i].copy()
        if rng.random() < 0.5:
            x[i] = x[i].flip(-1)
            b[:, [0, 2]] = 1.0 - b[:, [2, 0]]
        out_boxes.append(b)
    gain = torch.from_numpy(rng.uniform(0.75, 1.25, (x.shape[0], 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-20, 20, (x.shape[0], 1, 1, 1)).astype(np.float32))
    x = (x * gain + bias).clamp_(0, 255)
    return x.mul_(1.0 / (255.0 * PIXEL_STD)).sub_(PIXEL_MEAN / PIXEL_STD), out_boxes


@dataclass
class Targets:
    """CenterNet targets at the output grid of one batch."""

    heat: torch.Tensor
    """(B, C, Ho, Wo) gaussian peaks, exactly 1 at object centres."""
    index: torch.Tensor
    """(M, 3) long: batch, row, column of each object's centre cell."""
    reg: torch.Tensor
    """(M, 4): log width, log height (cells), centre offset x, y (cells)."""


def build_targets(
    boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], side: int, stride: int, num_classes: int
) -> Targets:
    """Gaussian centre heatmaps (sigma = box side / 6, at least 0.5 cell) and size/offset regression targets."""
    g = side // stride
    heat = torch.zeros(len(boxes), num_classes, g, g)
    idx_rows, reg_rows = [], []
    ys = torch.arange(g, dtype=torch.float32).view(1, g, 1)
    xs = torch.arange(g, dtype=torch.float32).view(1, 1, g)
    for b, (bx, lb) in enumerate(zip(boxes, labels)):
        if len(bx) == 0:
            continue
        t = torch.from_numpy(bx) * side  # input pixels
        w = (t[:, 2] - t[:, 0]).clamp(min=1.0)
        h = (t[:, 3] - t[:, 1]).clamp(min=1.0)
        cx = (t[:, 0] + t[:, 2]) / 2 / stride
        cy = (t[:, 1] + t[:, 3]) / 2 / stride
        ci = cx.floor().clamp(0, g - 1)
        cj = cy.floor().clamp(0, g - 1)
        sx = (w / stride / 6).clamp(min=0.5).view(-1, 1, 1)
        sy = (h / stride / 6).clamp(min=0.5).view(-1, 1, 1)
        gauss = torch.exp(
            -((xs - ci.view(-1, 1, 1)) ** 2) / (2 * sx**2) - ((ys - cj.view(-1, 1, 1)) ** 2) / (2 * sy**2)
        )
        lab = torch.from_numpy(lb)
        for c in lab.unique().tolist():
            heat[b, c] = torch.maximum(heat[b, c], gauss[lab == c].amax(0))
        idx_rows.append(torch.stack([torch.full_like(ci, b), cj, ci], 1).long())
        reg_rows.append(torch.stack([log_size_target(w, stride), log_size_target(h, stride), cx - ci, cy - cj], 1))
    index = torch.cat(idx_rows) if idx_rows else torch.zeros(0, 3, dtype=torch.long)
    reg = torch.cat(reg_rows) if reg_rows else torch.zeros(0, 4)
    return Targets(heat, index, reg)


__all__ = [
    "CachedFrames",
    "Targets",
    "VAL_SEED",
    "augment",
    "build_targets",
    "to_tensor",
    "train_seed",
    "validation_frames",
]
