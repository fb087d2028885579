"""SSD anchors and box decoding (MediaPipe's SSD anchor settings for SSD-MobileNetV2), at any input resolution.

Why this module exists: the anchors are pure geometry of the feature grids, apart from the network's layers and
from its pre/post-processing (:mod:`agra_ros.detectors.ssd.network`). At the native side they are exactly
MediaPipe's; at any other side (the resolution knob) :func:`anchors_at_side` keeps every anchor's native pixel size
and its offset from the receptive-field centre of its cell, so boxes stay correct at every scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agra_ros.detectors.ssd.graph_ops import same_pads


@dataclass(frozen=True)
class AnchorSpec:
    """MediaPipe's SSD anchor settings for this model (scales, aspect ratios, box-encoding scales)."""

    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    xy_scale: float = 10.0
    wh_scale: float = 5.0


def level_geometry(side: int, kernels: Sequence[int]) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
    """Grid size and receptive-field centre (pixels) of every cell of the six feature levels at input ``side``.

    Level ``l`` follows the first ``4 + l`` stride-2 convs (kernels ``kernels``); each maps output index ``i`` to
    input centre ``2 i - pad_before + (k - 1) / 2`` under TF SAME padding.
    """
    sizes = [side]
    for _ in kernels:
        sizes.append(math.ceil(sizes[-1] / 2))
    grids, centres = [], []
    for level in range(6):
        m = 4 + level
        g = sizes[m]
        c = torch.arange(g, dtype=torch.float64)
        for j in range(m - 1, -1, -1):
            pad = same_pads(sizes[j], kernels[j], 2)[0]
            c = c * 2 - pad + (kernels[j] - 1) / 2
        grids.append((g, g))
        centres.append((c + 0.5).float())
    return grids, centres


def generate_anchors(grids: Sequence[tuple[int, int]], spec: AnchorSpec = AnchorSpec()) -> torch.Tensor:
    """(N, 4) anchors (cy, cx, h, w) in [0, 1] for the given feature grids, in the box predictors' order.

    Per location: the lowest layer has three boxes (aspect 1 at scale 0.1, 2 and 0.5 at its own scale); every other
    layer has one box per aspect ratio plus one of aspect 1 at the geometric mean of its scale and the next.
    """
    n = len(grids)
    scales = [spec.min_scale + (spec.max_scale - spec.min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    out = []
    for i, (gh, gw) in enumerate(grids):
        if i == 0:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[i], a) for a in spec.aspect_ratios] + [(math.sqrt(scales[i] * scales[i + 1]), 1.0)]
        hw = torch.tensor([[s / math.sqrt(a), s * math.sqrt(a)] for s, a in boxes], dtype=torch.float32)
        ys = (torch.arange(gh, dtype=torch.float32) + 0.5) / gh
        xs = (torch.arange(gw, dtype=torch.float32) + 0.5) / gw
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cy.reshape(-1), cx.reshape(-1)], 1)  # (gh*gw, 2), row-major as NHWC reshape
        a = torch.cat([centres[:, None, :].expand(-1, len(boxes), 2), hw[None].expand(centres.shape[0], -1, 2)], dim=2)
        out.append(a.reshape(-1, 4))
    return torch.cat(out)


def decode_boxes(enc: torch.Tensor, anchors: torch.Tensor, spec: AnchorSpec = AnchorSpec()) -> torch.Tensor:
    """Box encodings (..., 4) as (ty, tx, th, tw) -> (..., 4) boxes (y0, x0, y1, x1) in [0, 1] image units."""
    cy = enc[..., 0] / spec.xy_scale * anchors[:, 2] + anchors[:, 0]
    cx = enc[..., 1] / spec.xy_scale * anchors[:, 3] + anchors[:, 1]
    h = torch.exp(enc[..., 2].clamp(max=10.0) / spec.wh_scale) * anchors[:, 2]
    w = torch.exp(enc[..., 3].clamp(max=10.0) / spec.wh_scale) * anchors[:, 3]
    return torch.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], dim=-1)


def anchors_at_side(
    side: int, native_side: int, kernels: Sequence[int], spec: AnchorSpec = AnchorSpec()
) -> torch.Tensor:
    """(N, 4) anchors for an input of ``side`` pixels of a network whose stride-2 convs have ``kernels``.

    At ``native_side`` they are exactly MediaPipe's. At any other side the network still sees objects in pixels, so
    each anchor keeps its native *pixel* size and its native offset from the receptive-field centre of its cell (TF
    SAME padding shifts that centre differently at every input size); without this the boxes of a reduced
    resolution come out shrunk and shifted by up to 5 % of the image.
    """
    native_grids, native_centres = level_geometry(native_side, kernels)
    grids, centres = level_geometry(side, kernels)
    base = generate_anchors(native_grids, spec)
    parts, pos = [], 0
    for level, ((ng, _), (g, _), nc, c) in enumerate(zip(native_grids, grids, native_centres, centres)):
        n_native = ng * ng
        per = 3 if level == 0 else 1 + len(spec.aspect_ratios)
        a = base[pos : pos + n_native * per].reshape(ng, ng, per, 4)
        pos += n_native * per
        offset = a[:g, 0, 0, 0] * native_side - nc[:g]  # native anchor centre - native RF centre, px
        ctr = (c[:g] + offset) / side  # (g,)
        cy = ctr[:, None, None].expand(g, g, per)
        cx = ctr[None, :, None].expand(g, g, per)
        hw = a[:g, :g, :, 2:] * (native_side / side)
        parts.append(torch.cat([cy[..., None], cx[..., None], hw], dim=-1).reshape(-1, 4))
    return torch.cat(parts)


__all__ = ["AnchorSpec", "anchors_at_side", "decode_boxes", "generate_anchors", "level_geometry"]
