"""Detector evidence: switch cost, per-configuration latency, and the accuracy-cost curve with measured latency
(docs/detector_accuracy_cost_measured.png; ``agra-ros evaluate-detector`` draws docs/accuracy_cost.png from the
additive cost model).

Run: ``python -m agra_ros.bench.detector_bench [--threads 2] [--repeats 15]``. It reads the measured accuracies
(``agra_ros/data/accuracy_measured.csv``, from ``python -m agra_ros.detectors.synthetic.evaluate``) and the cost table
(``agra_ros/data/cost_tables/<device>.json``, from ``agra-ros profile``), measures the end-to-end latency of
every measured configuration on a 640x480 synthetic frame, and plots mAP@0.5 against latency and against MACs,
one point per configuration. The synthetic detector's mAP@0.5 is against its scenes' ground truth, not agreement with
``full``: the package's accuracy measure for the real detector, the confident agreement, is ``agra-ros evaluate-ssd``'s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from agra_ros.detectors.measure import measure_end_to_end, read_measurements
from agra_ros.detectors.synthetic.network import load_detector
from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES, GranularityConfig
from agra_ros.paths import data_dir, docs_dir, run_dir
from agra_ros.tables.files import CostTable
from agra_ros.workload.scene import make_dataset

PLOT_NAME = "detector_accuracy_cost_measured.png"


def switch_cost_us(model, n: int = 20000) -> dict[str, float]:
    """Median microseconds of one ``set_level`` and of one whole ``set_config`` (every layer + scale)."""
    layers = model.switchable_layers()
    rng = np.random.default_rng(0)
    levels = [LEVELS[i] for i in rng.integers(len(LEVELS), size=n)]
    t_layer = []
    for lv in levels:
        t = time.perf_counter_ns()
        layers[3].set_level(lv)
        t_layer.append(time.perf_counter_ns() - t)
    configs = [
        GranularityConfig(tuple(LEVELS[i] for i in rng.integers(len(LEVELS), size=len(layers))), RESOLUTION_SCALES[j])
        for j in rng.integers(len(RESOLUTION_SCALES), size=1000)
    ]
    t_cfg = []
    for c in configs:
        t = time.perf_counter_ns()
        model.set_config(c)
        t_cfg.append(time.perf_counter_ns() - t)
    return {"set_level_us": statistics.median(t_layer) / 1e3, "set_config_us": statistics.median(t_cfg) / 1e3}


def plot(points: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colours = {1.0: "tab:blue", 0.75: "tab:orange", 0.5: "tab:green"}
    for ax, key, label in (
        (axes[0], "latency_ms", "end-to-end latency per 640x480 frame [ms]"),
        (axes[1], "mmacs", "MACs per frame [M]"),
    ):
        for scale in RESOLUTION_SCALES:
            for kind, marker, size in (("random", "o", 14), ("uniform", "*", 90)):
                sel = [p for p in points if p["scale"] == scale and p["kind"] == kind]
                if sel:
                    ax.scatter(
                        [p[key] for p in sel],
                        [p["map50"] for p in sel],
                        s=size,
                        marker=marker,
                        c=colours[scale],
                        alpha=0.75 if kind == "random" else 1.0,
                        edgecolors="none",
                        label=f"{kind}, scale {scale:g}",
                    )
        for p in points:
            if p["kind"] == "uniform" and p["scale"] == 1.0:
                ax.annotate(
                    p["config"].split("/")[0][:1],
                    (p[key], p["map50"]),
                    fontsize=8,
                    xytext=(4, -10),
                    textcoords="offset points",
                )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mAP@0.5 (held-out synthetic validation)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "AgraDetector accuracy-cost: one point per measured granularity configuration "
        "(stars: uniform; letter = level code F/P/7/5/2)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agra-ros bench detector", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--device-name", default="x86_generic")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=None, help="plot (default runs/detector_bench/detector_accuracy_cost_measured.png)")
    p.add_argument("--ship", action="store_true", help="draw the plot into docs/ (the README figure)")
    args = p.parse_args(argv)
    args.out = args.out or str((docs_dir() if args.ship else run_dir("detector_bench")) / PLOT_NAME)
    torch.set_num_threads(args.threads)
    model = load_detector(args.weights)
    frame = make_dataset(123_456, 1)[0].image

    sw = switch_cost_us(model)
    print(
        f"switch cost: set_level {sw['set_level_us']:.2f} us, whole set_config ({len(model.switchable_layers())} "
        f"layers + scale) {sw['set_config_us']:.2f} us (median; no allocation, no recompilation)"
    )

    table = CostTable.load(data_dir() / "cost_tables" / f"{args.device_name}.json")
    rows = read_measurements(data_dir() / "accuracy_measured.csv")
    points = []
    t0 = time.perf_counter()
    for r in rows:
        lat = measure_end_to_end(model, frame, r.config, args.repeats) * 1e3
        fc = table.frame_cost(r.config)
        points.append(
            {
                "config": r.config.short(),
                "scale": r.config.resolution_scale,
                "kind": r.kind,
                "map50": r.map50,
                "latency_ms": lat,
                "predicted_ms": fc.latency_s * 1e3,
                "mmacs": fc.macs / 1e6,
            }
        )
    print(
        f"measured {len(points)} configurations in {time.perf_counter() - t0:.0f} s "
        f"({args.threads} threads, median of {args.repeats})"
    )
    print(f"{'configuration':<22}{'mAP@0.5':>9}{'latency ms':>12}{'additive ms':>13}{'MMAC':>8}")
    for pt in points:
        if pt["kind"] == "uniform":
            print(
                f"{pt['config']:<22}{pt['map50']:>9.3f}{pt['latency_ms']:>12.2f}{pt['predicted_ms']:>13.2f}"
                f"{pt['mmacs']:>8.1f}"
            )
    err = np.array([abs(p["predicted_ms"] - p["latency_ms"]) / p["latency_ms"] for p in points])
    print(f"additive cost model vs measured over all {len(points)}: median |error| {np.median(err) * 100:.1f} %")
    lat = np.array([p["latency_ms"] for p in points])
    print(
        f"latency range {lat.min():.1f} .. {lat.max():.1f} ms; "
        f"mAP@0.5 range {min(p['map50'] for p in points):.3f} .. {max(p['map50'] for p in points):.3f}"
    )
    out = plot(points, Path(args.out))
    print(f"plot -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
