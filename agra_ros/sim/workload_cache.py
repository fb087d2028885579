"""Real workload profiles for the simulator: scenes of every trace phase, embedded once by the detector's backbone.

The simulator's W must mean what the policy node receives from perception, never made-up vectors. For every phase of
a trace, :func:`phase_workloads` renders a short video clip with the synthetic scene generator in that phase's
settings (density, resolution, scene overrides), runs the default detector (the real SSD) at its full configuration
on every frame and keeps the workload embedding its backbone gives (:func:`agra_ros.workload.features.
workload_embedding`, what perception publishes), and measures motion with :func:`agra_ros.workload.features.
frame_motion`, perception's own definition. The
result is cached as ``.npz`` (keyed by a hash of the trace and the encoder seed, so an edited trace is re-rendered):
shipped under ``agra_ros/data/sim_workload/`` for the package's traces, in the user's cache for any other trace.
A new package trace is shipped by rendering it with ``cache_dir=shipped_cache_dir()``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agra_ros.detectors import registry
from agra_ros.paths import data_dir
from agra_ros.workload.features import EMBEDDING_DIM, PROJECTION_SEED, frame_motion
from agra_ros.workload.scene import SceneGenerator
from agra_ros.workload.trace import Trace

FRAMES_PER_PHASE = 16
"""Frames rendered per phase (consecutive video frames: the scene and its motion evolve)."""


@dataclass(frozen=True)
class PhaseWorkload:
    """Embedded frames of one trace phase."""

    embeddings: np.ndarray
    """(K, EMBEDDING_DIM) float32 frame embeddings from the detector's backbone."""
    motion: np.ndarray
    """(K,) float32 :func:`frame_motion` of every frame against the previous one (0-255 grey levels)."""
    objects: np.ndarray
    """(K,) int64 ground-truth objects visible in every frame."""
    resolution_mpix: float
    """Camera image size of the phase in megapixels."""


def _trace_key(trace: Trace, seed: int) -> str:
    payload = json.dumps(
        {
            # what the frames depend on: the targets are not part of it (a relative variant shares the rendering)
            "trace": [{k: v for k, v in asdict(p).items() if not k.startswith("target")} for p in trace.phases],
            "seed": seed,
            "k": FRAMES_PER_PHASE,
            "dim": EMBEDDING_DIM,
            "w": f"{registry.DEFAULT_DETECTOR}-backbone-{PROJECTION_SEED}",
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def render_phase_workloads(trace: Trace, seed: int = 0) -> list[PhaseWorkload]:
    """Render and embed FRAMES_PER_PHASE frames for every phase of ``trace`` (about a second per phase)."""
    detector = registry.load(registry.DEFAULT_DETECTOR)
    out: list[PhaseWorkload] = []
    for i, phase in enumerate(trace.phases):
        gen = SceneGenerator(seed=seed + 1000 * i, video=True)
        gen.set_params(**phase.scene_changes())
        emb, motion, objects = [], [], []
        previous = None
        for _ in range(FRAMES_PER_PHASE + 1):
            frame = gen.next_frame()
            emb.append(detector.detect([frame.image])[0].embedding)
            motion.append(frame_motion(previous, frame.image) if previous is not None else 0.0)
            objects.append(len(frame.boxes))
            previous = frame.image
        # drop the first frame: its motion is 0 by definition (no previous frame), the rest are steady-state
        out.append(
            PhaseWorkload(
                np.stack(emb[1:]).astype(np.float32),
                np.array(motion[1:], np.float32),
                np.array(objects[1:], np.int64),
                phase.resolution[0] * phase.resolution[1] / 1e6,
            )
        )
    return out


def shipped_cache_dir() -> Path:
    """Where the package's own traces are cached (shipped, read-only once installed)."""
    return data_dir() / "sim_workload"


def user_cache_dir() -> Path:
    """Where renderings of other traces go: ``$XDG_CACHE_HOME/agra_ros/sim_workload`` (~/.cache by default), never
    the installed package, which may be read-only and is not the user's to change."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agra_ros" / "sim_workload"


def phase_workloads(trace: Trace, seed: int = 0, cache_dir: Path | None = None) -> list[PhaseWorkload]:
    """Cached :func:`render_phase_workloads`: ``<dir>/<trace>-<hash>.npz`` read from ``cache_dir`` if given, else
    from the shipped cache, then the user cache; a new rendering is written to ``cache_dir`` or the user cache."""
    name = f"{trace.name}-{_trace_key(trace, seed)}.npz"
    folders = [Path(cache_dir)] if cache_dir is not None else [shipped_cache_dir(), user_cache_dir()]
    for folder in folders:
        if (folder / name).is_file():
            with np.load(folder / name) as z:
                return [
                    PhaseWorkload(z[f"emb{i}"], z[f"motion{i}"], z[f"objects{i}"], float(z[f"mpix{i}"]))
                    for i in range(len(trace.phases))
                ]
    folder = folders[-1]
    path = folder / name
    phases = render_phase_workloads(trace, seed)
    arrays: dict[str, np.ndarray] = {}
    for i, p in enumerate(phases):
        arrays.update(
            {
                f"emb{i}": p.embeddings,
                f"motion{i}": p.motion,
                f"objects{i}": p.objects,
                f"mpix{i}": np.array(p.resolution_mpix),
            }
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    except OSError:  # read-only install: keep the rendering in memory
        pass
    return phases
