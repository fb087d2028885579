"""Neuron-level slicing: the weights a convolution uses when it computes only some of its output channels.

Why this module exists: every neuron level (``neuron-75/50/25``) of every network keeps a share of a layer's output
channels (the rows of its weight) and reads only the channels the previous layer produced (the columns). The
synthetic test double keeps the *first* channels (its weights were trained slimmable, so the order is the
importance), the real SSD keeps its *ranked* channels (indices); the slicing is the same and is written once here.
"""

from __future__ import annotations

import torch

ChannelSelection = int | torch.Tensor | None
"""Which channels a slice keeps: ``None`` all of them, an ``int`` the first that many, a tensor those indices in
that order."""


def channels_at(width: float, channels: int) -> int:
    """Number of channels a layer of ``channels`` computes at share ``width`` (at least one)."""
    return max(1, int(round(width * channels)))


def keep_channels(t: torch.Tensor, keep: ChannelSelection, dim: int = 0) -> torch.Tensor:
    """``t`` restricted to the ``keep`` channels along ``dim`` (0: output rows, 1: input columns).

    A count slices (a view, nothing copied); indices gather (a copy, on ``t``'s device)."""
    if keep is None:
        return t
    index = (slice(None),) * dim
    if isinstance(keep, int):
        return t[index + (slice(None, keep),)]
    return t[index + (keep.to(t.device),)]


def slice_conv(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_keep: ChannelSelection,
    in_keep: ChannelSelection,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight rows ``out_keep`` x columns ``in_keep`` of a convolution and its bias entries ``out_keep``.

    A depthwise convolution has one column per filter: pass ``in_keep=None`` (its rows follow the input)."""
    w = keep_channels(keep_channels(weight, out_keep, 0), in_keep, 1)
    return w, (None if bias is None else keep_channels(bias, out_keep, 0))


__all__ = ["ChannelSelection", "channels_at", "keep_channels", "slice_conv"]
