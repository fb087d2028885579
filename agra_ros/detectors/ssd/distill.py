"""Make the real detector's neuron levels useful: rank channels, refit by least squares, distil from ``full``.

Nothing here needs labels: the teacher is the pretrained network at its ``full`` configuration (which never changes,
see :mod:`agra_ros.detectors.ssd.network`), the data is unlabelled real footage (videos, image folders, or a robot's own
recording), so a robot can specialise the slim levels to its own camera with the same command.

Three steps, each measured in the README:

1. **Rank** each producer's channels by (mean |activation| of the channel as its consumers read it) x (L1 norm of
   the consumers' weights reading it), on calibration frames. Ranking by weight norm alone keeps almost nothing.
2. **Least squares**: for each slim width, every dense conv that reads a sliced tensor gets the closed-form ridge
   solution that best reproduces the full conv's pre-activation output from the channels that remain.
3. **Distillation** (seeded, resumable, time-budgeted, with progress), the slimmable recipe: every step draws a
   catalogue resolution and a heavily augmented batch (:mod:`agra_ros.detectors.ssd.augment`: crops, scales, flips,
   colour, blur, mosaic) from the training pool (the clips' first halves, the photo-like opencv-doc and darknet
   images, ``--extra-images``; never the held-out photos or second halves), runs the frozen teacher (``full``, the
   top of the sandwich) on it, and three students (sandwich rule: the smallest width, a random wider uniform width,
   a random per-layer mix) matching the teacher's class probabilities (binary cross entropy with soft targets,
   weighted towards anchors the teacher finds objects in) and box encodings (smooth L1, weighted by the teacher's
   confidence). Only the slim variants receive gradients.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from agra_ros.detectors.ssd.augment import augment_batch, default_image_dirs, training_pool
from agra_ros.detectors.ssd.frames import (  # noqa: F401  (re-exported: evaluate, calibrate and tests read them here)
    FrameSplit,
    read_footage,
    read_image_folder,
    read_video_frames,
    split_frames,
)
from agra_ros.detectors.ssd.graph_ops import GraphConv
from agra_ros.detectors.ssd.network import LAYER_NAMES, NATIVE_SIDE, SLIM_WIDTHS, SsdDetector
from agra_ros.granularity.levels import RESOLUTION_SCALES, WIDTHS
from agra_ros.progress import progress

log = logging.getLogger("agra_ros.distill")

WIDTH_LEVEL = {1.0: "full", 0.75: "neuron-75", 0.5: "neuron-50", 0.25: "neuron-25"}


def to_input(frames: np.ndarray, side: int) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, side, side) in [-1, 1], as SsdDetector.preprocess."""
    if frames.shape[1] != side:
        frames = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in frames])
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


# ---------------------------------------------------------------------- structure helpers
def consumers_of(model: SsdDetector) -> dict[str, list[str]]:
    """Producer output name -> the dense convs that read its (possibly depthwise-filtered) channels."""
    source: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for op in model.ops:
        if op["output"] not in model._conv_key:
            continue
        conv = model.conv(op["output"])
        src = source.get(op["inputs"][0])
        if conv.depthwise and src is not None:
            source[op["output"]] = src
            continue
        if src is not None:
            out.setdefault(src, []).append(op["output"])
        if conv.out_group is not None and not conv.depthwise:
            source[op["output"]] = op["output"]
    return out


def consumer_input(model: SsdDetector, consumer: str) -> str:
    return next(op["inputs"][0] for op in model.ops if op["output"] == consumer)


@torch.no_grad()
def run_collect(
    model: SsdDetector, x: torch.Tensor, levels: dict[str, str], names: set[str]
) -> dict[str, torch.Tensor]:
    """Forward pass that keeps the named tensors (conv outputs before activation are not exposed: post-activation)."""
    kept: dict[str, torch.Tensor] = {}
    model.forward(x, levels, keep=names, kept=kept)
    return kept


