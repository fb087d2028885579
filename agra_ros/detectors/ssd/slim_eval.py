"""How well the slim levels hold, in and out of domain (issue 21's goals), for one weights file.

``python -m agra_ros.detectors.ssd.slim_eval --weights FILE --out DIR [--ood VIDEO_OR_FOLDER ...]`` measures all
``neuron-75`` and all ``neuron-50`` (scale 1, every frame) against ``full`` with the confident metric (strict beside
it) and their speed-up over ``full`` at ``--threads`` (default 1), with ``agra-ros evaluate-footage``'s own
measurement (:func:`agra_ros.detectors.footage.evaluate`), on:

- ``in_domain``: every ``--every``-th frame of the clips' second halves (vtest, Megamind, tree; never trained on);
- ``photos``: the 14 held-out photos;
- each ``--ood`` footage (a video or an image folder nobody trained on).

It writes ``slim_eval.json`` (and the held-out frames it extracted) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import cv2

from agra_ros.granularity.levels import GranularityConfig

LEVELS = ("full", "neuron-75", "neuron-50")


def write_held_out_frames(out: Path, every: int) -> Path:
    """Every ``every``-th frame of each clip's second half, as PNG files named ``<clip>_<frame>.png`` in ``out``."""
    from agra_ros.workload.real_media import CLIPS, fetch_real_media, video_path

    root = fetch_real_media()
    out.mkdir(parents=True, exist_ok=True)
    for clip in CLIPS:
        cap = cv2.VideoCapture(str(video_path(clip, root)))
        frames = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr)
        cap.release()
        for i in range(len(frames) // 2, len(frames), every):  # the half distill-detector holds out
            cv2.imwrite(str(out / f"{clip}_{i:04d}.png"), frames[i])
    return out


def measure(model, path: Path, every: int, max_frames: int, repeats: int) -> dict:
    from agra_ros.detectors.footage import evaluate, read_frames

    frames, what = read_frames(path, every, max_frames)
    n = len(model.switchable_layer_names())
    configs = [(GranularityConfig.uniform(lv, n), "uniform") for lv in LEVELS]
    rows = evaluate(model, frames, configs, repeats)
    res = {"path": str(path), "frames": len(frames), "read": what}
    for lv, r in zip(LEVELS, rows):
        res[lv] = {
            "confident": round(float(r.agreement), 4),
            "strict": round(float(r.strict), 4),
            "latency_ms": round(r.latency_s * 1e3, 2),
            "speedup": round(float(r.speedup), 3),
        }
    return res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m agra_ros.detectors.ssd.slim_eval", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--weights", default=None, help="SSD weights file (default: shipped)")
    ap.add_argument("--out", type=Path, required=True, help="run folder")
    ap.add_argument("--ood", action="append", default=[], help="out-of-domain video or image folder (repeatable)")
    ap.add_argument("--every", type=int, default=4, help="every Nth held-out clip frame (default 4)")
    ap.add_argument("--ood-every", type=int, default=5, help="every Nth frame of an --ood video (default 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes, a frame's lowest time counts")
    args = ap.parse_args(argv)
    import torch

    from agra_ros.detectors import registry
    from agra_ros.workload.real_media import photos_dir

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = registry.load("ssd", args.weights)
    sets = {
        "in_domain": (write_held_out_frames(args.out / "held_out_frames", args.every), 1),
        "photos": (photos_dir(), 1),
    }
    sets.update({f"ood:{Path(p).name}": (Path(p), args.ood_every) for p in args.ood})
    result = {"weights": args.weights or "shipped", "threads": args.threads}
    for name, (path, every) in sets.items():
        result[name] = r = measure(model, path, every, 300, args.repeats)
        print(
            f"{name:>16} ({r['frames']} frames): "
            + ", ".join(f"{lv} {r[lv]['confident']:.3f} ({r[lv]['speedup']:.2f}x)" for lv in LEVELS[1:])
        )
    (args.out / "slim_eval.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'slim_eval.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
