"""Operation-level partitioning: one convolution computed in spatial tiles, halo-exact.

Why this module exists: the ``partitioned`` level is the same computation in every network (the synthetic test
double's :class:`~agra_ros.granularity.switchable.SwitchableConv2d` and the real SSD's graph convolutions), so it
is written once here and each network hands in its convolution as a callable. The output map is cut into tiles
computed one after another; each tile reads its input window plus the halo (the receptive-field overlap), with
zero padding only where the window crosses the image border, and the callable convolves it without padding of its
own. The result equals the dense convolution (exactly up to float summation order) while the transient buffers
are a tile's size rather than the whole map's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def conv_output_size(n_in: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output rows (or columns) of a convolution over ``n_in`` input rows with symmetric ``padding``."""
    span = dilation * (kernel_size - 1) + 1
    return (n_in + 2 * padding - span) // stride + 1


def tile_bounds(n_out: int, parts: int) -> list[tuple[int, int]]:
    """``[start, end)`` of the tiles that cut ``n_out`` output rows into ``parts`` (ceil-sized, the last shorter)."""
    step = -(-n_out // parts)
    return [(a, min(a + step, n_out)) for a in range(0, n_out, step)]


def input_window(
    o0: int, o1: int, n_in: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> tuple[int, int, int, int]:
    """Input rows ``[lo, hi)`` that output rows ``[o0, o1)`` read (halo included, clamped to the map), and the
    zero padding (before, after) the window needs where it crosses the border."""
    span = dilation * (kernel_size - 1) + 1
    lo = o0 * stride - padding
    hi = (o1 - 1) * stride - padding + span
    return max(lo, 0), min(hi, n_in), max(0, -lo), max(0, hi - n_in)


def partitioned_conv(
    conv: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    tiles: tuple[int, int] = (2, 2),
) -> torch.Tensor:
    """Run ``conv`` tile by tile over the NCHW map ``x`` and assemble the full output.

    ``conv`` maps one padded input window to its output tile: a convolution of the given ``kernel_size``,
    ``stride`` and ``dilation`` with *no* padding (``padding`` here is the one the dense convolution would use;
    the windows get it only at the border). Anything pointwise after the convolution (bias, batch-norm with fixed
    statistics, activation) may run inside ``conv`` too. ``tiles`` is (rows, cols).
    """
    h_out = conv_output_size(x.shape[2], kernel_size, stride, padding, dilation)
    w_out = conv_output_size(x.shape[3], kernel_size, stride, padding, dilation)
    out: torch.Tensor | None = None
    for r0, r1 in tile_bounds(h_out, tiles[0]):
        y_lo, y_hi, pt, pb = input_window(r0, r1, x.shape[2], kernel_size, stride, padding, dilation)
        for c0, c1 in tile_bounds(w_out, tiles[1]):
            x_lo, x_hi, pl, pr = input_window(c0, c1, x.shape[3], kernel_size, stride, padding, dilation)
            window = x[:, :, y_lo:y_hi, x_lo:x_hi]
            if pt or pb or pl or pr:
                window = F.pad(window, (pl, pr, pt, pb))
            y = conv(window)
            if out is None:
                out = y.new_empty((x.shape[0], y.shape[1], h_out, w_out))
            out[:, :, r0:r1, c0:c1] = y
    if out is None:
        raise ValueError(f"empty output ({h_out}x{w_out}) for a {tuple(x.shape)} input")
    return out


__all__ = ["conv_output_size", "input_window", "partitioned_conv", "tile_bounds"]
