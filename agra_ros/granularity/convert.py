"""Convert the conv layers of an existing torch model into granularity-switchable ones.

:func:`convert_model` replaces every dense or depthwise ``nn.Conv2d`` (and the ``nn.BatchNorm2d`` that directly
follows it inside an ``nn.Sequential``, e.g. torchvision's ``Conv2dNormActivation``) by a
:class:`~agra_ros.granularity.switchable.SwitchableConv2d` holding the same weights; every width's batch-norm
starts as a slice of the original one. The converted model at ``full`` computes exactly what the original did.

Neuron levels keep the most important filters: :func:`rank_filters` ranks each layer's filters once by their L1
norm and reorders them so the first ``k`` are the most important, permuting the layer's batch-norm and the input
channels of the layers that read it. That is only correct where the layer's output reaches *only* convolutions,
through channel-wise ops (activations, pooling, depthwise convs, which are permuted along). A torch.fx trace of
the model decides this per layer; outputs that meet a residual add, a concatenation, a squeeze-excitation
multiply, a flatten or the model output are *unsafe*: not reordered, and (``pin_unsafe=True``) pinned at full
width, because a narrower output there would not line up with the other operand. The report lists both sets.

Accuracy cost without retraining (``python -m agra_ros.bench.detector_convert --plain PLAIN.pt``, on our detector:
a plain detector trained only at full width, converted, vs. the slimmable-trained one, mAP@0.5 on the held-out
synthetic validation set): see the table that benchmark prints and the numbers below. Slicing a network that was
never trained to be sliced costs much of its accuracy at the narrower levels even with L1 ranking and batch-norm
slices; that is why the shipped detector is trained with the sandwich rule instead.

MEASURED_PLACEHOLDER
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from agra_ros.granularity.levels import WIDTHS
from agra_ros.granularity.switchable import SwitchableConv2d, channels_at

PASS_THROUGH_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.SiLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.Identity,
    nn.Dropout,
    nn.MaxPool2d,
    nn.AvgPool2d,
)
"""Modules that act per channel: a layer's channel order passes through them unchanged."""

PASS_THROUGH_FUNCTIONS = {
    F.relu,
    F.relu6,
    F.hardswish,
    F.silu,
    F.leaky_relu,
    F.gelu,
    F.max_pool2d,
    F.avg_pool2d,
    F.dropout,
    F.interpolate,
    torch.relu,
}


@dataclass
class ConversionReport:
    """What the converter did, by qualified module name."""

    converted: list[str] = field(default_factory=list)
    """Conv layers replaced by SwitchableConv2d."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Conv layers left as they were, with the reason (grouped but not depthwise, ...)."""
    reordered: list[str] = field(default_factory=list)
    """Dense layers whose filters were ranked by L1 norm and reordered (neuron levels keep the strongest)."""
    unsafe: dict[str, str] = field(default_factory=dict)
    """Dense layers whose output meets a non-convolution consumer, with that consumer."""
    pinned: list[str] = field(default_factory=list)
    """Unsafe layers pinned at full width (their neuron levels compute all filters)."""

    def summary(self) -> str:
        return (
            f"converted {len(self.converted)} conv layers ({len(self.skipped)} skipped); "
            f"{len(self.reordered)} ranked and reordered (neuron levels effective); "
            f"{len(self.unsafe)} unsafe for neuron levels ({len(self.pinned)} pinned at full width)"
        )


