"""The TFLite graph's ops in torch: convolutions with their slim variants, TF SAME padding, the weightless spec.

Why this module exists: it is the executor's vocabulary, apart from the detector that wires it into SSD-MobileNetV2
(:mod:`agra_ros.detectors.ssd.network`). A :class:`GraphConv` keeps the pretrained full weights frozen and one set
of parameters per neuron level it takes part in, so nothing a slim level learns changes the full configuration;
its neuron-level slicing and its operation-level partitioning (``partitioned``: 2x2 spatial tiles, halo-exact) are
the shared ones of :mod:`agra_ros.granularity.slicing` and :mod:`agra_ros.granularity.tiling`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agra_ros.detectors.ssd.tflite_import import TfliteGraph, TfliteOp
from agra_ros.granularity.levels import GranularityError
from agra_ros.granularity.slicing import keep_channels, slice_conv
from agra_ros.granularity.tiling import partitioned_conv

TILES = (2, 2)
"""(rows, cols) of the ``partitioned`` level."""


def width_key(width: float) -> str:
    """Name of a neuron level's parameters (``w75`` for width 0.75)."""
    return f"w{int(round(width * 100))}"


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
        self.variants[key + "_b"] = nn.Parameter(keep_channels(self.bias, out_idx).clone())
        if out_idx is None:
            w = keep_channels(self.weight, None if self.depthwise else in_idx, dim=1)
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
                w = slice_conv(self.weight, None, *self._slices[key])[0]
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
        if tiled:  # operation-level partitioning of the already padded input
            y = partitioned_conv(
                lambda t: F.conv2d(t, w, b, self.stride, 0, 1, groups), x, self.k, self.stride, tiles=TILES
            )
        else:
            y = F.conv2d(x, w, b, self.stride, 0, 1, groups)
        return self.act(y) if act else y

    def macs(self, in_ch: int, out_ch: int, ho: int, wo: int) -> float:
        per = 1 if self.depthwise else in_ch
        return float(out_ch * ho * wo * per * self.k * self.k)


def account_conv(
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


__all__ = ["TILES", "GraphConv", "account_conv", "graph_from_spec", "graph_spec", "same_pads", "width_key"]
