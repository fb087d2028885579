"""Agreement of two detection sets: the perception runtime's shadow accuracy proxy.

The active configuration's detections are scored against the full configuration's (F1 of greedy, class-aware
matches at IoU >= 0.5). One definition, so the proxy the policy is fed at run time and the calibration that maps
it onto the simulator's mAP scale (detectors/ssd/calibrate.py) measure the same thing.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["DetectionsLike", "box_iou", "detection_agreement"]


class DetectionsLike(Protocol):
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def detection_agreement(active: DetectionsLike, reference: DetectionsLike, iou_threshold: float = 0.5) -> float:
    """F1 of greedy, class-aware, score-ordered matches at IoU >= ``iou_threshold`` (1.0 when both are empty).

    The reference (the full configuration) plays the ground truth: precision = matched / active detections,
    recall = matched / reference detections.
    """
    n_a, n_r = len(active.scores), len(reference.scores)
    if n_a == 0 and n_r == 0:
        return 1.0
    if n_a == 0 or n_r == 0:
        return 0.0
    iou = box_iou(active.boxes, reference.boxes)
    iou[np.asarray(active.labels)[:, None] != np.asarray(reference.labels)[None, :]] = 0.0
    taken = np.zeros(n_r, dtype=bool)
    matched = 0
    for i in np.argsort(-np.asarray(active.scores), kind="stable"):
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            taken[j] = True
            matched += 1
    return 2.0 * matched / (n_a + n_r)
