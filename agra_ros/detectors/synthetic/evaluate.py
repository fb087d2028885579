"""Accuracy of the detector per granularity configuration, and the fitted accuracy model.

mAP@0.5 is torchmetrics' ``MeanAveragePrecision(iou_thresholds=[0.5])`` (COCO-style 101-point interpolation,
pycocotools backend) on the held-out synthetic validation set (``data.VAL_SEED``; training never uses those seeds).

``agra-ros``'s evaluation measures every uniform configuration (each level x each resolution scale) and random
mixed configurations, fits :func:`agra_ros.tables.files.fit_accuracy_model` on 75 % of the random ones plus all
uniform ones, reports the error on the held-out 25 %, and writes ``data/accuracy_model.json`` and
``data/accuracy_measured.csv``. With a cost table it also draws the accuracy-cost curve (``docs/accuracy_cost.png``:
mAP@0.5 against the additive-model latency and MACs, one point per measured configuration). Frames are resized once per input side and reused across configurations, so one
configuration costs one batched forward pass over the set plus the metric.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchmetrics.detection import MeanAveragePrecision

from agra_ros.detectors.interface import Detections, resize_image
from agra_ros.detectors.measure import (
    Measurement,
    plot_accuracy_cost,
    random_configs,
    read_measurements,
    uniform_configs,
    write_measurements,
)
from agra_ros.detectors.synthetic.data import VAL_SEED, to_tensor, validation_frames
from agra_ros.detectors.synthetic.network import DETECTOR_NAME, AgraDetector, load_detector
from agra_ros.granularity.levels import RESOLUTION_SCALES, GranularityConfig
from agra_ros.paths import data_dir, run_dir
from agra_ros.tables.files import AccuracyModel, CostTable, TableError, fit_accuracy_model
from agra_ros.workload.scene_types import Frame


class ValidationSet:
    """Validation frames with their network inputs cached per resolution scale."""

    def __init__(self, frames: Sequence[Frame], model: AgraDetector) -> None:
        if not frames:
            raise ValueError("empty validation set")
        self.frames = list(frames)
        self.sizes = [(f.image.shape[0], f.image.shape[1]) for f in self.frames]
        self.inputs = {
            s: to_tensor(np.stack([resize_image(f.image, model.input_side(s)) for f in self.frames]))
            for s in RESOLUTION_SCALES
        }
        self.targets = [
            {"boxes": torch.from_numpy(f.boxes.astype(np.float32)), "labels": torch.from_numpy(f.labels)}
            for f in self.frames
        ]

    def __len__(self) -> int:
        return len(self.frames)


@torch.inference_mode()
def detect_config(
    model: AgraDetector, data: ValidationSet, config: GranularityConfig, batch: int = 32, score_threshold: float = 0.05
) -> list[Detections]:
    """Detections of every validation frame at ``config`` (the model is left at ``config``)."""
    model.eval()
    model.set_config(config)
    x_all = data.inputs[config.resolution_scale]
    dets: list[Detections] = []
    for i in range(0, len(data), batch):
        out = model(x_all[i : i + batch])
        dets.extend(model.decode(out, data.sizes[i : i + batch], score_threshold))
    return dets


def map50(dets: Sequence[Detections], targets: Sequence[dict[str, torch.Tensor]]) -> float:
    """mAP@0.5 over classes (torchmetrics, pycocotools backend)."""
    metric = MeanAveragePrecision(iou_thresholds=[0.5], box_format="xyxy")
    preds = [
        {"boxes": torch.from_numpy(d.boxes), "scores": torch.from_numpy(d.scores), "labels": torch.from_numpy(d.labels)}
        for d in dets
    ]
    metric.update(preds, list(targets))
    return float(metric.compute()["map_50"])


def evaluate_config(model: AgraDetector, data: ValidationSet, config: GranularityConfig) -> float:
    return map50(detect_config(model, data, config), data.targets)


def _progress(items: Sequence[GranularityConfig], show: bool) -> Sequence[GranularityConfig]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="random mixed configurations", mininterval=5.0)  # type: ignore[return-value]


def measure_and_fit(
    model: AgraDetector,
    n_val: int = 200,
    n_random: int = 120,
    seed: int = 0,
    heldout_share: float = 0.25,
    log: bool = True,
) -> tuple[list[Measurement], AccuracyModel]:
    """Measure uniform + random configurations and fit the accuracy model (held-out error inside its ``fit``)."""
    t0 = time.perf_counter()
    data = ValidationSet(validation_frames(n_val), model)
    if log:
        print(f"validation set: {len(data)} frames (seed {VAL_SEED}) in {time.perf_counter() - t0:.1f} s")
    n_layers = len(model.switchable_layers())
    rand = random_configs(n_random, n_layers, seed)
    n_held = int(round(heldout_share * len(rand)))
    rows: list[Measurement] = []
    t1 = time.perf_counter()
    for c in uniform_configs(n_layers):
        rows.append(Measurement(c, evaluate_config(model, data, c), "uniform", "train"))
        if log:
            print(f"  {c.short():<20} mAP@0.5 {rows[-1].map50:.4f}", flush=True)
    bar = _progress(rand, log)
    for i, c in enumerate(bar):
        rows.append(Measurement(c, evaluate_config(model, data, c), "random", "heldout" if i < n_held else "train"))
    dt = time.perf_counter() - t1
    if log:
        print(f"measured {len(rows)} configurations in {dt:.0f} s ({dt / len(rows):.2f} s each)")
    return rows, fit_measurements(rows, model, len(data))


def fit_measurements(rows: Sequence[Measurement], model: AgraDetector, n_val: int) -> AccuracyModel:
    """Fit the accuracy model on the ``train`` rows and score it on the ``heldout`` ones."""
    train_rows = [r for r in rows if r.split == "train"]
    held = [r for r in rows if r.split == "heldout"]
    return fit_accuracy_model(
        [r.config for r in train_rows],
        [r.map50 for r in train_rows],
        model.switchable_layer_names(),
        heldout=([r.config for r in held], [r.map50 for r in held]),
        meta={
            "detector": DETECTOR_NAME,
            "weights": {k: v for k, v in getattr(model, "weights_meta", {}).items() if k in ("kind", "steps", "seed")},
            "validation": {"seed": VAL_SEED, "frames": n_val, "metric": "torchmetrics map_50"},
        },
    )


def default_cost_table() -> Path | None:
    """The shipped cost table to plot against (the first by name), or None when none is shipped."""
    tables = sorted((data_dir() / "cost_tables").glob("*.json"))
    return tables[0] if tables else None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="agra-ros evaluate-detector", description="measure mAP@0.5 per configuration and fit the accuracy model"
    )
    p.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    p.add_argument("--n-val", type=int, default=200, help="validation frames")
    p.add_argument("--n-random", type=int, default=120, help="random mixed configurations")
    p.add_argument("--seed", type=int, default=0, help="seed of the random configurations")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--out-dir",
        default=str(run_dir("evaluate")),
        help="where accuracy_model.json and the CSV go (the shipped ones: agra_ros/data)",
    )
    p.add_argument("--cost-table", default=None, help="cost table for the plot (default: the shipped one)")
    p.add_argument(
        "--plot", default=str(run_dir("evaluate") / "accuracy_cost.png"), help="accuracy-cost plot ('' for none)"
    )
    p.add_argument(
        "--measured",
        default=None,
        help="refit and replot from this accuracy_measured.csv (measured on --n-val frames) instead of measuring",
    )
    args = p.parse_args(argv)
    if args.n_val < 1 or args.n_random < 4:
        raise ValueError("--n-val must be >= 1 and --n-random >= 4 (a quarter of them is held out)")
    torch.set_num_threads(args.threads)
    model = load_detector(args.weights)
    if args.measured:
        rows = read_measurements(args.measured)
        acc = fit_measurements(rows, model, args.n_val)  # --n-val: the frames the CSV was measured on
    else:
        rows, acc = measure_and_fit(model, args.n_val, args.n_random, args.seed)
    out = Path(args.out_dir)
    acc.save(out / "accuracy_model.json")
    write_measurements(rows, out / "accuracy_measured.csv")
    table_path = Path(args.cost_table) if args.cost_table else default_cost_table()
    if args.plot and table_path is not None:
        try:
            table = CostTable.load(table_path)
            print(f"accuracy-cost plot -> {plot_accuracy_cost(rows, table, args.plot)} (costs from {table_path})")
        except (TableError, KeyError) as exc:
            print(f"no accuracy-cost plot: cost table {table_path} does not fit ({exc!r})")
    full = next(
        r.map50
        for r in rows
        if r.kind == "uniform" and r.config.levels[0] == "full" and r.config.resolution_scale == 1.0
    )
    n50 = next(
        r.map50
        for r in rows
        if r.kind == "uniform" and r.config.levels[0] == "neuron-50" and r.config.resolution_scale == 1.0
    )
    fit = acc.data["fit"]
    print(f"full mAP@0.5 {full:.4f}; all-neuron-50 {n50:.4f} ({100 * (full - n50):+.1f} points below full)")
    print(
        f"accuracy model: train MAE {fit['train_mae']:.4f} on {fit['n_train']}, held-out MAE {fit.get('heldout_mae', float('nan')):.4f}"
        f" (max {fit.get('heldout_max', float('nan')):.4f}) on {fit.get('n_heldout', 0)} configurations"
    )
    print(f"wrote {out / 'accuracy_model.json'} and {out / 'accuracy_measured.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
