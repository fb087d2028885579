"""Accuracy of the real detector's configurations (``agra-ros evaluate-ssd``): table, accuracy model, plots.

Agreement with the pretrained model, not ground truth (no labelled real data is reachable; see
:mod:`agra_ros.detectors.pseudo_eval`): mAP@0.5 of each configuration's detections against the ``full``
configuration's on held-out frames, in two domains:

- in-domain: the later half of every distillation video (vtest, Megamind, tree), never trained on;
- out-of-domain: the photos, never used at all.

The main columns (``confident_*``) are the package's accuracy measure, the confident agreement (full's detections
at score >= 0.5 the reference, the configuration's ranked down to 0.1); the strict agreement (both cut at 0.3) is
measured from the same detections and written beside it (``strict_*``). The accuracy model is fitted on the
confident in-domain column.

Every uniform configuration (5 levels x 3 scales) is measured in both columns, then ``--random`` mixed
configurations in-domain; the accuracy model the simulator reads is fitted on the in-domain rows (a quarter of the
random ones held out to report its error). Then ``--active`` rounds of active measurement: the configurations the
fitted model's accuracy-latency frontier goes to (where the oracle and the policy trained against it go) are
measured and the model refitted, so it is tested where it is used, not only on random mixes. With a cost table it
plots accuracy against latency, and it draws annotated real frames at ``full`` and at a cheap configuration side by
side.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agra_ros.detectors.measure import (
    Measurement,
    plot_accuracy_cost,
    random_configs,
    uniform_configs,
    write_measurements,
)
from agra_ros.detectors.pseudo_eval import agreements, full_detections
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.paths import run_dir
from agra_ros.progress import echo, progress
from agra_ros.tables.files import AccuracyModel, CostTable, fit_accuracy_model, write_json_atomic

if TYPE_CHECKING:
    from agra_ros.tables.search import SearchSpace

YLABEL = "confident agreement with full (mAP@0.5, held-out real frames)"
COLUMNS = (
    "config",
    "scale",
    "kind",
    "split",
    "confident_in_domain",
    "confident_out_of_domain",
    "strict_in_domain",
    "strict_out_of_domain",
)
"""The agreement table's columns (``agra_ros/data/accuracy_measured_ssd.csv`` once shipped)."""


def measure_row(model, config: GranularityConfig, kind: str, split: str, frames, refs, out: bool) -> dict:
    """One configuration's row: confident agreement as ``in_domain``/``out_domain`` (what the fit reads), strict as
    ``strict_in``/``strict_out``; out-of-domain only where ``out`` (NaN otherwise). ``frames``/``refs``: (in, out)."""
    row = {"config": config, "kind": kind, "split": split}
    row["in_domain"], row["strict_in"] = agreements(model, frames[0], config, refs[0])
    row["out_domain"], row["strict_out"] = (
        agreements(model, frames[1], config, refs[1]) if out else (float("nan"), float("nan"))
    )
    return row


def references(model, in_frames: np.ndarray, out_frames: np.ndarray) -> tuple[list, list]:
    """The full configuration's detections on both domains (the reference of every row)."""
    return full_detections(model, in_frames), full_detections(model, out_frames) if len(out_frames) else []


def evaluate(model, in_frames: np.ndarray, out_frames: np.ndarray, n_random: int, seed: int = 0) -> list[dict]:
    """Rows {config, kind, split, in_domain, out_domain, strict_in, strict_out}: confident agreement in and out of
    domain, strict beside it (out-of-domain NaN for the random configurations)."""
    n = len(model.switchable_layer_names())
    refs = references(model, in_frames, out_frames)
    rand = random_configs(n_random, n, seed)
    n_held = int(round(0.25 * len(rand)))
    rows = []
    todo = [(c, "uniform", "train") for c in uniform_configs(n)]
    todo += [(c, "random", "heldout" if i < n_held else "train") for i, c in enumerate(rand)]
    for c, kind, split in progress(todo, desc="evaluate-ssd: configurations", unit="cfg"):
        rows.append(measure_row(model, c, kind, split, (in_frames, out_frames), refs, kind == "uniform"))
    model.set_config(GranularityConfig.uniform("full", n))
    return rows


