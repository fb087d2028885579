"""Accuracy of a granularity configuration without labels: mAP@0.5 against the full configuration's detections.

No labelled real data set is reachable from this project's registries, so every accuracy figure of the real
detector is *agreement with the pretrained model*: the ``full`` configuration at native resolution detects on each
held-out frame (score >= ``PSEUDO_LABEL_SCORE``), those boxes are the pseudo-labels, and a configuration's
detections (score >= ``PREDICTION_SCORE``) are scored against them with torchmetrics' mAP@0.5. The full
configuration scores 1.0 by construction; a slim one scores how much of the pretrained model's behaviour it keeps.
Every report that quotes these numbers says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agra_ros.granularity.levels import GranularityConfig

PSEUDO_LABEL_SCORE = 0.3
"""Score at which the full configuration's detections become pseudo-labels (the node's default threshold)."""
PREDICTION_SCORE = 0.05
"""Score threshold of the evaluated configuration's detections (low, so the precision-recall curve is complete)."""


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


__all__ = ["PREDICTION_SCORE", "PSEUDO_LABEL_SCORE", "agreement_map", "detect_all", "map50", "pseudo_labels"]