# ---------------------------------------------------------------------- replacement
def _switchable_from(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, widths: Sequence[float], tiles: tuple[int, int]):
    k = conv.kernel_size[0]
    if conv.kernel_size[0] != conv.kernel_size[1] or conv.stride[0] != conv.stride[1]:
        raise ValueError("non-square kernel or stride")
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.padding[0] != conv.padding[1]:
        raise ValueError("only symmetric zero padding is supported")
    if conv.dilation[0] != conv.dilation[1]:
        raise ValueError("non-square dilation")
    layer = SwitchableConv2d(
        conv.in_channels,
        conv.out_channels,
        k,
        conv.stride[0],
        conv.padding[0],
        conv.dilation[0],
        conv.groups,
        bias=conv.bias is not None,
        batch_norm=bn is not None,
        activation=None,
        widths=widths,
        tiles=tiles,
    )
    with torch.no_grad():
        layer.weight.copy_(conv.weight)
        if conv.bias is not None:
            layer.bias.copy_(conv.bias)
    if bn is not None:
        layer.bns[0].load_state_dict(bn.state_dict())
        for b in layer.bns:
            b.eps, b.momentum = bn.eps, bn.momentum
        inherit_batch_norm(layer)
    layer.train(conv.training)
    return layer.to(conv.weight.device)


def inherit_batch_norm(layer: SwitchableConv2d) -> None:
    """Set every narrower batch-norm to the slice of the full-width one (what a converted layer starts from)."""
    if layer.bns is None:
        return
    full = layer.bns[0]
    with torch.no_grad():
        for b in layer.bns[1:]:
            k = b.num_features
            b.weight.copy_(full.weight[:k])
            b.bias.copy_(full.bias[:k])
            b.running_mean.copy_(full.running_mean[:k])
            b.running_var.copy_(full.running_var[:k])
            b.num_batches_tracked.copy_(full.num_batches_tracked)


def replace_convs(
    model: nn.Module,
    widths: Sequence[float] = WIDTHS,
    tiles: tuple[int, int] = (2, 2),
    report: ConversionReport | None = None,
) -> ConversionReport:
    """Replace Conv2d (+ following BatchNorm2d inside a Sequential) by SwitchableConv2d, in place."""
    report = report or ConversionReport()
    for parent_name, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if not isinstance(child, nn.Conv2d) or isinstance(child, SwitchableConv2d):
                continue
            qual = f"{parent_name}.{name}" if parent_name else name
            if child.groups != 1 and not (child.groups == child.in_channels == child.out_channels):
                report.skipped[qual] = f"grouped convolution (groups={child.groups})"
                continue
            bn = None
            if isinstance(parent, nn.Sequential) and i + 1 < len(children):
                nxt = children[i + 1][1]
                if isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == child.out_channels:
                    bn = nxt
            try:
                new = _switchable_from(child, bn, widths, tiles)
            except ValueError as exc:
                report.skipped[qual] = str(exc)
                continue
            setattr(parent, name, new)
            if bn is not None:
                setattr(parent, children[i + 1][0], nn.Identity())
            report.converted.append(qual)
    return report


# ---------------------------------------------------------------------- ranking
class _LeafTracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, SwitchableConv2d) or super().is_leaf_module(m, qualname)


def _consumers(
    node: torch.fx.Node, modules: dict[str, nn.Module]
) -> tuple[list[SwitchableConv2d], list[SwitchableConv2d], str | None]:
    """Dense conv consumers and depthwise pass-throughs reached from ``node``; or the first unsafe consumer."""
    dense: list[SwitchableConv2d] = []
    dw: list[SwitchableConv2d] = []
    stack = list(node.users)
    seen: set[torch.fx.Node] = set()
    while stack:
        user = stack.pop()
        if user in seen:
            continue
        seen.add(user)
        if user.op == "call_module":
            mod = modules[str(user.target)]
            if isinstance(mod, SwitchableConv2d):
                if mod.depthwise:
                    dw.append(mod)
                    stack.extend(user.users)
                else:
                    dense.append(mod)
                continue
            if isinstance(mod, PASS_THROUGH_MODULES):
                stack.extend(user.users)
                continue
            return dense, dw, f"module {user.target} ({type(mod).__name__})"
        if user.op == "call_function" and user.target in PASS_THROUGH_FUNCTIONS and user.args[0] in seen | {node}:
            stack.extend(user.users)
            continue
        if (
            user.op == "call_method"
            and user.target in ("relu", "relu_", "contiguous")
            and user.args[0] in seen | {node}
        ):
            stack.extend(user.users)
            continue
        return dense, dw, f"{user.op} {getattr(user.target, '__name__', user.target)}"
    return dense, dw, None