def frontier_picks(space: SearchSpace, k: int) -> list[GranularityConfig]:
    """Where an optimiser over the accuracy model goes: ``k`` points of the *predicted* accuracy-latency frontier.

    The oracle, and a policy trained against it, pick the most accurate configuration that fits a frame budget, so
    they live on this frontier; a model fitted on random mixes is least tested exactly there. Budgets are spread
    evenly in log latency from the fastest configuration to the slowest frontier point; each takes the most
    accurate frontier configuration within it."""
    rows = space.candidates()
    order = rows[np.argsort(space.latency_s[rows], kind="stable")]
    acc = space.accuracy[order]
    best_faster = np.concatenate([[-np.inf], np.maximum.accumulate(acc)[:-1]])
    front = order[acc > best_faster + 1e-9]  # more accurate than every faster configuration
    lat = space.latency_s[front]
    n = space.model.n_layers
    picks: list[GranularityConfig] = []
    for budget in np.geomspace(lat[0], lat[-1], k):
        row = front[int(np.searchsorted(lat, budget * (1 + 1e-9), side="right")) - 1]
        c = GranularityConfig.from_indices(space.action(row, 0), n)
        if c not in picks:
            picks.append(c)
    return picks


def active_rounds(
    model,
    rows: list[dict],
    in_frames: np.ndarray,
    out_frames: np.ndarray,
    cost_tables: Sequence[CostTable],
    fit: Callable[[Sequence[dict]], AccuracyModel],
    rounds: int,
    per_round: int,
) -> tuple[list[dict], list[dict]]:
    """Active measurement: fit, find the frontier configurations the fit predicts (per cost table), measure the new
    ones, refit; ``rounds`` times. New rows are ``kind="active"`` training rows. Returns all rows and one summary per
    round with the fit's error on the configurations it chose before they were measured (what the policy would
    have been told about them)."""
    from agra_ros.tables.search import ConfigModel, SearchSpace

    refs = references(model, in_frames, out_frames)
    rows = list(rows)
    history = []
    for k in range(rounds):
        acc = fit(rows)
        seen = {r["config"] for r in rows}
        todo: list[GranularityConfig] = []
        for table in cost_tables:
            for c in frontier_picks(SearchSpace(ConfigModel(table, acc)), per_round):
                if c not in seen and c not in todo:
                    todo.append(c)
        errors = []
        for c in progress(todo, desc=f"evaluate-ssd: active round {k + 1}/{rounds}", unit="cfg"):
            row = measure_row(model, c, "active", "train", (in_frames, out_frames), refs, True)
            errors.append(acc.predict(c) - row["in_domain"])
            rows.append(row)
        err = np.asarray(errors if errors else [0.0])
        history.append(
            {
                "round": k + 1,
                "measured": len(todo),
                "mean_error": float(err.mean()),
                "mae": float(np.abs(err).mean()),
                "max_over_prediction": float(err.max()),
            }
        )
        echo(
            f"active round {k + 1}: {len(todo)} new frontier configurations, the fit over-predicted them by "
            f"{history[-1]['mean_error']:+.3f} on average (MAE {history[-1]['mae']:.3f}, worst "
            f"{history[-1]['max_over_prediction']:+.3f})"
        )
        if not todo:
            break
    model.set_config(GranularityConfig.uniform("full", len(model.switchable_layer_names())))
    return rows, history


