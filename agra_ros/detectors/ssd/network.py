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
level learns can change the full configuration.

``partitioned`` runs the group's convolutions at full width in 2x2 spatial tiles, each from its input window plus
the halo: the same result as ``full`` with a tile-sized working set.

The resolution knob feeds ``round(300 * scale)`` pixels; the anchors are generated for whatever feature grid that
gives (MediaPipe's SSD anchor settings for this model), so boxes stay correct at every scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from agra_ros.detectors.interface import Detections, as_image_list, resize_image
from agra_ros.detectors.ssd.tflite_import import TfliteGraph, TfliteOp
from agra_ros.granularity.levels import LEVEL_WIDTH, RESOLUTION_SCALES, GranularityConfig, GranularityError
from agra_ros.granularity.switchable import channels_at

DETECTOR_NAME = "ssd-mobilenetv2-oidv4"
NATIVE_SIDE = 300
SLIM_WIDTHS: tuple[float, ...] = (0.75, 0.5, 0.25)
TILES = (2, 2)

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


def width_key(width: float) -> str:
    return f"w{int(round(width * 100))}"


# ---------------------------------------------------------------------- anchors (MediaPipe SSD anchor settings)
@dataclass(frozen=True)
class AnchorSpec:
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    xy_scale: float = 10.0
    wh_scale: float = 5.0


def _level_geometry(side: int, kernels: Sequence[int]) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
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


# ---------------------------------------------------------------------- convolution with level variants
def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after): the extra pixel goes after, unlike torch's symmetric padding."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class GraphConv(nn.Module):
    """One conv op of the graph: frozen full weights plus one trainable variant per slim width it takes part in."""

    def __init__(self, op: TfliteOp) -> None:
        super().__init__()
        assert op.weight is not None
        w = torch.from_numpy(op.weight.copy())
        self.register_buffer("weight", w)
        b = torch.zeros(w.shape[0]) if op.bias is None else torch.from_numpy(op.bias.copy())
        self.register_buffer("bias", b)
        self.depthwise = op.kind == "DEPTHWISE_CONV_2D"
        self.k = int(w.shape[-1])
        self.stride = op.stride
        self.same = op.padding == "SAME"
        self.activation = op.activation
        self.variants = nn.ParameterDict()
        self._slices: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._slice_cache: dict[str, torch.Tensor] = {}
        self.in_group: str | None = None
        self.out_group: str | None = None

    def make_variant(self, width: float, in_idx: torch.Tensor | None, out_idx: torch.Tensor | None) -> None:
        """Add the slim variant for ``width``: the kept rows (``out_idx``) and columns (``in_idx``) of the full weights.

        A conv whose *output* is sliced (a producer, or a depthwise conv following one) keeps exactly the full
        weights of its kept channels (frozen, rebuilt from the rankings, not stored) with a trainable bias; a conv
        that only *reads* a sliced tensor gets trainable weights of its own, which least squares and distillation
        fit. That keeps the shipped file small (fp16, under 20 MB) while the convs that must compensate for the
        missing channels can.
        """
        key = width_key(width)
        b = self.bias if out_idx is None else self.bias[out_idx]
        self.variants[key + "_b"] = nn.Parameter(b.clone())
        if out_idx is None:
            w = self.weight if in_idx is None or self.depthwise else self.weight[:, in_idx]
            self.variants[key + "_w"] = nn.Parameter(w.clone())
        else:
            self._slices[key] = (out_idx.clone(), None if in_idx is None or self.depthwise else in_idx.clone())
            self._slice_cache.pop(key, None)

    def params_for(self, width: float) -> tuple[torch.Tensor, torch.Tensor]:
        if width >= 1.0:
            return self.weight, self.bias
        key = width_key(width)
        if key + "_b" not in self.variants:
            raise GranularityError(f"no slim level of width {width} in these weights (import only, not distilled)")
        bias = self.variants[key + "_b"]
        if key in self._slices:
            w = self._slice_cache.get(key)
            if w is None or w.device != self.weight.device:
                out_idx, in_idx = self._slices[key]
                w = self.weight[out_idx.to(self.weight.device)]
                if in_idx is not None:
                    w = w[:, in_idx.to(self.weight.device)]
                self._slice_cache[key] = w = w.contiguous()
            return w, bias
        return self.variants[key + "_w"], bias

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._slice_cache.clear()  # frozen slices are views of the full weights being replaced
        super()._load_from_state_dict(*args, **kwargs)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same:
            return x
        pt, pb = same_pads(x.shape[2], self.k, self.stride)
        pl, pr = same_pads(x.shape[3], self.k, self.stride)
        return F.pad(x, (pl, pr, pt, pb)) if (pt or pb or pl or pr) else x

    def act(self, y: torch.Tensor) -> torch.Tensor:
        if self.activation == "RELU6":
            return F.relu6(y)
        if self.activation == "RELU":
            return F.relu(y)
        return y

    def forward(self, x: torch.Tensor, width: float = 1.0, tiled: bool = False, act: bool = True) -> torch.Tensor:
        w, b = self.params_for(width)
        groups = x.shape[1] if self.depthwise else 1
        if self.depthwise and w.shape[0] != x.shape[1]:
            raise GranularityError(f"depthwise conv got {x.shape[1]} channels, its weights have {w.shape[0]}")
        x = self.pad(x)
        y = self._tiled(x, w, b, groups) if tiled else F.conv2d(x, w, b, self.stride, 0, 1, groups)
        return self.act(y) if act else y

    def _tiled(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
        """Operation-level partitioning on an already padded input: each output tile from its window + halo."""
        ho = (x.shape[2] - self.k) // self.stride + 1
        wo = (x.shape[3] - self.k) // self.stride + 1
        out = x.new_empty((x.shape[0], w.shape[0], ho, wo))
        for r0, r1 in _splits(ho, TILES[0]):
            for c0, c1 in _splits(wo, TILES[1]):
                win = x[
                    :,
                    :,
                    r0 * self.stride : (r1 - 1) * self.stride + self.k,
                    c0 * self.stride : (c1 - 1) * self.stride + self.k,
                ]
                out[:, :, r0:r1, c0:c1] = F.conv2d(win, w, b, self.stride, 0, 1, groups)
        return out

    def macs(self, in_ch: int, out_ch: int, ho: int, wo: int) -> float:
        per = 1 if self.depthwise else in_ch
        return float(out_ch * ho * wo * per * self.k * self.k)


def _account(
    stats: dict[str, list[float]],
    key: str,
    seconds: float,
    conv: GraphConv,
    x: torch.Tensor,
    y: torch.Tensor,
    level: str,
) -> None:
    """Add one conv's time, MACs, bytes (weights + input + output, float32) and peak activation bytes to ``key``."""
    c_in, c_out = x.shape[1], y.shape[1]
    macs = conv.macs(c_in, c_out, y.shape[2], y.shape[3])
    w_elems = c_out * (1 if conv.depthwise else c_in) * conv.k * conv.k + c_out
    in_elems, out_elems = x[0].numel(), y[0].numel()
    if level == "partitioned":  # the assembled output + one tile's padded window and result
        peak = in_elems + out_elems + (in_elems + out_elems) / (TILES[0] * TILES[1])
    else:
        peak = in_elems + out_elems
    row = stats.setdefault(key, [0.0, 0.0, 0.0, 0.0])
    row[0] += seconds
    row[1] += macs
    row[2] += 4.0 * (w_elems + in_elems + out_elems)
    row[3] = max(row[3], 4.0 * peak)


def _splits(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


# ---------------------------------------------------------------------- the detector
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
                    _account(stats, group or "overhead", time.perf_counter() - t0, conv, t[op["inputs"][0]], y, level)
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
        """Anchors for an input of ``side`` pixels.

        At the native side they are exactly MediaPipe's. At any other side the network still sees objects in
        pixels, so each anchor keeps its native *pixel* size and its native offset from the receptive-field centre
        of its cell (TF SAME padding shifts that centre differently at every input size); without this the boxes
        of a reduced resolution come out shrunk and shifted by up to 5 % of the image.
        """
        hit = self._anchor_cache.get(side)
        if hit is None:
            native_grids, native_centres = _level_geometry(NATIVE_SIDE, self._strided_kernels)
            grids, centres = _level_geometry(side, self._strided_kernels)
            base = generate_anchors(native_grids, self.anchor_spec)
            parts, pos = [], 0
            for level, ((ng, _), (g, _), nc, c) in enumerate(zip(native_grids, grids, native_centres, centres)):
                n_native = ng * ng
                per = 3 if level == 0 else 1 + len(self.anchor_spec.aspect_ratios)
                a = base[pos : pos + n_native * per].reshape(ng, ng, per, 4)
                pos += n_native * per
                offset = a[:g, 0, 0, 0] * NATIVE_SIDE - nc[:g]  # native anchor centre - native RF centre, px
                ctr = (c[:g] + offset) / side  # (g,)
                cy = ctr[:, None, None].expand(g, g, per)
                cx = ctr[None, :, None].expand(g, g, per)
                hw = a[:g, :g, :, 2:] * (NATIVE_SIDE / side)
                parts.append(torch.cat([cy[..., None], cx[..., None], hw], dim=-1).reshape(-1, 4))
            hit = torch.cat(parts)
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
        x, sizes = self.preprocess(images)
        boxes, logits = self.forward(x)
        return self.decode(boxes, logits, sizes, x.shape[2], score_threshold)


def graph_spec(graph: TfliteGraph) -> dict:
    """The graph without its weights, as plain JSON-able data (saved with the weights to rebuild the network)."""
    ops = []
    for op in graph.ops:
        ops.append(
            {
                "kind": op.kind,
                "inputs": list(op.inputs),
                "output": op.output,
                "output_shape": list(op.output_shape),
                "weight_shape": None if op.weight is None else list(op.weight.shape),
                "has_bias": op.bias is not None,
                "stride": op.stride,
                "padding": op.padding,
                "activation": op.activation,
                "axis": op.axis,
            }
        )
    return {
        "ops": ops,
        "inputs": [[n, list(s)] for n, s in graph.inputs],
        "outputs": [[n, list(s)] for n, s in graph.outputs],
    }


def graph_from_spec(spec: dict) -> TfliteGraph:
    """A weightless :class:`TfliteGraph` (zero weights of the saved shapes) to rebuild the module before loading."""
    ops = []
    for o in spec["ops"]:
        w = None if o["weight_shape"] is None else np.zeros(o["weight_shape"], np.float32)
        b = np.zeros(o["weight_shape"][0], np.float32) if (w is not None and o["has_bias"]) else None
        ops.append(
            TfliteOp(
                kind=o["kind"],
                inputs=list(o["inputs"]),
                output=o["output"],
                output_shape=tuple(o["output_shape"]),
                weight=w,
                bias=b,
                stride=int(o["stride"]),
                padding=o["padding"],
                activation=o["activation"],
                axis=int(o["axis"]),
            )
        )
    return TfliteGraph(
        ops=ops,
        inputs=[(n, tuple(s)) for n, s in spec["inputs"]],
        outputs=[(n, tuple(s)) for n, s in spec["outputs"]],
    )


__all__ = [
    "AnchorSpec",
    "DETECTOR_NAME",
    "GraphConv",
    "LAYER_GROUPS",
    "LAYER_NAMES",
    "SLIM_WIDTHS",
    "SsdDetector",
    "decode_boxes",
    "generate_anchors",
    "graph_from_spec",
    "graph_spec",
]
