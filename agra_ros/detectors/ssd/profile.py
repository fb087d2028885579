"""Cost table of the real detector (``agra-ros profile --detector ssd``), in the shared cost-table format.

Every switchable layer of the SSD is a group of convolutions whose cost does not depend on the other layers'
levels (block outputs keep their full width), so one instrumented forward pass per uniform configuration times all
layers at once: for each level x resolution scale, the median over ``repeats`` passes of each layer's summed op
time, with MACs, bytes moved and peak activation bytes counted from the actual tensor shapes. The *overhead* per
scale is the rest of a frame measured directly on a real video frame: resizing the camera frame and normalising it,
the stem and the projection convs outside the layers, box decoding and NMS. ``in_width`` is 1.0 for every layer
(no layer's cost depends on another's width); the overhead is listed for every head width with the same numbers.

The table then predicts a frame's latency as the sum of its layers plus the overhead; the profiler checks that
against end-to-end ``detect`` on random configurations and stores the error (``additive_check``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agra_ros.detectors.measure import assemble_cost_table, report_cost_table
from agra_ros.detectors.ssd.network import LAYER_NAMES, NATIVE_SIDE, SsdDetector
from agra_ros.detectors.tracker_cost import profile_tracker
from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES, WIDTHS, GranularityConfig
from agra_ros.paths import run_dir
from agra_ros.progress import progress
from agra_ros.tables.files import CostTable, write_json_atomic


def profile_frame() -> np.ndarray:
    """A real 768x576 frame (vtest.avi frame 500) when the media are present, else a fixed noise frame."""
    try:
        import cv2

        from agra_ros.workload.real_media import media_available, video_path

        if media_available():
            cap = cv2.VideoCapture(str(video_path("vtest")))
            cap.set(cv2.CAP_PROP_POS_FRAMES, 500)
            ok, bgr = cap.read()
            cap.release()
            if ok:
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    except ImportError:
        pass
    return np.random.default_rng(0).integers(0, 256, (576, 768, 3), dtype=np.uint8)


@torch.inference_mode()
def profile_uniform(
    model: SsdDetector, frame: np.ndarray, level: str, scale: float, repeats: int
) -> dict[str, list[float]]:
    """Median per-layer [s, MACs, bytes, peak] (and ``overhead``) over ``repeats`` instrumented detections."""
    model.set_config(GranularityConfig.uniform(level, len(LAYER_NAMES), scale))
    runs: list[dict[str, list[float]]] = []
    for i in range(repeats + 2):
        stats: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        x, sizes = model.preprocess([frame])
        t1 = time.perf_counter()
        boxes, logits = model.forward(x, stats=stats)
        t2 = time.perf_counter()
        model.decode(boxes, logits, sizes, x.shape[2], 0.3)
        t3 = time.perf_counter()
        conv_total = sum(v[0] for v in stats.values())
        stats["overhead"][0] += (t1 - t0) + (t3 - t2) + max(0.0, (t2 - t1) - conv_total)
        if i >= 2:  # warm-up runs dropped
            runs.append(stats)
    out = {}
    for key in runs[0]:
        rows = np.array([r[key] for r in runs])
        out[key] = [float(statistics.median(rows[:, 0]))] + [float(v) for v in rows[0, 1:]]
    return out


def build_ssd_cost_table(
    model: SsdDetector, device_name: str, threads: int, repeats: int, n_check: int
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    model.eval()
    frame = profile_frame()
    t_start = time.perf_counter()
    entries, overhead = [], []
    todo = [(lv, s) for s in RESOLUTION_SCALES for lv in LEVELS]
    for lv, s in progress(todo, desc=f"profile-ssd ({threads} thread{'s' if threads > 1 else ''})", unit="config"):
        res = profile_uniform(model, frame, lv, s, repeats)
        for name in LAYER_NAMES:
            sec, macs, byts, peak = res[name]
            entries.append(
                {
                    "layer": name,
                    "level": lv,
                    "in_width": 1.0,
                    "scale": s,
                    "latency_ms": sec * 1e3,
                    "macs": macs,
                    "bytes": byts,
                    "peak_act_bytes": peak,
                }
            )
        if lv == "full":
            sec, macs, byts, peak = res["overhead"]
            for w in WIDTHS:
                overhead.append(
                    {
                        "scale": s,
                        "in_width": w,
                        "latency_ms": sec * 1e3,
                        "macs": macs,
                        "bytes": byts,
                        "peak_act_bytes": peak,
                    }
                )
    data = assemble_cost_table(
        model,
        frame,
        device_name=device_name,
        detector=model.detector_name,
        input_side=NATIVE_SIDE,
        threads=threads,
        repeats=repeats,
        layers=[{"name": n, "input_from": None} for n in LAYER_NAMES],
        head_input_from=["head"],
        entries=entries,
        overhead=overhead,
        started=t_start,
        n_check=n_check,
    )
    tracker = profile_tracker(model)
    if tracker is not None:
        data["tracker"] = tracker
    return data


def main(argv: Sequence[str] | None = None) -> int:
    from agra_ros.detectors import registry

    p = argparse.ArgumentParser(
        prog="agra-ros profile-ssd",
        description="Measure the real detector's per-layer, per-level cost table on this machine.",
    )
    p.add_argument("--device-name", default="x86_generic", help="device profile name the table is filed under")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads during the measurement")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per configuration (median reported)")
    p.add_argument("--check-configs", type=int, default=30, help="random configurations for the additive check")
    p.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    p.add_argument("--out", default=None, help="output file (default: runs/profile/ssd-<device>-<threads>t.json)")
    p.add_argument("--ship", action="store_true", help="write the shipped table of this device instead")
    p.add_argument(
        "--tracker-only",
        action="store_true",
        help="time only the keyframe tracker and add its section to the existing table (the shipped one, or "
        "--out's; the detector's entries are kept as they are)",
    )
    args = p.parse_args(argv)
    model = registry.load("ssd", args.weights)
    if args.ship:
        out = registry.shipped_cost_table(
            "ssd", args.device_name if args.threads == 1 else f"{args.device_name}-{args.threads}t"
        )
    else:
        out = Path(args.out) if args.out else run_dir("profile") / f"ssd-{args.device_name}-{args.threads}t.json"
    if args.tracker_only:
        return _add_tracker(model, registry.shipped_cost_table("ssd", args.device_name), out, args.threads)
    data = build_ssd_cost_table(model, args.device_name, args.threads, args.repeats, args.check_configs)
    write_json_atomic(out, data)
    report_cost_table(out, data)
    return 0


def _add_tracker(model: SsdDetector, shipped: Path, out: Path, threads: int) -> int:
    """``--tracker-only``: the table at ``out`` (or the shipped one when ``out`` does not exist yet) with a freshly
    timed ``tracker`` section, written to ``out``."""
    torch.set_num_threads(threads)
    data = CostTable.load(out if out.exists() else shipped).data
    tracker = profile_tracker(model)
    if tracker is None:
        print("no real media to time the tracker on (agra-ros fetch-media): nothing written")
        return 2
    data["tracker"] = tracker
    write_json_atomic(out, data)
    print(
        f"tracker on {tracker['frames']} frames ({tracker['objects_range'][0]}-{tracker['objects_range'][1]} "
        f"objects): {tracker['base_ms']:.2f} ms + {tracker['per_object_ms']:.3f} ms per object -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