def read_table(path: str | Path) -> list[dict]:
    """The rows :func:`write_table` wrote, back as :func:`evaluate` returns them (to refit without re-measuring).
    A table of the earlier metric (``map50_*`` columns, before issue 21) is refused: refitting on it would mix
    two measures."""
    keys = {"in_domain": "confident_in_domain", "out_domain": "confident_out_of_domain"}
    keys |= {"strict_in": "strict_in_domain", "strict_out": "strict_out_of_domain"}
    try:
        with Path(path).open(newline="") as fh:
            reader = csv.DictReader(fh)
            if "map50_in_domain" in (reader.fieldnames or ()):
                raise SystemExit(
                    f"evaluate-ssd: {path} holds the earlier metric (map50_* columns, reference at score 0.3, "
                    "candidates down to 0.05): measure again (agra-ros evaluate-ssd) to refit on the confident one"
                )
            return [
                {
                    "config": GranularityConfig.from_short(r["config"]),
                    "kind": r["kind"],
                    "split": r["split"],
                    **{k: float(r[col]) for k, col in keys.items()},
                }
                for r in reader
            ]
    except (OSError, KeyError, ValueError) as exc:
        raise SystemExit(f"evaluate-ssd: cannot read the agreement table {path}: {exc}") from None


def write_table(rows: Sequence[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            c = r["config"]
            values = (r["in_domain"], r["out_domain"], r["strict_in"], r["strict_out"])
            w.writerow([c.short(), c.resolution_scale, r["kind"], r["split"], *(f"{v:.4f}" for v in values)])
    return path


def cheapest_meeting(rows: Sequence[dict], table: CostTable, floor: float, both: bool) -> dict | None:
    """The cheapest measured configuration whose agreement is >= ``floor`` in-domain (and out-of-domain if ``both``)."""
    ok = [r for r in rows if r["in_domain"] >= floor and (not both or r["out_domain"] >= floor)]
    return min(ok, key=lambda r: table.frame_cost(r["config"]).latency_s) if ok else None


def annotated_pair(model, frame: np.ndarray, cheap: GranularityConfig, path: Path) -> Path:
    """PNG: the same real frame annotated at full and at ``cheap``, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agra_ros.perception.annotate import annotate

    n = len(model.switchable_layer_names())
    panels = []
    for c in (GranularityConfig.uniform("full", n), cheap):
        model.set_config(c)
        det = model.detect([frame], 0.3)[0]
        panels.append((c, annotate(frame, det.boxes, det.scores, det.labels, model.class_names, [c.short()])))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, (c, img) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(c.short())
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    model.set_config(GranularityConfig.uniform("full", n))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from agra_ros.detectors import registry
    from agra_ros.detectors.ssd.distill import split_frames
    from agra_ros.workload.real_media import CLIPS, fetch_real_media, photos_dir, video_path

    ap = argparse.ArgumentParser(prog="agra-ros evaluate-ssd", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    ap.add_argument("--random", type=int, default=100, help="random mixed configurations (in-domain)")
    ap.add_argument("--every", type=int, default=4, help="use every Nth held-out video frame")
    ap.add_argument("--cost-table", default=None, help="cost table for the plot and the cheapest-config search")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(run_dir("evaluate-ssd")), help="run folder")
    ap.add_argument("--ship", action="store_true", help="also write the shipped accuracy model")
    ap.add_argument(
        "--refit",
        metavar="CSV",
        default=None,
        help="start from an earlier run's accuracy_ssd.csv instead of measuring the uniform and random "
        "configurations again (--active rounds still measure; --active 0 only refits)",
    )
    ap.add_argument(
        "--active",
        type=int,
        default=3,
        metavar="ROUNDS",
        help="rounds of active measurement: measure the configurations the fitted model's frontier goes to, refit",
    )
    ap.add_argument("--per-round", type=int, default=12, help="frontier configurations per cost table and round")
    args = ap.parse_args(argv)
    if args.active < 0 or args.per_round < 2:
        ap.error("--active must be >= 0 and --per-round >= 2")
    torch.set_num_threads(args.threads)
    model = registry.load("ssd", args.weights)
    root = fetch_real_media()
    split = split_frames([video_path(c, root) for c in CLIPS], [photos_dir(root)])
    in_frames = split.in_domain[:: args.every]
    print(f"held-out frames: {len(in_frames)} in-domain (every {args.every}th), {len(split.out_domain)} out-of-domain")
    if args.refit:
        rows = read_table(args.refit)
        print(f"refitting on {len(rows)} measured configurations from {args.refit}")
    else:
        rows = evaluate(model, in_frames, split.out_domain, args.random, args.seed)
    out = Path(args.out)
    names = model.switchable_layer_names()

    def fit(measured: Sequence[dict]) -> AccuracyModel:
        train = [r for r in measured if r["split"] == "train"]
        held = [r for r in measured if r["split"] == "heldout"]
        return fit_accuracy_model(
            [r["config"] for r in train],
            [r["in_domain"] for r in train],
            names,
            heldout=([r["config"] for r in held], [r["in_domain"] for r in held]),
            meta={
                "detector": registry.entry("ssd").network,
                "validation": {
                    "metric": "confident agreement: torchmetrics map_50 of the configuration's detections (score "
                    ">= 0.1) against the full configuration's with score >= 0.5",
                    "frames": int(len(in_frames)),
                    "domain": "in-domain held-out video frames",
                },
            },
        )

    table_path = args.cost_table or registry.shipped_cost_table("ssd", "x86_generic")
    if args.active:
        tables = [CostTable.load(p) for p in ([table_path] if args.cost_table else registry.shipped_cost_tables("ssd"))]
        rows, history = active_rounds(
            model, rows, in_frames, split.out_domain, tables, fit, args.active, args.per_round
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "active_rounds.json").write_text(json.dumps(history, indent=1))
    acc = fit(rows)
    write_table(rows, out / "accuracy_ssd.csv")
    write_json_atomic(out / "accuracy_model_ssd.json", acc.data)
    if args.ship:  # the model and the measurements it was fitted on go together
        write_table(rows, registry.shipped_accuracy_table("ssd"))
        write_json_atomic(registry.shipped_accuracy_model("ssd"), acc.data)
    print(f"accuracy model: held-out MAE {acc.data['fit'].get('heldout_mae', float('nan')):.3f}")
    print(f"{'configuration':<22}{'confident in':>13}{'out':>7}{'strict in':>11}{'out':>7}")
    for r in rows:
        if r["kind"] == "uniform":
            print(
                f"{r['config'].short():<22}{r['in_domain']:>13.3f}{r['out_domain']:>7.3f}"
                f"{r['strict_in']:>11.3f}{r['strict_out']:>7.3f}"
            )
    if Path(table_path).is_file():
        table = CostTable.load(table_path)
        meas = [Measurement(r["config"], r["in_domain"], r["kind"], r["split"]) for r in rows]
        write_measurements(meas, out / "measurements.csv")
        plot_accuracy_cost(meas, table, out / "accuracy_cost_ssd.png", ylabel=YLABEL)
        full = table.frame_cost(GranularityConfig.uniform("full", len(names))).latency_s
        summary = {}
        for floor, both in ((0.8, False), (0.9, True)):
            best = cheapest_meeting(rows, table, floor, both)
            if best is not None:
                lat = table.frame_cost(best["config"]).latency_s
                key = f">={floor} {'in and out of domain' if both else 'in-domain'}"
                summary[key] = {
                    "config": best["config"].short(),
                    "latency_ms": lat * 1e3,
                    "speedup": full / lat,
                    "in_domain": best["in_domain"],
                    "out_domain": best["out_domain"],
                    "strict_in_domain": best["strict_in"],
                    "strict_out_of_domain": best["strict_out"],
                }
                print(
                    f"cheapest {key}: {best['config'].short()} {lat * 1e3:.1f} ms ({full / lat:.2f}x faster than full)"
                )
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        cheap = cheapest_meeting(rows, table, 0.8, False)
        if cheap is not None:
            annotated_pair(
                model, split.in_domain[len(split.in_domain) // 2], cheap["config"], out / "annotated_pair.png"
            )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