# ---------------------------------------------------------------------- 1. ranking
@torch.no_grad()
def rank_channels(model: SsdDetector, frames: np.ndarray, batch: int = 16) -> dict[str, torch.Tensor]:
    """Producer -> its channels by decreasing (mean |activation| as read) x (L1 of the reading weights)."""
    cons = consumers_of(model)
    read_tensor = {p: consumer_input(model, c[0]) for p, c in cons.items()}
    sums: dict[str, torch.Tensor] = {}
    full = {n: "full" for n in LAYER_NAMES}
    for i in range(0, len(frames), batch):
        kept = run_collect(model, to_input(frames[i : i + batch], NATIVE_SIDE), full, set(read_tensor.values()))
        for p, t in read_tensor.items():
            a = kept[t].abs().mean(dim=(0, 2, 3))
            sums[p] = sums.get(p, 0) + a
    ranks = {}
    for p, c in cons.items():
        l1 = sum(model.conv(cn).weight.abs().sum(dim=(0, 2, 3)) for cn in c)
        ranks[p] = torch.argsort(sums[p] * l1, descending=True)
    return ranks


# ---------------------------------------------------------------------- 2. least squares
def _im2col(x: torch.Tensor, conv: GraphConv) -> torch.Tensor:
    """(B, C, H, W) -> (B*Ho*Wo, C*k*k) patches of the conv's padded input."""
    xp = conv.pad(x)
    cols = F.unfold(xp, conv.k, stride=conv.stride)  # (B, C*k*k, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


@torch.no_grad()
def least_squares_refit(
    model: SsdDetector, frames: np.ndarray, ridge: float = 1e-3, max_rows: int = 40000, batch: int = 16, seed: int = 0
) -> None:
    """Refit the slim variants of every dense conv reading a sliced tensor (closed-form ridge regression)."""
    gen = torch.Generator().manual_seed(seed)
    cons = consumers_of(model)
    full = {n: "full" for n in LAYER_NAMES}
    pairs = [(c, consumer_input(model, c)) for cs in cons.values() for c in cs if model.conv(c).out_group is None]
    rows_per_batch = max(1, max_rows // max(1, len(frames) // batch))
    for group in LAYER_NAMES:
        targets = [(c, t) for c, t in pairs if model.conv(c).in_group == group]
        # in graph order, each conv fitted on inputs produced by the already refitted convs before it: a block's
        # refit changes what the next block of the same layer reads, so fitting them all on one pass would fit
        # later blocks to inputs they never see (measured: their error grew 3-5x instead of shrinking)
        for c, t in targets:
            conv = model.conv(c)
            xs: dict[float, list[torch.Tensor]] = {w: [] for w in SLIM_WIDTHS}
            ys: dict[float, list[torch.Tensor]] = {w: [] for w in SLIM_WIDTHS}
            for i in range(0, len(frames), batch):
                x = to_input(frames[i : i + batch], NATIVE_SIDE)
                ref = run_collect(model, x, full, {t})[t]
                y = F.conv2d(conv.pad(ref), conv.weight, conv.bias, conv.stride)
                y = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])
                for w in SLIM_WIDTHS:
                    slim = run_collect(model, x, dict(full, **{group: WIDTH_LEVEL[w]}), {t})[t]
                    a = _im2col(slim, conv)
                    keep = torch.randperm(a.shape[0], generator=gen)[:rows_per_batch]
                    xs[w].append(a[keep])
                    ys[w].append(y[keep])
            for w in SLIM_WIDTHS:
                _ridge_fit(conv, w, torch.cat(xs[w]), torch.cat(ys[w]), ridge)
        log.info("least squares: layer %s refitted (%d convs x %d widths)", group, len(targets), len(SLIM_WIDTHS))


def _ridge_fit(conv: GraphConv, width: float, a: torch.Tensor, y: torch.Tensor, ridge: float) -> None:
    """Set ``conv``'s variant at ``width`` to the ridge solution of ``a @ W.T + b = y`` (bias unregularised)."""
    a = a.double()
    a1 = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], 1)
    gram = a1.T @ a1
    reg = ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=a.dtype)
    reg[-1, -1] = 0.0
    sol = torch.linalg.solve(gram + reg, a1.T @ y.double())  # (features + 1, out)
    wv, bv = conv.params_for(width)
    wv.data.copy_(sol[:-1].T.reshape(wv.shape).float())
    bv.data.copy_(sol[-1].float())


# ---------------------------------------------------------------------- 3. distillation
@dataclass
class DistillConfig:
    minutes: float = 45.0
    """Wall-clock budget of the distillation loop (the step count follows from the machine's speed)."""
    batch: int = 8
    lr: float = 2e-4
    seed: int = 0
    box_weight: float = 1.0
    threads: int = 2
    checkpoint_every_s: float = 120.0
    log_every: int = 25
    """Log a line every this many steps (the progress bar is not in a background run's log)."""


