"""SSD-MobileNetV2 (Open Images v4, 23 classes), pretrained, made granularity-switchable.

The network is rebuilt op for op from the TFLite graph (:mod:`agra_ros.detectors.ssd.tflite_import`) and run by a small
torch executor, so at the ``full`` configuration it computes exactly what the pretrained model computes (the
importer's parity test checks it against the reference interpreter).

Switchable layers. Each catalogue layer is a *group* of producer convolutions whose output channels the neuron
levels slice: the expansion convs of the inverted-residual blocks (``b1`` ... ``b16``), the 1280-channel conv and
the extra layers' 1x1 bottlenecks (``head``). A sliced tensor flows only into depthwise convs (which follow the
slice) and dense convs that read it (which read only those channels), so every block *output* keeps its full
width: residual adds, the box predictors' layouts and the anchors never change. That is why the slicing points were
chosen there.

Full stays pretrained. The full weights are frozen buffers. Every neuron level has parameters of its own
(``variants``): a copy of the rows/columns it keeps, initialised from the full weights of the channels ranked most
important, then refitted by least squares and distilled (:mod:`agra_ros.detectors.ssd.distill`). Nothing a slim
level learns can change the full configuration. The convolutions and their variants are
:mod:`agra_ros.detectors.ssd.graph_ops`.

``partitioned`` runs the group's convolutions at full width in 2x2 spatial tiles, each from its input window plus
the halo: the same result as ``full`` with a tile-sized working set.

The resolution knob feeds ``round(300 * scale)`` pixels; the anchors are generated for whatever feature grid that
gives (MediaPipe's SSD anchor settings for this model, :mod:`agra_ros.detectors.ssd.anchors`), so boxes stay
correct at every scale. This module wires the ops into the detector and does its pre- and post-processing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from agra_ros.detectors.interface import Detections, as_image_list, pooled_features, resize_image, with_embeddings
from agra_ros.detectors.ssd.anchors import AnchorSpec, anchors_at_side, decode_boxes
from agra_ros.detectors.ssd.graph_ops import GraphConv, account_conv, graph_spec
from agra_ros.detectors.ssd.tflite_import import TfliteGraph
from agra_ros.granularity.levels import LEVEL_WIDTH, RESOLUTION_SCALES, GranularityConfig, GranularityError
from agra_ros.granularity.slicing import channels_at

DETECTOR_NAME = "ssd-mobilenetv2-oidv4"
NATIVE_SIDE = 300
SLIM_WIDTHS: tuple[float, ...] = (0.75, 0.5, 0.25)

LAYER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("b1", ("expanded_conv_1/expand/",)),
    ("b2", ("expanded_conv_2/expand/",)),
    ("b3_5", ("expanded_conv_3/expand/", "expanded_conv_4/expand/", "expanded_conv_5/expand/")),
    (
        "b6_9",
        (
            "expanded_conv_6/expand/",
            "expanded_conv_7/expand/",
            "expanded_conv_8/expand/",
            "expanded_conv_9/expand/",
        ),
    ),
    ("b10_12", ("expanded_conv_10/expand/", "expanded_conv_11/expand/", "expanded_conv_12/expand/")),
    ("b13", ("expanded_conv_13/expand/",)),
    ("b14_15", ("expanded_conv_14/expand/", "expanded_conv_15/expand/")),
    ("b16", ("expanded_conv_16/expand/",)),
    ("head", ("MobilenetV2/Conv_1/", "layer_19_1_Conv2d_")),
)
"""Catalogue layer name -> substrings of the TFLite output names (last ';' segment) of its producer convs."""

LAYER_NAMES: tuple[str, ...] = tuple(n for n, _ in LAYER_GROUPS)

EMBEDDING_BLOCKS: tuple[str, ...] = (
    "expanded_conv_5/add",
    "expanded_conv_9/add",
    "expanded_conv_12/add",
    "expanded_conv_15/add",
)
"""Residual outputs pooled into the workload embedding: the last block of each stride (8, 16 with 64 and 96
channels, 32), 352 channels in all. Neuron levels slice only expansion convs, so these keep their shape at every
width; they are computed anyway, so W costs the pooling alone."""


class SsdDetector(nn.Module):
    """The switchable SSD-MobileNetV2. Same interface as the synthetic detector (``detect``, ``set_config``...)."""

    detector_name = DETECTOR_NAME

    def __init__(self, graph: TfliteGraph, class_names: Sequence[str], anchor_spec: AnchorSpec = AnchorSpec()):
        super().__init__()
        self.class_names = tuple(class_names)
        self.anchor_spec = anchor_spec
        self.graph_spec = graph_spec(graph)
        self.ops = [dict(s) for s in self.graph_spec["ops"]]
        self.input_name = graph.inputs[0][0]
        self.output_names = [n for n, _ in graph.outputs]
        self.convs = nn.ModuleDict()
        self._conv_key: dict[str, str] = {}
        for i, op in enumerate(graph.ops):
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                key = f"c{i:03d}"
                self.convs[key] = GraphConv(op)
                self._conv_key[op.output] = key
        self._assign_groups()
        self.levels: dict[str, str] = {n: "full" for n in LAYER_NAMES}
        self.resolution_scale = 1.0
        self._anchor_cache: dict[int, torch.Tensor] = {}
        self._strided_kernels = [int(o["weight_shape"][-1]) for o in self.ops if o["stride"] == 2]
        if len(self._strided_kernels) != 9:
            raise ValueError(f"expected 9 stride-2 convs in SSD-MobileNetV2, found {len(self._strided_kernels)}")
        self.weights_meta: dict = {}
        self._embedding_tensors = tuple(
            op["output"] for op in self.ops if op["kind"] == "ADD" and op["output"].endswith(EMBEDDING_BLOCKS)
        )
        if len(self._embedding_tensors) != len(EMBEDDING_BLOCKS):
            raise ValueError(f"embedding blocks {EMBEDDING_BLOCKS} not all found in the graph")

    # ------------------------------------------------------------------ structure
    def _assign_groups(self) -> None:
        """Producers by name; then follow sliced tensors through depthwise convs to the dense convs that read them."""
        sliced: dict[str, str] = {}  # tensor name -> group
        self.producers: dict[str, list[str]] = {n: [] for n in LAYER_NAMES}
        for op in self.ops:
            src_group = next((sliced[t] for t in op["inputs"] if t in sliced), None)
            if op["kind"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                conv = self.convs[self._conv_key[op["output"]]]
                primary = op["output"].split(";")[-1]  # TFLite joins fused names with ';', the last is the op's own
                own = next((g for g, pats in LAYER_GROUPS if any(p in primary for p in pats)), None)
                if op["kind"] == "DEPTHWISE_CONV_2D" and src_group is not None:
                    own = src_group
                if src_group is not None and own is not None and own != src_group:
                    raise ValueError(f"{op['output']}: reads group {src_group} but produces group {own}")
                conv.in_group = src_group
                conv.out_group = own
                if own is not None:
                    sliced[op["output"]] = own
                    if op["kind"] == "CONV_2D":
                        self.producers[own].append(op["output"])
            elif src_group is not None:
                raise ValueError(f"{op['kind']} {op['output']} reads a sliced tensor: slicing there is unsafe")
        missing = [n for n, p in self.producers.items() if not p]
        if missing:
            raise ValueError(f"no producer convs found for layers {missing}: not the expected SSD-MobileNetV2 graph")

    def conv(self, output_name: str) -> GraphConv:
        return self.convs[self._conv_key[output_name]]  # type: ignore[return-value]

    def conv_items(self) -> list[tuple[str, GraphConv]]:
        """(output tensor name, conv) in graph order."""
        return [(op["output"], self.conv(op["output"])) for op in self.ops if op["output"] in self._conv_key]

    def build_variants(self, rankings: dict[str, torch.Tensor]) -> None:
        """Create every slim variant from the full weights, keeping each producer's top-ranked channels.

        ``rankings`` maps each producer's output name to its channels in decreasing importance.
        """
        # the ranking a sliced tensor carries: producers' own, depthwise convs inherit their input's
        order: dict[str, torch.Tensor] = {}
        for op in self.ops:
            if op["output"] not in self._conv_key:
                continue
            conv = self.conv(op["output"])
            in_order = order.get(op["inputs"][0])
            if conv.out_group is not None:
                order[op["output"]] = in_order if conv.depthwise else rankings[op["output"]]
            if conv.out_group is None and conv.in_group is None:
                continue
            for w in SLIM_WIDTHS:
                in_idx = None if in_order is None else in_order[: channels_at(w, len(in_order))]
                out_idx = None
                if conv.out_group is not None:
                    full_order = order[op["output"]]
                    out_idx = full_order[: channels_at(w, len(full_order))]
                conv.make_variant(w, in_idx, out_idx)
        self.channel_order = order

    # ------------------------------------------------------------------ configuration
    def switchable_layer_names(self) -> list[str]:
        return list(LAYER_NAMES)

    def set_config(self, config: GranularityConfig) -> None:
        if config.n_layers != len(LAYER_NAMES):
            raise GranularityError(f"configuration has {config.n_layers} levels, detector has {len(LAYER_NAMES)}")
        self.set_levels(config.levels)
        self.resolution_scale = config.resolution_scale

    def set_levels(self, levels: Sequence[str]) -> None:
        if len(levels) != len(LAYER_NAMES):
            raise GranularityError(f"{len(levels)} levels for {len(LAYER_NAMES)} switchable layers")
        for lv in levels:
            if lv not in LEVEL_WIDTH:
                raise GranularityError(f"unknown granularity level {lv!r}")
        self.levels = dict(zip(LAYER_NAMES, levels))

    def current_config(self) -> GranularityConfig:
        return GranularityConfig(tuple(self.levels[n] for n in LAYER_NAMES), self.resolution_scale)

    def input_side(self, scale: float | None = None) -> int:
        s = self.resolution_scale if scale is None else scale
        if s not in RESOLUTION_SCALES:
            raise GranularityError(f"resolution scale {s!r} not in {RESOLUTION_SCALES}")
        return int(round(NATIVE_SIDE * s))

    # ------------------------------------------------------------------ network
    def forward(
        self,
        x: torch.Tensor,
        levels: dict[str, str] | None = None,
        keep: set[str] | None = None,
        kept: dict[str, torch.Tensor] | None = None,
        stats: dict[str, list[float]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs for a normalised NCHW batch: box encodings (B, N, 4) and class logits (B, N, 24).

        ``levels`` overrides the set configuration for this call (training); tensors named in ``keep`` are copied
        into ``kept`` (calibration). ``stats`` (profiling) accumulates, per switchable layer and ``"overhead"``
        for the rest, [seconds, MACs, bytes moved, peak activation bytes] of every op.
        """
        lv = self.levels if levels is None else levels
        t: dict[str, torch.Tensor] = {self.input_name: x}
        for op in self.ops:
            kind, out = op["kind"], op["output"]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                conv = self.conv(out)
                group = conv.out_group or conv.in_group
                level = lv[group] if group is not None else "full"
                if stats is None:
                    t[out] = conv(t[op["inputs"][0]], LEVEL_WIDTH[level], tiled=level == "partitioned")
                else:
                    t0 = time.perf_counter()
                    t[out] = y = conv(t[op["inputs"][0]], LEVEL_WIDTH[level], tiled=level == "partitioned")
                    account_conv(
                        stats, group or "overhead", time.perf_counter() - t0, conv, t[op["inputs"][0]], y, level
                    )
            elif kind == "ADD":
                y = t[op["inputs"][0]] + t[op["inputs"][1]]
                t[out] = F.relu6(y) if op["activation"] == "RELU6" else (F.relu(y) if op["activation"] == "RELU" else y)
            elif kind == "RESHAPE":
                src = t[op["inputs"][0]]
                if src.dim() == 4:  # NCHW conv output -> NHWC order, as TFLite lays it out
                    src = src.permute(0, 2, 3, 1)
                t[out] = src.reshape(src.shape[0], -1, op["output_shape"][-1])
            elif kind == "CONCATENATION":
                t[out] = torch.cat([t[i] for i in op["inputs"]], dim=1)
            if keep is not None and kept is not None and out in keep:
                kept[out] = t[out]
        boxes, classes = (t[n] for n in self.output_names)
        return boxes, classes

    def anchors(self, side: int) -> torch.Tensor:
        """Anchors for an input of ``side`` pixels (:func:`~agra_ros.detectors.ssd.anchors.anchors_at_side`)."""
        hit = self._anchor_cache.get(side)
        if hit is None:
            hit = anchors_at_side(side, NATIVE_SIDE, self._strided_kernels, self.anchor_spec)
            self._anchor_cache[side] = hit
        return hit

    # ------------------------------------------------------------------ pre/post processing
    def preprocess(self, images, scale: float | None = None) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """uint8 RGB frames -> (B, 3, S, S) in [-1, 1] at the current (or given) resolution scale."""
        batch = as_image_list(images)
        side = self.input_side(scale)
        arr = np.stack([resize_image(im, side) for im in batch])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().mul_(1.0 / 127.5).sub_(1.0)
        return x.to(self.device), [(im.shape[0], im.shape[1]) for im in batch]

    @property
    def device(self) -> torch.device:
        return next(iter(self.buffers())).device

    def decode(
        self,
        boxes_enc: torch.Tensor,
        logits: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        side: int,
        score_threshold: float = 0.3,
        max_detections: int = 100,
        nms_iou: float = 0.5,
    ) -> list[Detections]:
        """Best class per anchor (background excluded), threshold, class-wise NMS, boxes in original pixels."""
        anchors = self.anchors(side).to(boxes_enc.device)
        if anchors.shape[0] != boxes_enc.shape[1]:
            raise RuntimeError(f"{boxes_enc.shape[1]} box encodings for {anchors.shape[0]} anchors at side {side}")
        scores_all = torch.sigmoid(logits[..., 1:])
        results = []
        for i in range(boxes_enc.shape[0]):
            scores, labels = scores_all[i].max(dim=1)
            keep = scores >= score_threshold
            yxyx = decode_boxes(boxes_enc[i][keep], anchors[keep], self.anchor_spec)
            s, lab = scores[keep], labels[keep]
            h0, w0 = sizes[i]
            xyxy = torch.stack([yxyx[:, 1] * w0, yxyx[:, 0] * h0, yxyx[:, 3] * w0, yxyx[:, 2] * h0], dim=1)
            xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w0)
            xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h0)
            if xyxy.shape[0]:
                kept = torchvision.ops.batched_nms(xyxy, s, lab, nms_iou)[:max_detections]
                xyxy, s, lab = xyxy[kept], s[kept], lab[kept]
            results.append(
                Detections(xyxy.cpu().numpy().astype(np.float32), s.cpu().numpy().astype(np.float32), lab.cpu().numpy())
            )
        return results

    @torch.inference_mode()
    def detect(self, images, score_threshold: float = 0.3) -> list[Detections]:
        """Detections per image, each with its workload embedding (the pooled outputs of :data:`EMBEDDING_BLOCKS`)."""
        x, sizes = self.preprocess(images)
        kept: dict[str, torch.Tensor] = {}
        boxes, logits = self.forward(x, keep=set(self._embedding_tensors), kept=kept)
        dets = self.decode(boxes, logits, sizes, x.shape[2], score_threshold)
        return with_embeddings(dets, pooled_features([kept[n] for n in self._embedding_tensors]))


__all__ = ["DETECTOR_NAME", "LAYER_GROUPS", "LAYER_NAMES", "NATIVE_SIDE", "SLIM_WIDTHS", "SsdDetector"]
