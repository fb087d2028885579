"""Cost profiling (``agra-ros profile``): the per-layer, per-level cost table of the detector on this device.

For every switchable layer x level x input width x resolution scale it records the measured latency (warm,
median of ``repeats`` single-frame runs at a fixed ``torch.set_num_threads``), the MACs and the bytes moved
(weights used + input read + output written, 4 bytes per float, analytic from the shapes) and the peak activation
memory (analytic model of :meth:`SwitchableConv2d.cost`). The *overhead* per scale and head input width is the
rest of a frame measured directly: pre-processing (resize of a 640x480 frame, normalisation), the two upsample +
skip merges, the head convolutions, peak extraction, box decoding and NMS on a real synthetic frame.

The frame cost of a configuration is then the sum of its layers' entries plus the overhead (the additive model of
:class:`agra_ros.tables.files.CostTable`). The profiler checks that model against the measured end-to-end
latency of ``AgraDetector.detect`` on random configurations and stores the error in the table (``additive_check``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agra_ros.detectors.measure import assemble_cost_table, report_cost_table, time_call
from agra_ros.detectors.synthetic.network import (
    DETECTOR_NAME,
    HEAD_INPUT_FROM,
    INPUT_FROM,
    AgraDetector,
    load_detector,
    merge_skip,
)
from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES, WIDTHS, GranularityConfig
from agra_ros.granularity.switchable import channels_at
from agra_ros.paths import run_dir
from agra_ros.tables.files import write_json_atomic
from agra_ros.workload.scene import make_dataset


def layer_input_shapes(model: AgraDetector, scale: float) -> dict[str, tuple[int, int]]:
    """Spatial size (h, w) of each switchable layer's input at ``scale`` (and of the head's, as ``head_in``)."""
    shapes: dict[str, tuple[int, int]] = {}
    named = list(zip(model.switchable_layer_names(), model.switchable_layers())) + [("head_in", model.head_hidden)]
    hooks = [
        layer.register_forward_pre_hook(lambda m, a, n=name: shapes.__setitem__(n, tuple(a[0].shape[2:])))
        for name, layer in named
    ]
    side = model.input_side(scale)
    with torch.inference_mode():
        model(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    return shapes


def _in_channels(model: AgraDetector, name: str, in_width: float) -> int:
    src = INPUT_FROM[name]
    if src is None:
        return 3
    return channels_at(in_width, getattr(model, src).out_channels)


@torch.inference_mode()
def profile_layers(model: AgraDetector, repeats: int) -> list[dict[str, Any]]:
    entries = []
    for scale in RESOLUTION_SCALES:
        shapes = layer_input_shapes(model, scale)
        for name, layer in zip(model.switchable_layer_names(), model.switchable_layers()):
            in_widths = (1.0,) if INPUT_FROM[name] is None else WIDTHS
            h, w = shapes[name]
            for in_width in in_widths:
                c_in = _in_channels(model, name, in_width)
                x = torch.randn(1, c_in, h, w)
                for level in LEVELS:
                    layer.set_level(level)
                    lat = time_call(lambda layer=layer, x=x: layer(x), repeats)
                    cost = layer.cost(level, c_in, h, w)
                    entries.append(
                        {
                            "layer": name,
                            "level": level,
                            "in_width": in_width,
                            "scale": scale,
                            "latency_ms": round(lat * 1e3, 5),
                            "macs": cost.macs,
                            "bytes": cost.bytes,
                            "peak_act_bytes": cost.peak_act_bytes,
                        }
                    )
                layer.set_level("full")
    return entries


@torch.inference_mode()
def profile_overhead(model: AgraDetector, frame: np.ndarray, repeats: int) -> list[dict[str, Any]]:
    """Pre-processing + upsample/merge + head + decode/NMS per (scale, head input width), measured directly."""
    rows = []
    n_layers = len(model.switchable_layers())
    for scale in RESOLUTION_SCALES:
        shapes = layer_input_shapes(model, scale)
        for width in WIDTHS:
            level = {1.0: "full", 0.75: "neuron-75", 0.5: "neuron-50", 0.25: "neuron-25"}[width]
            model.set_config(GranularityConfig.uniform(level, n_layers, scale))
            x, sizes = model.preprocess(frame)
            out = model(x)
            up1_out = torch.randn(1, channels_at(width, model.up1.out_channels), *shapes["up1"])
            f8 = torch.randn(1, channels_at(width, model.s4.out_channels), *shapes["up2"])
            up2_out = torch.randn(1, channels_at(width, model.up2.out_channels), *shapes["up2"])
            f4 = torch.randn(1, channels_at(width, model.s2.out_channels), *shapes["head_in"])
            head_in = torch.randn(1, channels_at(width, model.up2.out_channels), *shapes["head_in"])
            t_pre = time_call(lambda: model.preprocess(frame), repeats)
            t_merge = time_call(
                lambda a=up1_out, b=f8, c=up2_out, d=f4: (
                    merge_skip(F.interpolate(a, scale_factor=2.0, mode="nearest"), b),
                    merge_skip(F.interpolate(c, scale_factor=2.0, mode="nearest"), d),
                ),
                repeats,
            )
            t_head = time_call(lambda h=head_in: model.head_out(model.head_hidden(h)), repeats)
            t_decode = time_call(lambda o=out, z=sizes: model.decode(o, z, 0.3), repeats)
            c_in = head_in.shape[1]
            hh, ww = shapes["head_in"]
            hid = model.head_hidden.cost("full", c_in, hh, ww)
            hc = model.head_hidden.out_channels
            k_out = model.head_out.out_channels
            head_macs = hid.macs + hc * k_out * hh * ww
            head_bytes = hid.bytes + 4.0 * (hc * k_out + k_out + k_out * hh * ww)
            side = model.input_side(scale)
            pre_bytes = frame.nbytes + 4.0 * 3 * side * side
            rows.append(
                {
                    "scale": scale,
                    "in_width": width,
                    "latency_ms": round((t_pre + t_merge + t_head + t_decode) * 1e3, 5),
                    "macs": head_macs,
                    "bytes": head_bytes + pre_bytes,
                    "peak_act_bytes": max(hid.peak_act_bytes, pre_bytes),
                    "parts_ms": {
                        "preprocess": round(t_pre * 1e3, 4),
                        "upsample_merge": round(t_merge * 1e3, 4),
                        "head": round(t_head * 1e3, 4),
                        "decode_nms": round(t_decode * 1e3, 4),
                    },
                }
            )
    model.set_config(GranularityConfig.uniform("full", n_layers))
    return rows


def build_cost_table(
    model: AgraDetector, device_name: str, threads: int, repeats: int, n_check: int = 30
) -> dict[str, Any]:
    """Profile ``model`` and return the cost-table dict (format ``agra_ros/cost-table`` v1)."""
    torch.set_num_threads(threads)
    model.eval()
    frame = make_dataset(123_456, 1)[0].image
    t0 = time.perf_counter()
    entries = profile_layers(model, repeats)
    overhead = profile_overhead(model, frame, repeats)
    return assemble_cost_table(
        model,
        frame,
        device_name=device_name,
        detector=DETECTOR_NAME,
        input_side=model.arch.input_size,
        threads=threads,
        repeats=repeats,
        layers=[{"name": n, "input_from": INPUT_FROM[n]} for n in model.switchable_layer_names()],
        head_input_from=list(HEAD_INPUT_FROM),
        entries=entries,
        overhead=overhead,
        started=t0,
        n_check=n_check,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agra-ros profile", description="measure the detector's cost table")
    p.add_argument("--device-name", default="x86_generic", help="device profile name the table is filed under")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads during the measurement")
    p.add_argument("--repeats", type=int, default=25, help="timed runs per entry (median reported)")
    p.add_argument("--check-configs", type=int, default=30, help="random configurations for the additive check")
    p.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    p.add_argument(
        "--out",
        default=None,
        help="output file (default: runs/profile/<device>.json; the shipped table: agra_ros/data/cost_tables/<device>.json)",
    )
    args = p.parse_args(argv)
    model = load_detector(args.weights)
    data = build_cost_table(model, args.device_name, args.threads, args.repeats, args.check_configs)
    out = Path(args.out) if args.out else run_dir("profile") / f"{args.device_name}.json"
    write_json_atomic(out, data)
    report_cost_table(out, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
