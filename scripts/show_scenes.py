"""Save a grid of synthetic frames with their ground-truth boxes drawn, to eyeball the data set.

    python scripts/show_scenes.py --out docs/scenes.png --seed 0

Top rows: independent data-set frames (``make_dataset``); bottom row: consecutive video frames 0, 10, 20, 30.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from agra_ros.workload.scene import SceneGenerator, make_dataset
from agra_ros.workload.scene_types import CLASS_NAMES, CLASS_STYLES, Frame, SceneParams


def annotate(frame: Frame) -> np.ndarray:
    """The frame (RGB) with each box drawn in its class colour and named."""
    image = frame.image.copy()
    for box, label in zip(frame.boxes, frame.labels):
        x0, y0, x1, y1 = (int(v) for v in box)
        colour = CLASS_STYLES[CLASS_NAMES[int(label)]][0]
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 3)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        cv2.putText(image, CLASS_NAMES[int(label)], (x0, max(10, y0 - 2)), cv2.FONT_HERSHEY_PLAIN, 0.8, colour, 1)
    cv2.putText(image, f"#{frame.index} n={len(frame.boxes)}", (4, 16), cv2.FONT_HERSHEY_PLAIN, 1.2, (255, 255, 255), 2)
    return image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/scenes.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = SceneParams(width=640, height=480)
    stills = make_dataset(args.seed, 8, params)
    video = SceneGenerator(args.seed, params, video=True)
    clip = [video.next_frame() for _ in range(31)][::10]
    tiles = [annotate(f) for f in stills + clip]
    rows = [np.concatenate(tiles[i : i + 4], axis=1) for i in range(0, len(tiles), 4)]
    grid = np.concatenate(rows, axis=0)
    grid = cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), interpolation=cv2.INTER_AREA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
