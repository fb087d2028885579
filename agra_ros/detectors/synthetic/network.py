"""AgraDetector: a compact single-stage (CenterNet-style) detector whose conv layers switch granularity.

Why this design: it has to run at 20-40 ms per frame on one or two CPU threads, train on a CPU in under half an
hour, and expose a handful of layers whose granularity the policy can pick one by one. A centre-heatmap detector
needs no anchors and decodes with a 3x3 max-pool, so the non-switchable part (head, decode, NMS) stays small.

Network (input ``S x S``, native ``S = 256``; output stride 4)::

    stem  3->c0   s2   S/2     \\
    s1    c0->c1  s2   S/4      |
    s2    c1->c2  s1   S/4  ----+------------------ skip --+
    s3    c2->c3  s2   S/8      |  nine switchable layers  |
    s4    c3->c4  s1   S/8  ----+--- skip --+              |
    s5    c4->c5  s2   S/16     |           |              |
    s6    c5->c6  s1   S/16     |           |              |
    up1   c6->c4  s1   S/16 -> x2 upsample + s4 skip       |
    up2   c4->c2  s1   S/8  -> x2 upsample + s2 skip ------+
    head  c2->h -> 1x1 -> [C heatmap logits | 2 log-size | 2 centre offset]   at S/4

A skip merge keeps the *main path's* width: the skip's first channels are added (truncated or zero-extended),
so every layer's input width is its predecessor's level width and the cost tables stay additive with one
``input_from`` per layer. The resolution-scale knob resizes the camera frame to ``round(S * scale)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from agra_ros.detectors.interface import (
    Detections,
    WeightsError,
    as_image_list,
    pooled_features,
    resize_image,
    with_embeddings,
)
from agra_ros.granularity.levels import RESOLUTION_SCALES, GranularityConfig, GranularityError
from agra_ros.granularity.switchable import SwitchableConv2d

WEIGHTS_FORMAT = "agra_ros/detector-weights"
WEIGHTS_VERSION = 1
DETECTOR_NAME = "agra-det-v1"
PIXEL_MEAN = 0.45
PIXEL_STD = 0.25


@dataclass(frozen=True)
class ArchConfig:
    """Architecture hyper-parameters (saved with the weights so a file rebuilds its own network)."""

    channels: tuple[int, ...] = (24, 32, 32, 64, 64, 128, 128)
    """Full output channels of stem, s1..s6."""
    head_channels: int = 32
    """Channels of the head's hidden 3x3 conv (not switchable)."""
    input_size: int = 256
    """Native square input side in pixels (resolution scale 1.0)."""
    stride: int = 4
    """Output stride of the heatmap (fixed by the layer plan)."""
    tiles: tuple[int, int] = (2, 2)
    """Tile grid of the ``partitioned`` level."""