def distill_loss(
    sb: torch.Tensor, sl: torch.Tensor, tb: torch.Tensor, tl: torch.Tensor, box_weight: float = 1.0
) -> torch.Tensor:
    """Soft-target BCE on class probabilities (anchors weighted by the teacher's confidence) + box smooth L1."""
    tp = torch.sigmoid(tl)
    fg = tp[..., 1:].max(dim=-1).values  # (B, N)
    wa = 0.05 + fg
    cls = F.binary_cross_entropy_with_logits(sl, tp, reduction="none").sum(-1)
    cls = (cls * wa).sum() / wa.sum()
    box = F.smooth_l1_loss(sb, tb, reduction="none", beta=0.1).sum(-1)
    box = (box * fg).sum() / fg.sum().clamp(min=1e-3)
    return cls + box_weight * box


def random_levels(rng: random.Random, uniform: float | None = None) -> dict[str, str]:
    if uniform is not None:
        return {n: WIDTH_LEVEL[uniform] for n in LAYER_NAMES}
    return {n: WIDTH_LEVEL[rng.choice(WIDTHS)] for n in LAYER_NAMES}


def sandwich(rng: random.Random) -> list[dict[str, str]]:
    """The students of one step (sandwich rule): the smallest width, one random wider uniform width, a random mix.

    The widest end of the sandwich is ``full`` itself, the frozen teacher (inplace distillation)."""
    smallest = min(SLIM_WIDTHS)
    wider = [w for w in SLIM_WIDTHS if w != smallest]
    return [random_levels(rng, smallest), random_levels(rng, rng.choice(wider)), random_levels(rng)]


def distill(model: SsdDetector, frames: np.ndarray, cfg: DistillConfig, state_path: Path | None = None) -> dict:
    """Distil the slim variants from ``full`` for ``cfg.minutes``; resumes from ``state_path`` when it exists."""
    torch.set_num_threads(cfg.threads)
    params = [p for conv in model.convs.values() for p in conv.variants.values()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rng = random.Random(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed)
    done_s, step, history = 0.0, 0, []
    if state_path is not None and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        done_s, step, history = st["done_s"], st["step"], st["history"]
        rng.setstate(st["rng"])
        np_rng = st["np_rng"]
        log.info("resumed distillation at step %d (%.1f of %.1f min)", step, done_s / 60, cfg.minutes)
    budget = cfg.minutes * 60.0
    model.train(False)
    last_ckpt = time.monotonic()
    t0 = time.monotonic() - done_s
    bar = progress(total=int(budget), initial=int(done_s), desc="distil", unit="s")  # seconds of the time budget
    while (elapsed := time.monotonic() - t0) < budget:
        frac = elapsed / budget
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))
        side = int(round(NATIVE_SIDE * rng.choice(RESOLUTION_SCALES)))
        x = to_input(augment_batch(frames, cfg.batch, side, np_rng), side)
        with torch.no_grad():
            tb, tl = model(x, {n: "full" for n in LAYER_NAMES})
        opt.zero_grad(set_to_none=True)
        loss = 0.0
        for levels in sandwich(rng):  # one backward per student: only one student's graph alive at a time
            sb, sl = model(x, levels)
            part = distill_loss(sb, sl, tb, tl, cfg.box_weight)
            part.backward()
            loss += float(part.detach())
        opt.step()
        step += 1
        history.append((step, round(elapsed, 1), loss, side))
        bar.update(int(time.monotonic() - t0) - bar.n)
        bar.set_postfix(step=step, loss=f"{loss:.3f}")
        if step % cfg.log_every == 0:
            log.info("step %d, %.1f of %.1f min, loss %.4f (side %d)", step, elapsed / 60, cfg.minutes, loss, side)
        if state_path is not None and time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
            _save_state(state_path, model, opt, time.monotonic() - t0, step, history, rng, np_rng)
            last_ckpt = time.monotonic()
    bar.close()
    if state_path is not None:
        _save_state(state_path, model, opt, budget, step, history, rng, np_rng)
    return {"steps": step, "minutes": cfg.minutes, "history": history}


def _save_state(path: Path, model, opt, done_s, step, history, rng, np_rng) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "done_s": done_s,
            "step": step,
            "history": history,
            "rng": rng.getstate(),
            "np_rng": np_rng,
        },
        tmp,
    )
    tmp.replace(path)


