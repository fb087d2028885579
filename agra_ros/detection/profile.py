"""Cost profiling (``agra-ros profile``): the per-layer, per-level cost table of the detector on this device.

For every switchable layer x level x input width x resolution scale it records the measured latency (warm,
median of ``repeats`` single-frame runs at a fixed ``torch.set_num_threads``), the MACs and the bytes moved
(weights used + input read + output written, 4 bytes per float, analytic from the shapes) and the peak activation
memory (analytic model of :meth:`SwitchableConv2d.cost`). The *overhead* per scale and head input width is the
rest of a frame measured directly: pre-processing (resize of a 640x480 frame, normalisation), the two upsample +
skip merges, the head convolutions, peak extraction, box decoding and NMS on a real synthetic frame.

The frame cost of a configuration is then the sum of its layers' entries plus the overhead (the additive model of
:class:`agra_ros.detection.tables.CostTable`). The profiler checks that model against the measured end-to-end
latency of ``AgraDetector.detect`` on random configurations and stores the error in the table (``additive_check``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agra_ros.detection.evaluate import random_configs
from agra_ros.detection.model import (
    DETECTOR_NAME,
    HEAD_INPUT_FROM,
    INPUT_FROM,
    AgraDetector,
    load_detector,
    merge_skip,
)
from agra_ros.detection.tables import COST_FORMAT, TABLE_VERSION, CostTable, write_json_atomic
from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES, WIDTHS, GranularityConfig
from agra_ros.granularity.switchable import channels_at
from agra_ros.paths import run_dir
from agra_ros.workload.scene import make_dataset


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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


@torch.inference_mode()
def measure_end_to_end(model: AgraDetector, frame: np.ndarray, config: GranularityConfig, repeats: int) -> float:
    """Median seconds of ``detect`` (pre-processing to NMS) on one frame at ``config``."""
    model.set_config(config)
    return time_call(lambda: model.detect(frame, 0.3), repeats)


def additive_check(
    model: AgraDetector, table: CostTable, frame: np.ndarray, n_configs: int, repeats: int, seed: int = 1
) -> dict[str, Any]:
    """Measured end-to-end latency vs the additive model on random configurations."""
    n_layers = len(model.switchable_layer_names())
    rows = []
    for c in random_configs(n_configs, n_layers, seed):
        measured = measure_end_to_end(model, frame, c, repeats)
        predicted = table.frame_cost(c).latency_s
        rows.append({"config": c.short(), "measured_ms": measured * 1e3, "predicted_ms": predicted * 1e3})
    err = np.array([abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows])
    bias = np.array([(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows])
    return {
        "n_configs": len(rows),
        "median_abs_pct_error": float(np.median(err) * 100),
        "mean_abs_pct_error": float(err.mean() * 100),
        "max_abs_pct_error": float(err.max() * 100),
        "median_signed_pct_error": float(np.median(bias) * 100),
        "configs": rows,
    }


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


def assemble_cost_table(
    model,
    frame: np.ndarray,
    *,
    device_name: str,
    detector: str,
    input_side: int,
    threads: int,
    repeats: int,
    layers: list[dict[str, Any]],
    head_input_from: list[str],
    entries: list[dict[str, Any]],
    overhead: list[dict[str, Any]],
    started: float,
    n_check: int,
) -> dict[str, Any]:
    """The cost-table dict (format ``agra_ros/cost-table`` v1) of any detector's measured entries, with the
    additive model checked against end-to-end latency on ``n_check`` random configurations."""
    data: dict[str, Any] = {
        "format": COST_FORMAT,
        "version": TABLE_VERSION,
        "device": device_name,
        "detector": detector,
        "input_size": [input_side, input_side],
        "frame_size": [int(frame.shape[0]), int(frame.shape[1])],
        "threads": threads,
        "repeats": repeats,
        "torch": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "resolution_scales": list(RESOLUTION_SCALES),
        "levels": list(LEVELS),
        "widths": list(WIDTHS),
        "layers": layers,
        "head_input_from": head_input_from,
        "entries": entries,
        "overhead": overhead,
    }
    data["profile_seconds"] = round(time.perf_counter() - started, 1)
    if n_check > 0:
        data["additive_check"] = additive_check(model, CostTable(data), frame, n_check, repeats)
    return data


def report_cost_table(out: Path, data: dict[str, Any]) -> None:
    """Print what was written: uniform configurations' predicted cost and the additive model's error."""
    table = CostTable.load(out)  # the reader accepts what we wrote
    print(f"cost table -> {out} ({len(data['entries'])} entries, {data['profile_seconds']} s)")
    for s in RESOLUTION_SCALES:
        for lv in LEVELS:
            fc = table.frame_cost(GranularityConfig.uniform(lv, table.n_layers, s))
            print(f"  uniform {lv:<12} scale {s:<5} {fc.latency_s * 1e3:7.2f} ms  {fc.macs / 1e6:7.1f} MMAC")
    if "additive_check" in data:
        chk = data["additive_check"]
        print(
            f"additive model vs end-to-end on {chk['n_configs']} random configurations: median |error| "
            f"{chk['median_abs_pct_error']:.1f} %, mean {chk['mean_abs_pct_error']:.1f} %, max {chk['max_abs_pct_error']:.1f} %"
            f", median signed {chk['median_signed_pct_error']:+.1f} %"
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
