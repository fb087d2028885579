"""Detector losses: CenterNet focal loss and box regression on ground truth, and in-place distillation.

In-place distillation (slimmable networks): a narrower sub-network learns from the full width's outputs of the
same batch (detached), which transfers what the widest network found and smooths the narrow networks' targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agra_ros.detectors.synthetic.data import Targets


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss of CenterNet, normalised by the number of object centres."""
    pos = heat.eq(1.0).float()
    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    p = log_p.exp()
    pos_loss = (log_p * (1 - p) ** alpha * pos).sum()
    neg_loss = (log_1mp * p**alpha * (1 - heat) ** beta * (1 - pos)).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def gather_centres(out: torch.Tensor, index: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(M, 4) regression outputs at the objects' centre cells."""
    return out[index[:, 0], num_classes:, index[:, 1], index[:, 2]]


def detection_loss(out: torch.Tensor, targets: Targets, num_classes: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Ground-truth loss: focal heatmap + L1 on log size and centre offset."""
    heat_l = focal_loss(out[:, :num_classes], targets.heat)
    if targets.index.shape[0]:
        reg = gather_centres(out, targets.index, num_classes)
        size_l = F.l1_loss(reg[:, :2], targets.reg[:, :2])
        off_l = F.l1_loss(reg[:, 2:], targets.reg[:, 2:])
    else:
        size_l = off_l = out.sum() * 0.0
    total = heat_l + size_l + off_l
    return total, {"heat": heat_l.item(), "size": size_l.item(), "offset": off_l.item()}


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, targets: Targets, num_classes: int
) -> tuple[torch.Tensor, float]:
    """Squared error of the heatmap probabilities (summed, per object) + L1 to the teacher's box regression.

    The squared error of probabilities, unlike a per-pixel KL, stays small on the (mostly empty) background,
    so the narrow members learn the teacher's peaks without their gradient swamping the shared weights.
    """
    t_prob = torch.sigmoid(teacher[:, :num_classes].detach())
    s_prob = torch.sigmoid(student[:, :num_classes])
    n = max(1, int(targets.index.shape[0]))
    loss = (s_prob - t_prob).pow(2).sum() / n
    if targets.index.shape[0]:
        loss = loss + F.l1_loss(
            gather_centres(student, targets.index, num_classes),
            gather_centres(teacher.detach(), targets.index, num_classes),
        )
    return loss, loss.item()


__all__ = ["detection_loss", "distillation_loss", "focal_loss", "gather_centres"]