# ---------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    from agra_ros.detectors.ssd.weights import import_pretrained, load_ssd, save_ssd

    ap = argparse.ArgumentParser(
        prog="agra-ros distill-detector",
        description="Make the real detector's slim (neuron) levels: rank channels, least-squares refit, then "
        "distil from the full configuration on unlabelled footage. Resumable: rerun the same command.",
    )
    ap.add_argument(
        "--video",
        action="append",
        default=[],
        help="training video (repeatable); the first half of each is trained on, the second half held out",
    )
    ap.add_argument(
        "--footage",
        action="append",
        default=[],
        help="your camera's footage: a video, an image folder or a folder the recorder wrote (repeatable); its first "
        "half is trained on beside the default clips, its second half held out, so the slim levels specialise to it",
    )
    ap.add_argument("--photos", action="append", default=[], help="folder of photos held out (out-of-domain)")
    ap.add_argument(
        "--extra-images",
        action="append",
        default=[],
        help="folder of images to train on as well (repeatable, searched recursively; held-out photo names skipped)",
    )
    ap.add_argument(
        "--no-default-images",
        action="store_true",
        help="do not add the opencv-doc examples' and darknet's photo-like images to the training pool",
    )
    ap.add_argument("--pretrained", default="", help="packed assets file of the npm package (default: fetch it)")
    ap.add_argument("--init", default="", help="start from this weights file instead of the pretrained import")
    ap.add_argument("--minutes", type=float, default=DistillConfig.minutes, help="distillation budget (wall clock)")
    ap.add_argument("--batch", type=int, default=DistillConfig.batch)
    ap.add_argument("--lr", type=float, default=DistillConfig.lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calib", type=int, default=64, help="calibration frames for ranking and least squares")
    ap.add_argument("--out", default="runs/distill", help="run folder (state, weights, log)")
    ap.add_argument("--ship", action="store_true", help="also overwrite the weights shipped in the package")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    out = Path(args.out)
    try:  # the user's footage first: a bad path is one line and exit 2, before anything is fetched or written
        footage = [read_footage(f) for f in args.footage]
    except ValueError as exc:
        print(f"agra-ros distill-detector: {exc}", file=sys.stderr)
        return 2
    if not args.video:
        from agra_ros.workload.real_media import CLIPS, fetch_real_media, photos_dir, video_path

        root = fetch_real_media()
        args.video = [str(video_path(c, root)) for c in CLIPS]
        args.photos = args.photos or [str(photos_dir(root))]
    split = split_frames(args.video, args.photos, footage=footage)
    out.mkdir(parents=True, exist_ok=True)
    log.info(
        "frames: %d train, %d in-domain held out, %d out-of-domain",
        len(split.train),
        len(split.in_domain),
        len(split.out_domain),
    )
    image_dirs = [*([] if args.no_default_images else default_image_dirs()), *args.extra_images]
    pool, pool_about = training_pool(split.train, image_dirs, args.photos)
    (out / "training_pool.json").write_text(json.dumps(pool_about, indent=1))
    init_path = out / "init.pt"
    if args.init:
        model = load_ssd(args.init)
    elif init_path.is_file():
        model = load_ssd(init_path)
    else:
        model = import_pretrained(args.pretrained or None)
        rng = np.random.default_rng(args.seed)
        calib = split.train[rng.choice(len(split.train), size=min(args.calib, len(split.train)), replace=False)]
        t = time.monotonic()
        model.build_variants(rank_channels(model, calib))
        least_squares_refit(model, calib, seed=args.seed)
        log.info("ranking + least squares: %.0f s", time.monotonic() - t)
        save_ssd(model, init_path, {"slim_levels": "ranked + least squares"})
    cfg = DistillConfig(minutes=args.minutes, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads)
    result = distill(model, pool, cfg, out / "distill_state.pt")
    meta = {
        "slim_levels": "ranked + least squares + distilled from full",
        "distill": {**asdict(cfg), "steps": result["steps"], "videos": [Path(v).name for v in args.video]},
        "training_pool": {k: v for k, v in pool_about.items() if k != "held_out_names"},
    }
    save_ssd(model, out / "ssd_mobilenetv2_oidv4.pt", meta)
    (out / "history.json").write_text(json.dumps(result["history"]))
    if args.ship:
        from agra_ros.detectors.registry import shipped_weights

        save_ssd(model, shipped_weights("ssd"), meta)
    log.info("wrote %s (%d steps)", out / "ssd_mobilenetv2_oidv4.pt", result["steps"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
