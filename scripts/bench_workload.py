"""Time the workload module: synthetic frames (video and data-set mode) and W, on one thread.

    python scripts/bench_workload.py [--frames 100]

Prints median and p90 milliseconds per frame at 640x480 and 1280x720 (default scene: 0-40 objects), and what W costs
perception: motion per frame, and the embedding (pooling and projection of backbone outputs) per keyframe.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agra_ros.detectors.interface import pooled_features
from agra_ros.workload.features import frame_motion, workload_embedding
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
        gen = SceneGenerator(1, params, video=True)
        a, b = gen.next_frame().image, gen.next_frame().image
        timing = _timed(lambda a=a, b=b: frame_motion(a, b), args.frames)
        print(f"W motion      {width}x{height}: {_fmt(*timing)}")
    # W's embedding: perception pools four block outputs the detector computes anyway (352 channels for the SSD)
    blocks = [torch.randn(1, c, s, s) for c, s in ((32, 38), (64, 19), (96, 19), (160, 10))]
    timing = _timed(lambda: workload_embedding(pooled_features(blocks)[0]), args.frames)
    print(f"W embedding   (pool + projection): {_fmt(*timing)}")


def _fmt(p50: float, p90: float, cpu: float) -> str:
    return f"wall p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  cpu p50 {cpu:6.2f} ms"


if __name__ == "__main__":
    main()
