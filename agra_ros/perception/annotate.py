"""Drawing detections and the node's state onto a frame for image_annotated (rviz / rqt_image_view).

Pure numpy + OpenCV (no rclpy), in the core so the node, the dashboard and the detector evaluation's figures all
draw detections the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(label: int) -> tuple[int, int, int]:
    """A stable, bright RGB colour per class index (same palette idea as the rviz markers)."""
    rng = np.random.default_rng(int(label) + 7)
    r, g, b = (int(v) for v in rng.uniform(60, 255, 3))
    return r, g, b


def annotate(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    lines: Sequence[str] = (),
) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 RGB ``image`` with boxes, ``"<class> <score>"`` labels and status ``lines``.

    ``lines`` (FPS, active configuration, latency ...) go top-left on a dark band so they stay readable on any
    background. Text size follows the image height so small and large frames both read well.
    """
    out = np.array(image, dtype=np.uint8, copy=True, order="C")
    h = out.shape[0]
    scale = max(0.35, min(1.2, h / 800.0))
    thick = 1 if h < 600 else 2
    for box, score, lab in zip(np.asarray(boxes), np.asarray(scores), np.asarray(labels)):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        colour = class_colour(int(lab))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        name = class_names[int(lab)] if 0 <= int(lab) < len(class_names) else str(int(lab))
        text = f"{name} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, _FONT, scale * 0.8, 1)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(out, text, (x1, ty - base), _FONT, scale * 0.8, (0, 0, 0), 1, cv2.LINE_AA)
    y = 0
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, _FONT, scale, thick)
        cv2.rectangle(out, (0, y), (tw + 8, y + th + base + 6), (0, 0, 0), -1)
        cv2.putText(out, line, (4, y + th + 3), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += th + base + 6
    return out
