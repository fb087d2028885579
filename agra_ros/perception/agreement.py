"""Agreement of two detection sets: the package's accuracy measure, per frame (the perception runtime's shadow
accuracy proxy) and its parts.

The package's accuracy measure is the *confident agreement* with the full configuration (issue 21): the reference
is the full configuration's detections with score >= :data:`CONFIDENT_REFERENCE_SCORE`, the candidate's detections
down to :data:`CONFIDENT_CANDIDATE_SCORE` are ranked by score, and the figure is AP@0.5. Over a set of frames it is
torchmetrics' mAP@0.5 (:func:`agra_ros.detectors.pseudo_eval.confident_agreement`); on one frame it is
:func:`confident_frame_agreement`, the same definition computed here (pycocotools' greedy, class-aware,
score-ordered matching at IoU 0.5 and torchmetrics' 101 recall points; equal to torchmetrics' map_50 of that one
frame to float precision, test/test_agreement.py). A torchmetrics call per shadow frame cost 20-36 ms here, this
one ~0.6 ms (2 loaded cores, ~50 candidate boxes). One definition, so the proxy the policy is fed at run time, the
calibration that maps it onto the accuracy table's scale (detectors/ssd/calibrate.py) and the tables themselves
measure the same thing.

The perception runtime detects down to ``min(score_threshold, 0.1)`` on a shadow frame only and publishes the cut
at ``score_threshold`` (the same boxes a run at the threshold gives: NMS never lets a weaker box remove a stronger
one); the lower threshold cost ~0.2 ms of decoding on the SSD. A tracked frame is scored on the boxes the tracker
follows, the published ones: following the weaker boxes too cost 15-30 ms a frame on the package's clips (~48
boxes >= 0.1 per frame against ~9 >= 0.3), against 1.5-10 ms.

:func:`detection_agreement` (F1 of matches at one threshold) is the earlier shadow proxy, kept for tests that score
detections against ground truth.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = [
    "CONFIDENT_CANDIDATE_SCORE",
    "CONFIDENT_REFERENCE_SCORE",
    "SHADOW_METRIC",
    "Cut",
    "DetectionsLike",
    "box_iou",
    "confident_frame_agreement",
    "cut",
    "detection_agreement",
    "frame_ap",
]

CONFIDENT_REFERENCE_SCORE = 0.5
"""Score at which the full configuration's detections are the reference of the confident agreement."""
CONFIDENT_CANDIDATE_SCORE = 0.1
"""Lowest score of the candidate's detections that the confident agreement ranks."""
SHADOW_METRIC = "confident_frame_ap"
"""The name of what the shadow agreement is (:func:`confident_frame_agreement`), stored in the calibration file
(``agra-ros calibrate-agreement``) so a file that calibrates another proxy is never applied to this one."""
_STEP = float(np.float32(0.01))
RECALL_POINTS = (
    np.where(np.arange(101) < 50, np.arange(101) * _STEP, 1.0 - (100 - np.arange(101)) * _STEP)
    .astype(np.float32)
    .astype(np.float64)
)
"""The 101 recall thresholds torchmetrics' map_50 interpolates at: ``torch.linspace(0, 1, 101)`` in float32, bit for
bit (not numpy's float64 ones: a recall of exactly 0.8 falls short of float32 0.8, and torchmetrics counts 0 there)."""


class DetectionsLike(Protocol):
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class Cut:
    """Detections above a score (what :func:`cut` returns): boxes, scores, labels and the source's embedding."""

    __slots__ = ("boxes", "scores", "labels", "embedding")

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, embedding=None) -> None:
        self.boxes, self.scores, self.labels, self.embedding = boxes, scores, labels, embedding

    def __len__(self) -> int:
        return int(len(self.scores))


def cut(dets: DetectionsLike, score: float) -> Cut:
    """The detections of ``dets`` with score >= ``score`` (its ``embedding``, where it has one, comes along)."""
    scores = np.asarray(dets.scores, np.float32).reshape(-1)
    keep = scores >= score
    return Cut(
        np.asarray(dets.boxes, np.float32).reshape(-1, 4)[keep],
        scores[keep],
        np.asarray(dets.labels, np.int64).reshape(-1)[keep],
        getattr(dets, "embedding", None),
    )


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


def _class_ap(scores: np.ndarray, iou: np.ndarray, iou_threshold: float) -> float:
    """AP of one class on one frame: candidates (``scores``, rows of ``iou``) against reference boxes (columns),
    COCO's greedy score-ordered matching (each candidate takes the best-IoU unmatched reference box at or above the
    threshold) and 101-point interpolated precision."""
    n_ref = iou.shape[1]
    order = np.argsort(-scores, kind="mergesort")[:100]  # COCO: stable sort, at most 100 detections
    taken = np.zeros(n_ref, dtype=bool)
    tp = np.zeros(len(order), dtype=bool)
    thr = min(iou_threshold, 1 - 1e-10)
    for k, i in enumerate(order):
        cand = np.where(taken, -1.0, iou[i])
        j = n_ref - 1 - int(np.argmax(cand[::-1]))  # the best; on a tie the last, as pycocotools
        if cand[j] >= thr:
            taken[j] = tp[k] = True
    if not len(order):
        return 0.0
    tps = np.cumsum(tp)
    recall = tps / n_ref
    precision = tps / np.arange(1, len(order) + 1)  # pycocotools adds 2e-16 to the divisor: 1.0 stays 1.0 here
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    ok = idx < len(recall)
    return float(precision[idx[ok]].sum() / len(RECALL_POINTS))


def frame_ap(candidate: DetectionsLike, reference: DetectionsLike, iou_threshold: float = 0.5) -> float:
    """AP@``iou_threshold`` of one frame's candidate detections against reference detections, as torchmetrics'
    map_50 (pycocotools) computes it for a single image: per class present in the reference, greedy score-ordered
    matching and 101-point interpolated precision, then the mean over those classes (candidates of other classes
    count nowhere). NaN when the reference has no box (nothing to agree with)."""
    ref_labels = np.asarray(reference.labels, np.int64).reshape(-1)
    if not ref_labels.size:
        return float("nan")
    cand_labels = np.asarray(candidate.labels, np.int64).reshape(-1)
    cand_scores = np.asarray(candidate.scores, np.float64).reshape(-1)
    cand_boxes = np.asarray(candidate.boxes, np.float64).reshape(-1, 4)
    ref_boxes = np.asarray(reference.boxes, np.float64).reshape(-1, 4)
    aps = []
    for c in np.unique(ref_labels):
        rows, cols = cand_labels == c, ref_labels == c
        if not rows.any():
            aps.append(0.0)
            continue
        aps.append(_class_ap(cand_scores[rows], box_iou(cand_boxes[rows], ref_boxes[cols]), iou_threshold))
    return float(np.mean(aps))


def confident_frame_agreement(candidate: DetectionsLike, full: DetectionsLike) -> float:
    """The confident agreement of one frame: AP@0.5 of ``candidate``'s detections with score >=
    :data:`CONFIDENT_CANDIDATE_SCORE` against ``full``'s with score >= :data:`CONFIDENT_REFERENCE_SCORE` (both
    may hold lower scores; they are cut here). 1.0 for full against itself; NaN when full has no confident box."""
    return frame_ap(cut(candidate, CONFIDENT_CANDIDATE_SCORE), cut(full, CONFIDENT_REFERENCE_SCORE))
