"""Train the granularity-switchable detector (``agra-ros train-detector``).

Every step follows the sandwich rule of slimmable networks, generalised to per-layer mixed widths because the
policy mixes levels layer by layer:

1. the widest network (every layer ``full``) learns from the ground truth;
2. the narrowest (every layer ``neuron-25``) and ``random_configs`` random mixed configurations (each layer
   an independent random width) learn from the ground truth *and* from the widest network's outputs of the
   same batch (in-place distillation);
3. one resolution scale is drawn per step for all of them, so every width also sees every input size.

Gradients of all members are summed before one AdamW step (warm-up + cosine learning rate). After training, each
layer's switchable batch-norms are recalibrated: their statistics are recomputed with exact (cumulative) averages
over batches run at every uniform width, so each width's BN matches the sub-network it sits in; then random mixed
configurations fill each layer's input-aware (input width, own width) statistics (see ``switchable``).

A run with a full-only phase (``--full-only-steps``, the converter's plain baseline) ramps the narrower members in
over ``--sandwich-warmup`` steps: switched in at full weight, their untrained widths' losses (about 30x the
widest's) blew the widest network's loss up from 0.74 to 4.7. The shipped run trains all widths from step 0.

Reproduce the shipped weights (CPU, about 30 min on one or two threads)::

    agra-ros train-detector --seed 0 --steps 1300 --threads 2

Data comes from the synthetic scene generator, on the fly: a pool of frames (cached at every input side) is
refreshed with a new seeded chunk every ``refresh_every`` steps; flips and brightness/contrast jitter augment it.
Everything is seeded; a checkpoint is written atomically every ``checkpoint_every`` steps and ``--resume``
continues from it bit-for-bit in data order (the pool is rebuilt from its chunk seeds).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import math
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agra_ros.detectors.synthetic.data import CachedFrames, augment, build_targets, train_seed
from agra_ros.detectors.synthetic.losses import detection_loss, distillation_loss
from agra_ros.detectors.synthetic.network import AgraDetector, ArchConfig, save_detector
from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES
from agra_ros.granularity.switchable import collect_pair_statistics
from agra_ros.paths import run_dir
from agra_ros.workload.scene import make_dataset
from agra_ros.workload.scene_types import CLASS_NAMES, SceneParams

WIDTH_LEVELS: tuple[str, ...] = tuple(lv for lv in LEVELS if lv != "partitioned")
"""Levels that differ in width (``partitioned`` computes exactly what ``full`` does)."""


@dataclass
class TrainConfig:
    """Settings of one training run (every field has a CLI flag of the same name)."""

    seed: int = 0
    """Run seed: data chunks, batch order, sampled configurations and scales, initial weights."""
    steps: int = 1300
    """Optimiser steps."""
    batch_size: int = 16
    """Frames per step (each runs through every sandwich member)."""
    lr: float = 2e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 5e-4
    """AdamW weight decay on conv weights (none on batch-norm and biases)."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up before the cosine decay."""
    grad_clip: float = 10.0
    """Gradient-norm clip."""
    random_configs: int = 1
    """Random mixed-width configurations per step besides the widest and the narrowest."""
    distill_weight: float = 1.0
    """Weight of the in-place distillation loss of the narrower members."""
    full_only_steps: int = 0
    """Steps at the start that train only the widest network (a plain detector, the converter's baseline)."""
    sandwich_warmup: int = 100
    """Steps after a full-only phase over which the narrower members' loss weight ramps from 0 to 1. Their
    batch-norms and widths are untrained when the sandwich phase begins; at full weight their large early losses
    (30x the widest's) swamp the shared weights and undo the widest network (seen at step 200 of a run with
    ``--full-only-steps 200``). Unused when ``full_only_steps`` is 0: then all widths start together."""
    plain_snapshot: str = ""
    """Where to save the plain detector at the end of ``full_only_steps`` (empty: do not)."""
    pool_frames: int = 1280
    """Frames in the training pool."""
    chunk_frames: int = 32
    """Frames per data chunk (one seed each); the pool holds ``pool_frames // chunk_frames`` chunks."""
    refresh_every: int = 20
    """Steps between replacing the oldest chunk of the pool with a new one."""
    calib_batches: int = 24
    """Batches for the final batch-norm recalibration (0: keep the training running statistics)."""
    calib_random_configs: int = 6
    """Random mixed configurations per calibration batch that fill the layers' input-aware batch-norm statistics
    (0: none; mixed configurations then use the per-width statistics of the uniform ones). Measured on the shipped
    run: mixing random configurations into the per-width statistics instead (the usual slimmable recipe) cost
    full 5 and neuron-25 16 points of mAP@0.5, and without input-aware statistics a quarter of the random mixed
    configurations fell below 0.63 (a neuron-25 layer feeding a full one collapses)."""
    checkpoint_every: int = 50
    """Steps between atomic checkpoints."""
    out: str = ""
    """Weights file to write (empty: runs/train_detector/detector.pt; the shipped ones: agra_ros/data/detector.pt)."""
    checkpoint: str = ""
    """Checkpoint file (empty: ``<out>.ckpt``)."""
    resume: bool = False
    """Continue from the checkpoint when it exists."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    threads: int = 1
    """CPU threads for torch (1 is fastest on a shared 2-core machine)."""
    progress: bool = True
    """Show a progress bar."""
    arch: ArchConfig = field(default_factory=ArchConfig)
    """Architecture hyper-parameters."""


# ---------------------------------------------------------------------- pieces
def lr_at(step: int, cfg: TrainConfig) -> float:
    """Warm-up then cosine decay to 2 % of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def narrow_weight(step: int, cfg: TrainConfig) -> float:
    """Loss weight of the sandwich members narrower than full at ``step`` (see ``TrainConfig.sandwich_warmup``)."""
    if cfg.full_only_steps <= 0 or cfg.sandwich_warmup <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (step - cfg.full_only_steps + 1) / cfg.sandwich_warmup)))


