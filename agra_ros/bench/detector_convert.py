"""The converter's accuracy cost without retraining, measured on our own detector (and a torchvision check).

Run: ``agra-ros bench convert --plain PLAIN.pt`` where PLAIN.pt is a detector trained at full
width only (``agra-ros train-detector --full-only-steps N --steps N --calib-batches 0 --out PLAIN.pt``). It
compares, at every uniform neuron level (scale 1.0), mAP@0.5 on the held-out validation set of

- the plain detector with naive slicing (first k filters, batch-norm slices),
- the plain detector converted with L1 filter ranking (``rank_filters``; layers feeding a skip merge are unsafe
  for reordering and keep their order),
- the shipped slimmable-trained detector (sandwich rule + in-place distillation).

It also converts torchvision's ssdlite320_mobilenet_v3_large (random weights: no download) and reports how many
layers were converted, ranked and pinned, and that the converted backbone computes the same features at ``full``
and ``partitioned``.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence

import torch

from agra_ros.detectors.synthetic.data import validation_frames
from agra_ros.detectors.synthetic.evaluate import ValidationSet, evaluate_config
from agra_ros.detectors.synthetic.network import load_detector
from agra_ros.granularity.convert import convert_model, inherit_batch_norm, rank_filters
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.granularity.switchable import SwitchableConv2d

LEVELS_CHECKED = ("full", "neuron-75", "neuron-50", "neuron-25")


def torchvision_check() -> str:
    import torchvision

    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        ref = model.backbone(x)
    report = convert_model(model, trace_root=model.backbone)
    layers = [m for m in model.modules() if isinstance(m, SwitchableConv2d)]
    errs = {}
    for level in ("full", "partitioned"):
        for m in layers:
            m.set_level(level)
        with torch.no_grad():
            out = model.backbone(x)
        errs[level] = max(float(((out[k] - ref[k]).abs().max() / ref[k].abs().max()).item()) for k in ref)
    for m in layers:
        m.set_level("neuron-50")
    with torch.no_grad():
        n_boxes = model([torch.rand(3, 320, 320)])[0]["boxes"].shape[0]
    return (
        f"ssdlite320_mobilenet_v3_large: {report.summary()}; max relative feature error vs original: "
        f"full {errs['full']:.1e}, partitioned {errs['partitioned']:.1e}; the whole detector runs at neuron-50 "
        f"({n_boxes} boxes)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agra-ros bench convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--plain", required=True, help="detector weights trained at full width only")
    p.add_argument("--weights", default=None, help="slimmable-trained weights (default: shipped)")
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    plain = load_detector(args.plain)
    naive = copy.deepcopy(plain)
    for m in naive.switchable_layers():
        inherit_batch_norm(m)
    ranked = copy.deepcopy(plain)
    report = rank_filters(ranked)
    slim = load_detector(args.weights)
    data = ValidationSet(validation_frames(args.n_val), slim)
    n = len(slim.switchable_layers())
    print(f"ranked (reordered) layers: {report.reordered}; kept order (unsafe): {sorted(report.unsafe)}")
    print(f"mAP@0.5 on {len(data)} held-out frames, uniform configurations at scale 1.0:")
    print(f"{'level':<12}{'plain, naive slice':>20}{'plain, L1-ranked':>18}{'slimmable-trained':>19}")
    for level in LEVELS_CHECKED:
        cfg = GranularityConfig.uniform(level, n)
        vals = [evaluate_config(m, data, cfg) for m in (naive, ranked, slim)]
        print(f"{level:<12}{vals[0]:>20.3f}{vals[1]:>18.3f}{vals[2]:>19.3f}")
    print(torchvision_check())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
