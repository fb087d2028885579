"""Granularity-switchable convolution: one layer that runs at any level of the catalogue.

A :class:`SwitchableConv2d` holds its convolution weights once, at full width, and *slices* them in ``forward``:

- neuron levels (``neuron-75/50/25``) compute only the first ``round(w * out_channels)`` filters, with a
  switchable batch-norm (one ``BatchNorm2d`` per width in :data:`~agra_ros.granularity.levels.WIDTHS`), because
  the statistics of a narrower sub-network differ from the full one;
- the input side follows whatever the previous layer produced (``x.shape[1]`` channels), so a chain of layers
  at mixed levels needs no bookkeeping: the layer uses the first ``in`` columns of its weight;
- ``partitioned`` computes the full-width output in spatial tiles one after another; each tile reads its input
  window plus the halo (the receptive-field overlap) and zero padding only where the window touches the image
  border, so the result equals ``full`` (exactly up to float summation order) while the transient buffers are a
  tile's size rather than the whole map's.

The slicing and the tiling themselves are shared with the real detector: :mod:`agra_ros.granularity.slicing` and
:mod:`agra_ros.granularity.tiling`.

Input-aware batch-norm statistics: a layer's pre-norm statistics depend on how wide its *input* is, not only on
its own width. Per-width batch-norm alone is exact for uniform configurations, but in a mixed one (say a
``neuron-25`` layer feeding a ``full`` one) the ``full`` batch-norm's statistics are wrong and accuracy collapses
(measured: mAP@0.5 0.10 -> 0.91 on such a configuration once its statistics were recomputed). So each dense layer
also keeps running statistics per (input width, own width) pair, filled by :func:`collect_pair_statistics`
after training; in eval mode a pair that was calibrated uses them, any other falls back to the width's batch-norm
(the affine weights are always the width's: they were trained, the pair statistics only re-centre).

Switching is :meth:`SwitchableConv2d.set_level`: it stores a string and two integers. Nothing is allocated,
copied or recompiled, which is what makes per-frame switching cheap (the benchmark measures it in microseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, WIDTHS, GranularityError, level_index
from agra_ros.granularity.slicing import channels_at, slice_conv
from agra_ros.granularity.tiling import conv_output_size, partitioned_conv


@dataclass(frozen=True)
class ConvCost:
    """Analytic cost of one switchable layer for one input shape (batch 1, float32)."""

    macs: float
    """Multiply-accumulates of the convolution (batch-norm and activation are not counted)."""
    bytes: float
    """Bytes moved: the weights used + the input read + the output written, 4 bytes per float."""
    peak_act_bytes: float
    """Activation bytes alive at once while the layer runs (input, output and the transient buffers)."""
    out_shape: tuple[int, int, int]
    """Output (channels, height, width)."""


class SwitchableConv2d(nn.Module):
    """Conv2d + switchable BatchNorm2d + activation whose granularity level is set by :meth:`set_level`.

    Args:
        in_channels: full input channels (the layer accepts any count up to this).
        out_channels: full output channels.
        kernel_size, stride, padding, dilation: as in ``nn.Conv2d`` (square kernels).
        groups: 1 for a dense convolution, or ``in_channels == out_channels`` for a depthwise one (then the
            output width follows the input width and the level only selects the batch-norm).
        bias: add a (sliced) bias; usually ``False`` when a batch-norm follows.
        batch_norm: use a switchable batch-norm (one per width).
        activation: module applied after the batch-norm (``None`` for a linear layer).
        widths: the distinct widths, widest first (one batch-norm each).
        tiles: (rows, cols) of the ``partitioned`` level.
        switchable_out: ``False`` pins the output at full width (a head whose output is a fixed prediction);
            its input still follows the previous layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        batch_norm: bool = True,
        activation: nn.Module | None = None,
        widths: Sequence[float] = WIDTHS,
        tiles: tuple[int, int] = (2, 2),
        switchable_out: bool = True,
    ) -> None:
        super().__init__()
        if groups != 1 and not (groups == in_channels == out_channels):
            raise ValueError("SwitchableConv2d supports dense (groups=1) or depthwise (groups=in=out) convolutions")
        if tiles[0] < 1 or tiles[1] < 1:
            raise ValueError(f"tiles must be positive, got {tiles}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = (dilation * (kernel_size - 1)) // 2 if padding is None else padding
        self.dilation = dilation
        self.groups = groups
        self.depthwise = groups != 1
        self.widths = tuple(float(w) for w in widths)
        self.tiles = tiles
        self._switchable_out = switchable_out
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.bns = (
            nn.ModuleList(nn.BatchNorm2d(channels_at(w, out_channels)) for w in self.widths) if batch_norm else None
        )
        self.act = activation
        self._out_for_width = {w: channels_at(w, out_channels) for w in self.widths}
        n_w = len(self.widths)
        self._pairs = self.bns is not None and not self.depthwise
        if self._pairs:  # input-aware statistics, one row per (input width index, own width index)
            self.register_buffer("pair_mean", torch.zeros(n_w, n_w, out_channels))
            self.register_buffer("pair_var", torch.ones(n_w, n_w, out_channels))
            self.register_buffer("pair_count", torch.zeros(n_w, n_w))
        self._pair_ready = [[False] * n_w for _ in range(n_w)]
        self._in_index: dict[int, int] = {}
        for i in reversed(range(n_w)):  # input channel count -> width index (widest wins on ties)
            self._in_index[channels_at(self.widths[i], in_channels)] = i
        self.collect_pair_stats = False
        """While True (and training), record the statistics of off-diagonal (input width != own width) pairs."""
        self._level_state: dict[str, dict[str, object]] = {}
        self._build_level_state()
        self.level = "full"
        self._width_idx = 0
        self._k_out = out_channels

    # ------------------------------------------------------------------ level
    @property
    def switchable_out(self) -> bool:
        """False pins the output at full width (the converter pins layers whose output meets a residual add)."""
        return self._switchable_out

    @switchable_out.setter
    def switchable_out(self, value: bool) -> None:
        self._switchable_out = bool(value)
        if hasattr(self, "_out_for_width"):
            self._build_level_state()
            if "level" in self.__dict__:
                self.set_level(self.level)  # the current level's output width may have changed

    def _build_level_state(self) -> None:
        """What set_level writes, per level (levels whose width this layer lacks are absent)."""
        self._level_state = {}
        for lv in LEVELS:
            width = LEVEL_WIDTH[lv] if self._switchable_out else 1.0
            if width in self._out_for_width:
                idx = self.widths.index(width)
                self._level_state[lv] = {"level": lv, "_width_idx": idx, "_k_out": self._out_for_width[width]}

    def set_level(self, level: str) -> None:
        """Select the granularity level; O(1), no allocation (raises GranularityError for unknown levels).

        The three plain attributes are written straight into ``__dict__``: ``nn.Module.__setattr__`` would first
        search the parameter, buffer and module tables, which is most of the cost of a switch.
        """
        state = self._level_state.get(level)
        if state is None:
            level_index(level)  # raises for an unknown name
            width = LEVEL_WIDTH[level] if self.switchable_out else 1.0
            raise GranularityError(f"level {level!r} needs width {width}, this layer has widths {self.widths}")
        self.__dict__.update(state)

    @property
    def width(self) -> float:
        return self.widths[self._width_idx]

    def out_channels_for(self, level: str, in_channels: int | None = None) -> int:
        """Output channels this layer produces at ``level`` (a depthwise layer follows ``in_channels``)."""
        if self.depthwise:
            return self.in_channels if in_channels is None else in_channels
        return self._out_for_width[LEVEL_WIDTH[level] if self.switchable_out else 1.0]

    # ------------------------------------------------------------------ forward
    def _sliced_params(self, c_in: int) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        if c_in > self.in_channels:
            raise ValueError(f"layer takes at most {self.in_channels} input channels, got {c_in}")
        if self.depthwise:
            return *slice_conv(self.weight, self.bias, c_in, None), c_in, c_in
        return *slice_conv(self.weight, self.bias, self._k_out, c_in), self._k_out, 1

    def _bn_act(self, y: torch.Tensor, k: int, i_in: int = 0) -> torch.Tensor:
        if self.bns is not None:
            bn = self.bns[self._width_idx]
            j = self._width_idx
            if self._pairs and i_in != j and bn.num_features == k:
                if self.training:
                    if self.collect_pair_stats:
                        self._record_pair(y.detach(), i_in, j)
                elif self._pair_ready[i_in][j]:
                    y = F.batch_norm(
                        y,
                        self.pair_mean[i_in, j, :k],
                        self.pair_var[i_in, j, :k],
                        bn.weight,
                        bn.bias,
                        False,
                        0.0,
                        bn.eps,
                    )
                    return self.act(y) if self.act is not None else y
            if bn.num_features != k:  # depthwise layer fed another width: the BN of that width, else full sliced
                bn = next((b for b in self.bns if b.num_features == k), self.bns[0])
            if bn.num_features == k:
                y = bn(y)
            else:
                y = F.batch_norm(
                    y,
                    bn.running_mean[:k],
                    bn.running_var[:k],
                    bn.weight[:k],
                    bn.bias[:k],
                    False,
                    0.0,
                    bn.eps,
                )
        if self.act is not None:
            y = self.act(y)
        return y

    @torch.no_grad()
    def _record_pair(self, y: torch.Tensor, i_in: int, j: int) -> None:
        """Cumulative average (each batch weighs the same, as BatchNorm with ``momentum=None``)."""
        k = y.shape[1]
        n = self.pair_count[i_in, j] + 1.0
        self.pair_count[i_in, j] = n
        self.pair_mean[i_in, j, :k] += (y.mean(dim=(0, 2, 3)) - self.pair_mean[i_in, j, :k]) / n
        var = y.var(dim=(0, 2, 3), unbiased=True) if y.numel() > k else torch.ones_like(y[0, :, 0, 0])
        self.pair_var[i_in, j, :k] += (var - self.pair_var[i_in, j, :k]) / n
        self._pair_ready[i_in][j] = True

    def reset_pair_statistics(self) -> None:
        """Forget the input-aware statistics (every pair falls back to its width's batch-norm)."""
        if self._pairs:
            self.pair_mean.zero_()
            self.pair_var.fill_(1.0)
            self.pair_count.zero_()
        self._pair_ready = [[False] * len(self.widths) for _ in self.widths]

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):  # type: ignore[no-untyped-def]
        # weights saved before input-aware statistics existed load with none calibrated (the old behaviour)
        if self._pairs:
            defaults = {"pair_mean": torch.zeros_like, "pair_var": torch.ones_like, "pair_count": torch.zeros_like}
            for name, make in defaults.items():
                state_dict.setdefault(prefix + name, make(getattr(self, name)))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if self._pairs:
            ready = (self.pair_count > 0).tolist()
            self._pair_ready = [[bool(v) for v in row] for row in ready]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias, k, groups = self._sliced_params(x.shape[1])
        i_in = self._in_index.get(x.shape[1], 0)
        if self.level == "partitioned" and (self.tiles[0] > 1 or self.tiles[1] > 1):
            return self._forward_tiled(x, weight, bias, k, groups, i_in)
        y = F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)
        return self._bn_act(y, k, i_in)

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        return (
            conv_output_size(h, self.kernel_size, self.stride, self.padding, self.dilation),
            conv_output_size(w, self.kernel_size, self.stride, self.padding, self.dilation),
        )

    def _forward_tiled(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, k: int, groups: int, i_in: int = 0
    ) -> torch.Tensor:
        """Operation-level partitioning (:func:`~agra_ros.granularity.tiling.partitioned_conv`)."""
        fuse = not self.training  # in training the batch-norm needs the statistics of the whole map

        def conv(window: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(window, weight, bias, self.stride, 0, self.dilation, groups)
            return self._bn_act(y, k, i_in) if fuse else y

        out = partitioned_conv(conv, x, self.kernel_size, self.stride, self.padding, self.dilation, self.tiles)
        return out if fuse else self._bn_act(out, k, i_in)

    # ------------------------------------------------------------------ cost
    def cost(self, level: str, in_channels: int, h: int, w: int) -> ConvCost:
        """Analytic MACs, bytes moved and peak activation bytes at ``level`` for a (in_channels, h, w) input.

        Peak activation model (float32): ``full`` holds the input, the convolution output and the batch-norm
        output at once; ``partitioned`` holds the input, the assembled output and one tile's padded input,
        convolution output and batch-norm output.
        """
        level_index(level)
        k = self.out_channels_for(level, in_channels)
        h_out, w_out = self.output_hw(h, w)
        per_out = (1 if self.depthwise else in_channels) * self.kernel_size * self.kernel_size
        macs = float(k * h_out * w_out * per_out)
        weight_elems = k * per_out + (k if self.bias is not None else 0) + (4 * k if self.bns is not None else 0)
        in_elems = in_channels * h * w
        out_elems = k * h_out * w_out
        n_bufs = 2 if self.bns is not None else 1
        if level == "partitioned" and (self.tiles[0] > 1 or self.tiles[1] > 1):
            th = -(-h_out // self.tiles[0])
            tw = -(-w_out // self.tiles[1])
            span = self.dilation * (self.kernel_size - 1) + 1
            tile_in = in_channels * ((th - 1) * self.stride + span) * ((tw - 1) * self.stride + span)
            peak = in_elems + out_elems + tile_in + n_bufs * k * th * tw
        else:
            peak = in_elems + n_bufs * out_elems
        return ConvCost(
            macs=macs,
            bytes=4.0 * (weight_elems + in_elems + out_elems),
            peak_act_bytes=4.0 * peak,
            out_shape=(k, h_out, w_out),
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, groups={self.groups}, "
            f"widths={self.widths}, level={self.level}"
        )


def switchable_layers(model: nn.Module) -> list[tuple[str, SwitchableConv2d]]:
    """All switchable layers of ``model`` in registration order, with their qualified names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, SwitchableConv2d)]


def collect_pair_statistics(model: nn.Module, enabled: bool) -> None:
    """Start (``enabled``, after resetting them) or stop recording every layer's input-aware statistics.

    While recording, run the model in training mode over calibration batches at mixed configurations; the
    per-width batch-norms' own running statistics are frozen meanwhile (momentum 0), so the statistics of the
    uniform configurations stay what they were calibrated to.
    """
    for _, layer in switchable_layers(model):
        if enabled:
            layer.reset_pair_statistics()
        layer.collect_pair_stats = enabled
        if layer.bns is not None:
            for bn in layer.bns:
                if enabled:
                    bn._agra_momentum = bn.momentum  # type: ignore[attr-defined]
                    bn.momentum = 0.0
                elif hasattr(bn, "_agra_momentum"):
                    bn.momentum = bn._agra_momentum
                    del bn._agra_momentum


def set_levels(layers: Sequence[SwitchableConv2d], levels: Sequence[str]) -> None:
    """Set one level per layer (lengths must match)."""
    if len(layers) != len(levels):
        raise GranularityError(f"{len(levels)} levels for {len(layers)} switchable layers")
    for layer, lv in zip(layers, levels):
        layer.set_level(lv)


__all__ = [
    "ConvCost",
    "LEVELS",
    "SwitchableConv2d",
    "channels_at",
    "collect_pair_statistics",
    "set_levels",
    "switchable_layers",
]