def sample_config(rng: np.random.Generator, n_layers: int) -> list[str]:
    """A random mixed-width configuration: each layer an independent width level."""
    return [WIDTH_LEVELS[i] for i in rng.integers(len(WIDTH_LEVELS), size=n_layers)]


def sandwich_configs(rng: np.random.Generator, n_layers: int, n_random: int) -> list[list[str]]:
    """Widest, narrowest, then ``n_random`` random mixed configurations (the sandwich rule)."""
    return [["full"] * n_layers, ["neuron-25"] * n_layers] + [sample_config(rng, n_layers) for _ in range(n_random)]


def pool_chunks(n_slots: int, refreshes: int) -> list[int]:
    """Chunk id in each pool slot after ``refreshes`` refreshes (refresh r puts chunk n_slots + r - 1 in slot
    (r - 1) % n_slots), so a resumed run rebuilds exactly the pool it had."""
    slots = list(range(n_slots))
    for r in range(max(0, refreshes - n_slots) + 1, refreshes + 1):
        slots[(r - 1) % n_slots] = n_slots + r - 1
    return slots


def load_chunk(seed: int, chunk: int, n: int, sides: Sequence[int]) -> CachedFrames:
    return CachedFrames.from_frames(make_dataset(train_seed(seed, chunk), n, SceneParams()), sides)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim == 4 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def calibrate_batch_norm(
    model: AgraDetector,
    pool: CachedFrames,
    batches: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    random_configs: int = 6,
) -> None:
    """Recompute the batch-norm statistics exactly (cumulative averages) for the configurations they serve.

    Pass 1 runs every uniform width: each width's own batch-norm statistics then match the sub-network it sits
    in when all layers agree. Pass 2 runs ``random_configs`` random mixed configurations per batch with those
    frozen and records each layer's input-aware (input width, own width) statistics
    (:func:`~agra_ros.granularity.switchable.collect_pair_statistics`), which mixed configurations use.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    rng = np.random.default_rng([seed, 7_777_777])
    n_layers = len(model.switchable_layers())
    sides = sorted(pool.images)

    def batch(b: int) -> torch.Tensor:
        idx = rng.choice(len(pool), size=batch_size, replace=False)
        side = sides[b % len(sides)]
        return augment(pool.images[side][idx], [pool.boxes[i] for i in idx], rng)[0].to(device)

    for b in range(batches):
        x = batch(b)
        for lv in WIDTH_LEVELS:
            model.set_levels([lv] * n_layers)
            model(x)
    if random_configs > 0:
        collect_pair_statistics(model, True)
        for b in range(batches):
            x = batch(b)
            for _ in range(random_configs):
                model.set_levels(sample_config(rng, n_layers))
                model(x)
        collect_pair_statistics(model, False)
    for bn in bns:
        bn.momentum = 0.1
    model.set_levels(["full"] * n_layers)
    model.eval()


def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "step": step,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "opt": opt.state_dict(),
            "config": _config_dict(cfg),
        },
        tmp,
    )
    tmp.replace(path)


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["arch"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["arch"].items()}
    return d


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    return torch.device(name)


# ---------------------------------------------------------------------- training
def train(cfg: TrainConfig) -> Path:
    """Run training as configured; returns the path of the written weights."""
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.chunk_frames < 1 or cfg.pool_frames < cfg.chunk_frames:
        raise ValueError("steps, batch_size and chunk_frames must be >= 1 and pool_frames >= chunk_frames")
    torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    out = Path(cfg.out) if cfg.out else run_dir("train_detector") / "detector.pt"
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else out.with_suffix(out.suffix + ".ckpt")
    torch.manual_seed(cfg.seed)
    model = AgraDetector(CLASS_NAMES, cfg.arch).to(device)
    n_layers = len(model.switchable_layers())
    sides = [model.input_side(s) for s in RESOLUTION_SCALES]
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    start = 0
    if cfg.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = int(state["step"])
        print(f"resumed from {ckpt} at step {start}")

    n_slots = cfg.pool_frames // cfg.chunk_frames
    t0 = time.perf_counter()
    # the pool as it was before step ``start`` ran (step s > 0 refreshes first when s % refresh_every == 0), so a
    # run resumed anywhere, even at its end (calibration only), sees the data an uninterrupted run saw
    refreshes = max(0, start - 1) // cfg.refresh_every
    chunks = [load_chunk(cfg.seed, c, cfg.chunk_frames, sides) for c in pool_chunks(n_slots, refreshes)]
    pool = CachedFrames(
        {s: np.concatenate([c.images[s] for c in chunks]) for s in sides},
        [b for c in chunks for b in c.boxes],
        [lb for c in chunks for lb in c.labels],
    )
    del chunks
    print(f"data pool: {len(pool)} frames from {n_slots} seeded chunks in {time.perf_counter() - t0:.1f} s")

    try:
        from tqdm import tqdm

        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not cfg.progress, mininterval=2.0)
    except ImportError:  # pragma: no cover - tqdm is a dependency; keep training without a bar anyway
        bar = range(start, cfg.steps)
    t_train = time.perf_counter()
    for step in bar:
        if step > 0 and step % cfg.refresh_every == 0:
            r = step // cfg.refresh_every
            pool.replace(
                ((r - 1) % n_slots) * cfg.chunk_frames, load_chunk(cfg.seed, n_slots + r - 1, cfg.chunk_frames, sides)
            )
        rng = np.random.default_rng([cfg.seed, step])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        scale = RESOLUTION_SCALES[int(rng.integers(len(RESOLUTION_SCALES)))]
        side = model.input_side(scale)
        idx = rng.choice(len(pool), size=cfg.batch_size, replace=False)
        x, boxes = augment(pool.images[side][idx], [pool.boxes[i] for i in idx], rng)
        targets = build_targets(boxes, [pool.labels[i] for i in idx], side, cfg.arch.stride, model.num_classes)
        x = x.to(device)
        targets.heat, targets.index, targets.reg = (
            targets.heat.to(device),
            targets.index.to(device),
            targets.reg.to(device),
        )
        model.train()
        opt.zero_grad(set_to_none=True)
        sandwich = step >= cfg.full_only_steps
        configs = sandwich_configs(rng, n_layers, cfg.random_configs) if sandwich else [["full"] * n_layers]
        teacher: torch.Tensor | None = None
        logs: dict[str, float] = {}
        for k, levels in enumerate(configs):
            model.set_levels(levels)
            out_k = model(x)
            loss, parts = detection_loss(out_k, targets, model.num_classes)
            if teacher is None:
                logs.update(parts)
                logs["full"] = loss.item()
            else:
                # in-place distillation: the teacher is the widest member's detached output of this batch
                kd, kd_val = distillation_loss(out_k, teacher, targets, model.num_classes)
                loss = loss + cfg.distill_weight * kd
                logs["kd" if k > 1 else "narrow"] = kd_val if k > 1 else loss.item()
                loss = loss * narrow_weight(step, cfg)
            loss.backward()
            if teacher is None:
                teacher = out_k.detach()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if hasattr(bar, "set_postfix") and step % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
        if step % 100 == 0 or step == cfg.steps - 1:
            el = time.perf_counter() - t_train
            print(
                f"step {step} scale {scale} lr {lr_at(step, cfg):.2e} "
                + " ".join(f"{k} {v:.3f}" for k, v in logs.items())
                + f" elapsed {el:.0f}s",
                flush=True,
            )
        if cfg.plain_snapshot and step + 1 == cfg.full_only_steps:
            model.set_levels(["full"] * n_layers)
            save_detector(model.eval(), cfg.plain_snapshot, {"kind": "plain", "steps": step + 1, "seed": cfg.seed})
            print(f"plain (full-width only) snapshot -> {cfg.plain_snapshot}")
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save_checkpoint(ckpt, model, opt, step + 1, cfg)

    if cfg.calib_batches > 0:
        calibrate_batch_norm(model, pool, cfg.calib_batches, cfg.batch_size, cfg.seed, device, cfg.calib_random_configs)
    model.set_levels(["full"] * n_layers)
    meta = {
        "kind": "slimmable",
        "steps": cfg.steps,
        "seed": cfg.seed,
        "resumed_from_step": start,
        "train_seconds_since_resume": round(time.perf_counter() - t_train, 1),
        "torch": torch.__version__,
        "levels": list(LEVEL_WIDTH),
        "config": _config_dict(cfg),
    }
    path = save_detector(model.cpu().eval(), out, meta)
    _save_checkpoint(ckpt, model, opt, cfg.steps, cfg)
    print(f"weights -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


# ---------------------------------------------------------------------- CLI
def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring under each dataclass field (used as the CLI help)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = str(b.value.value)  # type: ignore[union-attr]
    return docs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agra-ros train-detector", description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    docs = field_docs(TrainConfig)
    for f in TrainConfig.__dataclass_fields__.values():
        if f.name in ("arch", "progress", "resume"):
            continue
        default = getattr(d, f.name)
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"{docs.get(f.name, '')} (default: {default!r})",
        )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint when it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k != "no_progress"}
    cfg = TrainConfig(**values, progress=not args.no_progress)
    train(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