def _permute_out(layer: SwitchableConv2d, perm: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(layer.weight[perm])
        if layer.bias is not None:
            layer.bias.copy_(layer.bias[perm])
        if layer.bns is not None:
            full = layer.bns[0]
            for t in (full.weight, full.bias, full.running_mean, full.running_var):
                t.copy_(t[perm])


def _permute_in(layer: SwitchableConv2d, perm: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(layer.weight[:, perm])


def filter_importance(layer: SwitchableConv2d) -> torch.Tensor:
    """L1 norm of each output filter (the ranking criterion)."""
    return layer.weight.detach().abs().sum(dim=(1, 2, 3))


def rank_filters(
    model: nn.Module,
    trace_root: nn.Module | None = None,
    pin_unsafe: bool = False,
    report: ConversionReport | None = None,
) -> ConversionReport:
    """Rank and reorder the filters of every dense switchable layer whose output only feeds convolutions.

    ``trace_root`` is the (sub)module torch.fx traces (default: ``model``); layers outside it are treated as
    unsafe. Every narrower batch-norm is reset to the slice of the (permuted) full one afterwards.
    """
    report = report or ConversionReport()
    root = trace_root if trace_root is not None else model
    prefix = next((n for n, m in model.named_modules() if m is root), None)
    if prefix is None:
        raise ValueError("trace_root is not a submodule of model")
    graph = _LeafTracer().trace(root)
    modules = dict(root.named_modules())
    traced: set[str] = set()
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        layer = modules[str(node.target)]
        if not isinstance(layer, SwitchableConv2d) or layer.depthwise:
            continue
        qual = f"{prefix}.{node.target}" if prefix else str(node.target)
        traced.add(qual)
        dense, dw, bad = _consumers(node, modules)
        if bad is not None or not dense:
            report.unsafe[qual] = bad or "no convolution consumer"
            if pin_unsafe:
                layer.switchable_out = False
                report.pinned.append(qual)
            continue
        perm = torch.argsort(filter_importance(layer), descending=True)
        _permute_out(layer, perm)
        for d in dw:
            _permute_out(d, perm)
        for c in dense:
            _permute_in(c, perm)
        report.reordered.append(qual)
    for name, m in model.named_modules():
        if isinstance(m, SwitchableConv2d):
            if not m.depthwise and name not in traced:
                report.unsafe[name] = "outside the traced module"
                if pin_unsafe:
                    m.switchable_out = False
                    report.pinned.append(name)
            inherit_batch_norm(m)
    return report


def convert_model(
    model: nn.Module,
    trace_root: nn.Module | None = None,
    widths: Sequence[float] = WIDTHS,
    tiles: tuple[int, int] = (2, 2),
    rank: bool = True,
) -> ConversionReport:
    """Make ``model``'s conv layers switchable (in place), rank filters where safe, pin the unsafe ones.

    Returns the report; set levels with ``SwitchableConv2d.set_level`` on the layers it names.
    """
    report = replace_convs(model, widths, tiles)
    if rank:
        rank_filters(model, trace_root, pin_unsafe=True, report=report)
    return report


def neuron_macs_share(layer: SwitchableConv2d, width: float, in_width: float) -> float:
    """Expected MAC share of a dense layer at ``width`` fed ``in_width`` (about width * in_width)."""
    k = channels_at(width, layer.out_channels)
    c = channels_at(in_width, layer.in_channels)
    return (k * c) / (layer.out_channels * layer.in_channels)


__all__ = [
    "ConversionReport",
    "convert_model",
    "filter_importance",
    "inherit_batch_norm",
    "neuron_macs_share",
    "rank_filters",
    "replace_convs",
]