@torch.fx.wrap
def merge_skip(main: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Add ``skip`` into ``main`` keeping ``main``'s channel count (skip truncated or zero-extended)."""
    k, ks = main.shape[1], skip.shape[1]
    if ks >= k:
        return main + skip[:, :k]
    return torch.cat([main[:, :ks] + skip, main[:, ks:]], dim=1)


LAYER_NAMES: tuple[str, ...] = ("stem", "s1", "s2", "s3", "s4", "s5", "s6", "up1", "up2")
INPUT_FROM: dict[str, str | None] = {
    "stem": None,
    "s1": "stem",
    "s2": "s1",
    "s3": "s2",
    "s4": "s3",
    "s5": "s4",
    "s6": "s5",
    "up1": "s6",
    "up2": "up1",
}
HEAD_INPUT_FROM: tuple[str, ...] = ("up2",)


class AgraDetector(nn.Module):
    """The granularity-switchable detector. See the module docstring for the layer plan."""

    def __init__(self, class_names: Sequence[str], arch: ArchConfig | None = None) -> None:
        super().__init__()
        self.arch = arch or ArchConfig()
        self.class_names = tuple(class_names)
        if not self.class_names:
            raise ValueError("the detector needs at least one class name")
        c = self.arch.channels
        if len(c) != 7:
            raise ValueError(f"ArchConfig.channels needs 7 entries (stem, s1..s6), got {len(c)}")
        t = self.arch.tiles

        def layer(cin: int, cout: int, stride: int) -> SwitchableConv2d:
            return SwitchableConv2d(cin, cout, 3, stride, activation=nn.ReLU(inplace=True), tiles=t)

        self.stem = layer(3, c[0], 2)
        self.s1 = layer(c[0], c[1], 2)
        self.s2 = layer(c[1], c[2], 1)
        self.s3 = layer(c[2], c[3], 2)
        self.s4 = layer(c[3], c[4], 1)
        self.s5 = layer(c[4], c[5], 2)
        self.s6 = layer(c[5], c[6], 1)
        self.up1 = layer(c[6], c[4], 1)
        self.up2 = layer(c[4], c[2], 1)
        self.head_hidden = SwitchableConv2d(
            c[2],
            self.arch.head_channels,
            3,
            1,
            bias=True,
            batch_norm=False,
            activation=nn.ReLU(inplace=True),
            switchable_out=False,
        )
        self.head_out = nn.Conv2d(self.arch.head_channels, self.num_classes + 4, 1)
        nn.init.constant_(self.head_out.bias[: self.num_classes], -2.19)  # prior 0.1: stable focal-loss start
        self.resolution_scale = 1.0
        self._layers = [getattr(self, n) for n in LAYER_NAMES]

    # ------------------------------------------------------------------ configuration
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def switchable_layer_names(self) -> list[str]:
        """Names of the switchable layers, in the order a GranularityConfig lists their levels."""
        return list(LAYER_NAMES)

    def switchable_layers(self) -> list[SwitchableConv2d]:
        return list(self._layers)

    def set_config(self, config: GranularityConfig) -> None:
        """Apply one level per switchable layer and the resolution scale (execution target is not ours)."""
        if config.n_layers != len(self._layers):
            raise GranularityError(f"configuration has {config.n_layers} levels, detector has {len(self._layers)}")
        for layer, lv in zip(self._layers, config.levels):
            layer.set_level(lv)
        self.resolution_scale = config.resolution_scale

    def set_levels(self, levels: Sequence[str]) -> None:
        if len(levels) != len(self._layers):
            raise GranularityError(f"{len(levels)} levels for {len(self._layers)} switchable layers")
        for layer, lv in zip(self._layers, levels):
            layer.set_level(lv)

    def current_config(self) -> GranularityConfig:
        return GranularityConfig(tuple(m.level for m in self._layers), self.resolution_scale)

    def input_side(self, scale: float | None = None) -> int:
        """Network input side (pixels) at a resolution scale; a multiple of 16 so every stage divides evenly."""
        s = self.resolution_scale if scale is None else scale
        if s not in RESOLUTION_SCALES:
            raise GranularityError(f"resolution scale {s!r} not in {RESOLUTION_SCALES}")
        return int(round(self.arch.input_size * s / 16.0)) * 16

    # ------------------------------------------------------------------ network
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw head output (B, C + 4, S/4, S/4): heatmap logits, log box size (cells), centre offset (cells)."""
        x = self.stem(x)
        x = self.s1(x)
        f4 = self.s2(x)
        x = self.s3(f4)
        f8 = self.s4(x)
        x = self.s5(f8)
        x = self.s6(x)
        x = merge_skip(F.interpolate(self.up1(x), scale_factor=2.0, mode="nearest"), f8)
        x = merge_skip(F.interpolate(self.up2(x), scale_factor=2.0, mode="nearest"), f4)
        return self.head_out(self.head_hidden(x))

    # ------------------------------------------------------------------ pre/post processing
    def preprocess(
        self, images: np.ndarray | Sequence[np.ndarray], scale: float | None = None
    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """uint8 RGB frames (H, W, 3), a list of them or a (B, H, W, 3) array -> normalised batch + original sizes."""
        batch = as_image_list(images)
        side = self.input_side(scale)
        arr = np.stack([resize_image(im, side) for im in batch])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
        x = x.mul_(1.0 / (255.0 * PIXEL_STD)).sub_(PIXEL_MEAN / PIXEL_STD)
        device = self.head_out.weight.device
        return x.to(device), [(im.shape[0], im.shape[1]) for im in batch]

    def decode(
        self,
        out: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        score_threshold: float = 0.3,
        max_detections: int = 100,
        nms_iou: float = 0.5,
    ) -> list[Detections]:
        """Peaks of the class heatmaps (3x3 max-pool), boxes from size/offset, class-wise NMS, original pixels."""
        c = self.num_classes
        heat = torch.sigmoid(out[:, :c])
        peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
        b, _, hh, ww = heat.shape
        side_h, side_w = hh * self.arch.stride, ww * self.arch.stride
        k = min(max_detections, c * hh * ww)
        scores, idx = peaks.reshape(b, -1).topk(k)
        results: list[Detections] = []
        for i in range(b):
            keep = scores[i] >= score_threshold
            s, j = scores[i][keep], idx[i][keep]
            labels = j // (hh * ww)
            cell = j % (hh * ww)
            ys, xs = (cell // ww), (cell % ww)
            reg = out[i, c:, ys, xs]  # (4, n)
            wh = torch.exp(reg[0:2].clamp(max=8.0)) * self.arch.stride
            cx = (xs.float() + reg[2]) * self.arch.stride
            cy = (ys.float() + reg[3]) * self.arch.stride
            boxes = torch.stack([cx - wh[0] / 2, cy - wh[1] / 2, cx + wh[0] / 2, cy + wh[1] / 2], dim=1)
            if boxes.shape[0]:
                kept = torchvision.ops.batched_nms(boxes, s, labels, nms_iou)
                boxes, s, labels = boxes[kept], s[kept], labels[kept]
            h0, w0 = sizes[i]
            boxes = boxes * boxes.new_tensor([w0 / side_w, h0 / side_h, w0 / side_w, h0 / side_h])
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w0)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h0)
            results.append(
                Detections(
                    boxes.detach().cpu().numpy().astype(np.float32),
                    s.detach().cpu().numpy().astype(np.float32),
                    labels.detach().cpu().numpy().astype(np.int64),
                )
            )
        return results

    @torch.inference_mode()
    def detect(self, images: np.ndarray | Sequence[np.ndarray], score_threshold: float = 0.3) -> list[Detections]:
        """Detect objects at the current configuration; boxes in each image's own pixel coordinates."""
        x, sizes = self.preprocess(images)
        pooled: list[torch.Tensor] = []
        # the head's hidden features keep their full shape at every width (stage outputs are sliced): pool them
        hook = self.head_hidden.register_forward_hook(lambda _m, _i, out: pooled.append(out))
        try:
            out = self.forward(x)
        finally:
            hook.remove()
        return with_embeddings(self.decode(out, sizes, score_threshold), pooled_features(pooled))


# ---------------------------------------------------------------------- helpers


# ---------------------------------------------------------------------- weights
def default_weights_path() -> Path:
    from agra_ros.paths import data_dir

    return data_dir() / "detector.pt"


def save_detector(model: AgraDetector, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Save state_dict (CPU tensors) + architecture + class names + format/version, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arch = asdict(model.arch)
    payload = {
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "detector": DETECTOR_NAME,
        "arch": {k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()},
        "class_names": list(model.class_names),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": json.loads(json.dumps(dict(meta or {}), default=str)),  # plain types: loadable with weights_only
    }
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(p)
    return p


def load_detector(path: str | Path | None = None, device: str | torch.device = "cpu") -> AgraDetector:
    """Load a detector from a weights file (default: the shipped ``agra_ros/data/detector.pt``), in eval mode.

    Raises :class:`WeightsError` when the file is missing, unreadable, of another format or version, or its
    tensors do not fit the architecture it declares.
    """
    p = Path(path) if path is not None else default_weights_path()
    if not p.is_file():
        raise WeightsError(f"detector weights not found: {p} (train them with `agra-ros train-detector`)")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same to the caller
        raise WeightsError(f"{p}: cannot read detector weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{p}: not an agra_ros detector weights file")
    if payload.get("version") != WEIGHTS_VERSION:
        raise WeightsError(f"{p}: weights version {payload.get('version')!r}, this code reads {WEIGHTS_VERSION}")
    try:
        raw = dict(payload["arch"])
        arch = ArchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        model = AgraDetector(payload["class_names"], arch)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{p}: weights do not fit the detector architecture ({exc})") from None
    model.weights_meta = dict(payload.get("meta", {}))  # type: ignore[attr-defined]
    return model.to(device).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def log_size_target(size_px: torch.Tensor, stride: int) -> torch.Tensor:
    """Regression target for a box side in input pixels: log of its length in output cells."""
    return torch.log(size_px.clamp(min=1.0) / stride)


__all__ = [
    "AgraDetector",
    "ArchConfig",
    "DETECTOR_NAME",
    "Detections",
    "HEAD_INPUT_FROM",
    "INPUT_FROM",
    "LAYER_NAMES",
    "WeightsError",
    "count_parameters",
    "default_weights_path",
    "load_detector",
    "log_size_target",
    "merge_skip",
    "resize_image",
    "save_detector",
]
