"""Calibrate the robot's accuracy signal to the simulator's (``agra-ros calibrate-agreement``).

On the robot, accuracy is the shadow agreement: per shadow frame, the confident agreement of that frame, AP@0.5 of
the active configuration's detections down to score 0.1 against the full configuration's with score >= 0.5
(:func:`agra_ros.perception.agreement.confident_frame_agreement`), averaged over the shadow frames. The simulator's
accuracy table is the same measure over a whole set of held-out frames (mAP@0.5 pooled over the frames:
:func:`agra_ros.detectors.pseudo_eval.confident_agreement`), as a share of the full configuration's. Both are 1 for
the full configuration and fall as a configuration disagrees with it, but a mean of per-frame APs and an AP of the
pooled matches do not fall at exactly the same rate.

This measures both on the same held-out frames for every uniform configuration and fits the straight line
``table ratio = a + b * mean shadow agreement`` through (1, 1), which :func:`agra_ros.core.reward.calibrated_accuracy_ratio`
applies to every shadow agreement the robot reports. Rerun it (with ``--ship``) whenever the detector's weights or
the accuracy model change.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agra_ros.detectors import registry
from agra_ros.detectors.pseudo_eval import EVALUATION_SCORE, confident_agreement, detect_all, full_detections
from agra_ros.detectors.ssd.evaluate import uniform_configs
from agra_ros.paths import data_dir, run_dir
from agra_ros.perception.agreement import SHADOW_METRIC, confident_frame_agreement
from agra_ros.progress import progress
from agra_ros.tables.files import write_json_atomic

CALIBRATION_FILE = registry.entry("ssd").calibration_file
"""The file name the registry entry names, so the writer here and the reader in core.reward cannot disagree."""


def measure(model, frames: np.ndarray) -> list[dict]:
    """Per uniform configuration: the table's measure (confident mAP@0.5 over all frames, ``map50``) and the
    shadow's (the mean of the per-frame confident agreements, frames where full has no confident box left out)."""
    refs = full_detections(model, frames)
    rows = []
    configs = uniform_configs(len(model.switchable_layer_names()))
    for config in progress(configs, desc="calibrate-agreement: configurations", unit="cfg"):
        dets = detect_all(model, frames, config, EVALUATION_SCORE)
        shadow = float(np.nanmean([confident_frame_agreement(d, r) for d, r in zip(dets, refs)]))
        full = all(lv == "full" for lv in config.levels) and config.resolution_scale == 1.0
        rows.append(
            {"config": config.short(), "full": full, "map50": confident_agreement(dets, refs), "agreement": shadow}
        )
    return rows


def fit(rows: Sequence[dict]) -> tuple[float, float]:
    """(intercept, slope) of the line through (1, 1) that fits the mAP ratio (over the full configuration's) on the
    agreement in least squares: both are 1 for the full configuration by definition, so the line must keep it
    there (a free intercept put the full configuration at 0.92, right on the accuracy floor)."""
    full = next(r["map50"] for r in rows if r["full"]) or 1.0
    dx = 1.0 - np.array([r["agreement"] for r in rows])
    dy = 1.0 - np.array([r["map50"] / full for r in rows])
    slope = float(np.dot(dx, dy) / max(np.dot(dx, dx), 1e-12))
    return 1.0 - slope, slope


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from agra_ros.detectors.ssd.distill import split_frames
    from agra_ros.workload.real_media import CLIPS, fetch_real_media, photos_dir, video_path

    ap = argparse.ArgumentParser(prog="agra-ros calibrate-agreement", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    ap.add_argument("--every", type=int, default=4, help="use every Nth held-out video frame")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(run_dir("calibrate-agreement")), help="run folder")
    ap.add_argument("--ship", action="store_true", help=f"also write agra_ros/data/{CALIBRATION_FILE}")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = registry.load("ssd", args.weights)
    root = fetch_real_media()
    frames = split_frames([video_path(c, root) for c in CLIPS], [photos_dir(root)]).in_domain[:: args.every]
    rows = measure(model, frames)
    a, b = fit(rows)
    residual = max(abs(a + b * r["agreement"] - r["map50"]) for r in rows)  # full's mAP is 1: ratio = mAP
    result = {
        "format": "agra_ros/agreement-calibration",
        "version": 2,
        "shadow_metric": SHADOW_METRIC,
        "table_metric": "confident agreement (torchmetrics map_50, full's detections >= 0.5, candidate's >= 0.1)",
        "detector": "ssd-mobilenetv2-oidv4",
        "intercept": a,
        "slope": b,
        "max_abs_residual": residual,
        "frames": int(len(frames)),
        "rows": rows,
    }
    out = Path(args.out)
    write_json_atomic(out / CALIBRATION_FILE, result)
    print(f"{'config':12s} {'table':>7s} {'shadow':>7s}")
    for r in rows:
        print(f"{r['config']:12s} {r['map50']:7.3f} {r['agreement']:7.3f}")
    print(f"table ratio = {a:.3f} + {b:.3f} * shadow agreement (max residual {residual:.3f}, {len(frames)} frames)")
    print(f"wrote {out / CALIBRATION_FILE}")
    if args.ship:
        write_json_atomic(data_dir() / CALIBRATION_FILE, result)
        print(f"shipped {data_dir() / CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
