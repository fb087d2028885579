"""Time the workload module: synthetic frames (video and data-set mode) and the W encoder, on one thread.

    python scripts/bench_workload.py [--frames 100]

Prints median and p90 milliseconds per frame at 640x480 and 1280x720 (default scene: 0-40 objects).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agra_ros.workload.features import WorkloadEncoder, WorkloadTracker
from agra_ros.workload.scene import SceneGenerator
from agra_ros.workload.scene_types import SceneParams


def _timed(fn, n: int) -> tuple[float, float, float]:
    """Median and p90 wall ms, and median thread-CPU ms (unaffected by waiting for a core on a busy machine)."""
    fn()
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return float(np.median(wall) * 1e3), float(np.percentile(wall, 90) * 1e3), float(np.median(cpu) * 1e3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)
    for width, height in ((640, 480), (1280, 720)):
        params = SceneParams(width=width, height=height)
        for video in (True, False):
            gen = SceneGenerator(0, params, video=video)
            counts: list[int] = []
            timing = _timed(lambda g=gen, c=counts: c.append(len(g.next_frame().boxes)), args.frames)
            mode = "video  " if video else "dataset"
            print(f"scene {mode} {width}x{height}: {_fmt(*timing)}  objects/frame {np.mean(counts):.1f}")
        image = SceneGenerator(1, params).next_frame().image
        encoder = WorkloadEncoder(seed=0)
        tracker = WorkloadTracker(encoder)
        timing = _timed(lambda e=encoder, im=image: e.embed(im), args.frames)
        print(f"W embed       {width}x{height}: {_fmt(*timing)}")
        timing = _timed(lambda t=tracker, im=image: t.update(im, 5, 0.5), args.frames)
        print(f"W update      {width}x{height}: {_fmt(*timing)}")


def _fmt(p50: float, p90: float, cpu: float) -> str:
    return f"wall p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  cpu p50 {cpu:6.2f} ms"


if __name__ == "__main__":
    main()
