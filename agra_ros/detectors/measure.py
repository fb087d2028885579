"""Measuring any registered detector: configuration sets, timing, cost-table assembly, measurement files, plots.

Shared by every detector's profile and evaluate modules so that both networks are measured, filed and drawn the
same way (the cost-table format and the accuracy-cost figure are one definition each).
"""

from __future__ import annotations

import csv
import datetime as _dt
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES, WIDTHS, GranularityConfig
from agra_ros.tables.files import COST_FORMAT, TABLE_VERSION, CostTable


def uniform_configs(n_layers: int) -> list[GranularityConfig]:
    return [GranularityConfig.uniform(lv, n_layers, s) for s in RESOLUTION_SCALES for lv in LEVELS]


def random_configs(n: int, n_layers: int, seed: int) -> list[GranularityConfig]:
    """``n`` distinct random mixed configurations (each layer and the scale drawn uniformly)."""
    rng = np.random.default_rng(seed)
    seen: set[GranularityConfig] = set()
    out: list[GranularityConfig] = []
    while len(out) < n:
        c = GranularityConfig(
            tuple(LEVELS[i] for i in rng.integers(len(LEVELS), size=n_layers)),
            RESOLUTION_SCALES[int(rng.integers(len(RESOLUTION_SCALES)))],
        )
        if c not in seen and len(set(c.levels)) > 1:
            seen.add(c)
            out.append(c)
    return out


@dataclass
class Measurement:
    config: GranularityConfig
    map50: float
    kind: str  # uniform | random | active (see ssd_evaluate.active_rounds)
    split: str  # train | heldout


def write_measurements(rows: Sequence[Measurement], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["config", "scale", "kind", "split", "map50"])
        for r in rows:
            w.writerow([r.config.short(), r.config.resolution_scale, r.kind, r.split, f"{r.map50:.5f}"])
    return p


def read_measurements(path: str | Path) -> list[Measurement]:
    with Path(path).open() as fh:
        return [
            Measurement(GranularityConfig.from_short(r["config"]), float(r["map50"]), r["kind"], r["split"])
            for r in csv.DictReader(fh)
        ]


def plot_accuracy_cost(
    rows: Sequence[Measurement],
    table: CostTable,
    path: str | Path,
    ylabel: str = "mAP@0.5 (held-out synthetic validation)",
) -> Path:
    """mAP@0.5 against latency and against MACs (additive model of ``table``), one point per configuration.

    Uniform configurations are drawn as labelled markers per level, random mixed ones as small grey dots and those
    found by active measurement as cyan ones, so the curve shows both the knobs the policy can turn one layer at a
    time and the corners it can reach.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = [table.frame_cost(r.config) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    markers = {1.0: "o", 0.75: "s", 0.5: "^"}
    colours = dict(zip(LEVELS, ("tab:blue", "tab:purple", "tab:green", "tab:orange", "tab:red")))
    for ax, key, label in (
        (axes[0], lambda c: c.latency_s * 1e3, f"latency per frame, ms (additive model, {table.device})"),
        (axes[1], lambda c: c.macs / 1e6, "MMAC per frame"),
    ):
        for kind, colour in (("random", "0.6"), ("active", "tab:cyan")):
            pts = [(key(c), r.map50) for r, c in zip(rows, costs) if r.kind == kind]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=10, c=colour, zorder=1)
        for r, c in zip(rows, costs):
            if r.kind != "uniform":
                continue
            lv, sc = r.config.levels[0], r.config.resolution_scale
            ax.scatter(
                key(c), r.map50, s=55, marker=markers.get(sc, "o"), c=colours.get(lv, "k"), edgecolors="k", zorder=2
            )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", c=colours[lv], mec="k", label=f"all {lv}") for lv in LEVELS]
    handles += [Line2D([], [], ls="", marker=m, c="w", mec="k", label=f"scale {sc:g}") for sc, m in markers.items()]
    handles.append(Line2D([], [], ls="", marker="o", c="0.6", ms=4, label="random mixed"))
    if any(r.kind == "active" for r in rows):
        handles.append(Line2D([], [], ls="", marker="o", c="tab:cyan", ms=4, label="active (frontier)"))
    axes[1].legend(handles=handles, fontsize=8, loc="lower right")
    fig.suptitle(f"Accuracy-cost curve: {len(rows)} measured configurations")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


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


@torch.inference_mode()
def measure_end_to_end(model: Any, frame: np.ndarray, config: GranularityConfig, repeats: int) -> float:
    """Median seconds of ``detect`` (pre-processing to NMS) on one frame at ``config``."""
    model.set_config(config)
    return time_call(lambda: model.detect(frame, 0.3), repeats)


def additive_check(
    model: Any, table: CostTable, frame: np.ndarray, n_configs: int, repeats: int, seed: int = 1
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
