"""Accuracy of a granularity configuration without labels: mAP@0.5 against the full configuration's detections.

No labelled real data set is reachable from this project's registries, so every accuracy figure of the real
detector is *agreement with the pretrained model*: the ``full`` configuration at native resolution detects on each
held-out frame, its boxes are the pseudo-labels, and a configuration's detections are scored against them with
torchmetrics' mAP@0.5. The full configuration scores 1.0 by construction; a slim one scores how much of the
pretrained model's behaviour it keeps. Every report that quotes these numbers says so.

Two fixed definitions (issue 21), the first the package's accuracy measure everywhere (the accuracy tables and model,
the shadow agreement on the robot, the benches), the second reported beside it:

- :func:`confident_agreement`: the reference is full's *confident* detections (score >=
  ``CONFIDENT_REFERENCE_SCORE``), the candidate's detections are ranked down to ``CONFIDENT_CANDIDATE_SCORE``, so a
  box the slim configuration still finds at a lower score counts as found (ranked after the sure ones), and the
  full model's own flicker near its threshold does not count against anyone. Per frame it is
  :func:`agra_ros.perception.agreement.confident_frame_agreement` (one definition: the thresholds live there);
- :func:`strict_agreement`: both cut at ``PSEUDO_LABEL_SCORE`` (the node's default threshold): what a user of the
  published detections sees change.

:func:`agreement_map` (reference at ``PSEUDO_LABEL_SCORE``, candidate ranked down to ``PREDICTION_SCORE``) is the
form the tables used before issue 21 (the "earlier form" of docs/results.md), kept to reproduce those figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agra_ros.detectors.interface import Detections
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.perception.agreement import CONFIDENT_CANDIDATE_SCORE, CONFIDENT_REFERENCE_SCORE

PSEUDO_LABEL_SCORE = 0.3
"""Score at which the full configuration's detections become pseudo-labels (the node's default threshold)."""
PREDICTION_SCORE = 0.05
"""Score threshold of the evaluated configuration's detections (low, so the precision-recall curve is complete)."""
EVALUATION_SCORE = min(CONFIDENT_CANDIDATE_SCORE, PSEUDO_LABEL_SCORE)
"""Score down to which :func:`agreements` detects: low enough for both the confident and the strict form."""


def _as_target(dets) -> dict[str, torch.Tensor]:
    return {"boxes": torch.from_numpy(dets.boxes).float(), "labels": torch.from_numpy(dets.labels).long()}


def _as_pred(dets) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.from_numpy(dets.boxes).float(),
        "scores": torch.from_numpy(dets.scores).float(),
        "labels": torch.from_numpy(dets.labels).long(),
    }


def detect_all(model, frames: np.ndarray, config: GranularityConfig, score: float, batch: int = 16) -> list:
    """Detections of every frame at ``config`` (restores nothing: the caller owns the model's configuration)."""
    model.set_config(config)
    out = []
    for i in range(0, len(frames), batch):
        out.extend(model.detect(list(frames[i : i + batch]), score))
    return out


def pseudo_labels(model, frames: np.ndarray) -> list:
    """The full configuration's detections at :data:`PSEUDO_LABEL_SCORE`: the reference of :func:`agreement_map`."""
    n = len(model.switchable_layer_names())
    return detect_all(model, frames, GranularityConfig.uniform("full", n), PSEUDO_LABEL_SCORE)


def map50(preds: Sequence, targets: Sequence) -> float:
    """mAP@0.5 (COCO-style 101-point interpolation, torchmetrics) of detections against reference detections."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_thresholds=[0.5], box_format="xyxy")
    metric.update([_as_pred(p) for p in preds], [_as_target(t) for t in targets])
    value = float(metric.compute()["map_50"])
    return max(0.0, value)  # torchmetrics reports -1 when the reference has no box at all


def agreement_map(model, frames: np.ndarray, config: GranularityConfig, references: Sequence) -> float:
    """mAP@0.5 of ``config``'s detections on ``frames`` against ``references`` (from :func:`pseudo_labels`)."""
    return map50(detect_all(model, frames, config, PREDICTION_SCORE), references)


def above(dets, score: float) -> Detections:
    """The detections of ``dets`` (anything with ``boxes``, ``scores``, ``labels``) with score >= ``score``."""
    keep = np.asarray(dets.scores) >= score
    return Detections(
        np.asarray(dets.boxes, np.float32).reshape(-1, 4)[keep],
        np.asarray(dets.scores, np.float32)[keep],
        np.asarray(dets.labels, np.int64)[keep],
    )


def _agreement(candidate: Sequence, full: Sequence, candidate_score: float, reference_score: float) -> float:
    if len(candidate) != len(full):
        raise ValueError(f"{len(candidate)} candidate frames against {len(full)} reference frames")
    refs = [above(d, reference_score) for d in full]
    if not any(len(r) for r in refs):
        return float("nan")  # nothing to agree with: not 0 (torchmetrics' -1), not 1
    return map50([above(d, candidate_score) for d in candidate], refs)


def confident_agreement(candidate_dets: Sequence, full_dets: Sequence) -> float:
    """mAP@0.5 of a configuration's detections (ranked by score down to :data:`CONFIDENT_CANDIDATE_SCORE`) against
    the full configuration's on the same frames at score >= :data:`CONFIDENT_REFERENCE_SCORE`. Both are per-frame
    lists of detections at a threshold no higher than those (lower ones are cut here). 1.0 for full against itself;
    NaN when full has no confident detection on any frame."""
    return _agreement(candidate_dets, full_dets, CONFIDENT_CANDIDATE_SCORE, CONFIDENT_REFERENCE_SCORE)


def strict_agreement(candidate_dets: Sequence, full_dets: Sequence) -> float:
    """Like :func:`confident_agreement` with both sides cut at :data:`PSEUDO_LABEL_SCORE`."""
    return _agreement(candidate_dets, full_dets, PSEUDO_LABEL_SCORE, PSEUDO_LABEL_SCORE)


def full_detections(model, frames: np.ndarray) -> list:
    """The full configuration's detections down to :data:`EVALUATION_SCORE`: the reference of :func:`agreements`
    (cut there to each form's reference score)."""
    n = len(model.switchable_layer_names())
    return detect_all(model, frames, GranularityConfig.uniform("full", n), EVALUATION_SCORE)


def agreements(model, frames: np.ndarray, config: GranularityConfig, full_dets: Sequence) -> tuple[float, float]:
    """(confident, strict) agreement of ``config`` on ``frames`` with ``full_dets`` (from :func:`full_detections`),
    from one detector pass; (NaN, NaN) for no frames."""
    if not len(frames):
        return float("nan"), float("nan")
    dets = detect_all(model, frames, config, EVALUATION_SCORE)
    return confident_agreement(dets, full_dets), strict_agreement(dets, full_dets)


__all__ = [
    "CONFIDENT_CANDIDATE_SCORE",
    "CONFIDENT_REFERENCE_SCORE",
    "EVALUATION_SCORE",
    "PREDICTION_SCORE",
    "PSEUDO_LABEL_SCORE",
    "above",
    "agreement_map",
    "agreements",
    "confident_agreement",
    "detect_all",
    "full_detections",
    "map50",
    "pseudo_labels",
    "strict_agreement",
]
