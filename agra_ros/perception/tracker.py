"""Temporal granularity: between keyframes, move the last keyframe's detections onto the new frame.

A keyframe interval k runs the detector on every k-th frame; on the frames in between, the boxes follow the image
with OpenCV's pyramidal Lucas-Kanade optical flow (``cv2.calcOpticalFlowPyrLK``): a few corner points
(``cv2.goodFeaturesToTrack``) inside each box are followed from the previous frame to this one, and the box
moves by the median of their shifts and scales by the median ratio of their spread. Each point is also followed
back from the new frame to the old one, and a point that does not come back within ``fb_error`` pixels is not
trusted (the forward-backward check: a point that slid along an edge, or onto another object that crossed it,
fails it). A box whose points are lost (fewer than ``min_points`` followed and trusted) is dropped. The work is done on a grey copy at most ``work_side`` pixels
wide, so the cost stays a few milliseconds per frame whatever the camera's resolution.

A scene cut (mean absolute difference of two grey thumbnails above ``scene_cut``), flow that loses every box,
or a non-finite result is a :class:`TrackResult` with ``ok`` False: the runtime then runs the detector (a forced
keyframe) instead of publishing what the tracker has. A tracked box is never NaN, never of zero area, and always
inside the image.

Why LK and not an OpenCV tracker object (KCF, CSRT, ...): those track one box each with a model per box, and cost
grows with the box's size; sparse flow on a shared thumbnail costs the same for ten boxes as for one.

What the forward-backward check buys (confident agreement against full on every frame, full's keyframes, measured
on full's cached detections; vtest's held-out half every 2nd frame, in domain / bikes.mp4 every 5th frame, out of
domain): at keyframe interval 2 0.931 -> 0.925 / 0.887 -> 0.894, at 3 0.860 -> 0.882 / 0.728 -> 0.850, at 4
0.824 -> 0.835 / 0.806 -> 0.838, for about 0.5 ms more per tracked frame (a second flow pass over the same points).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from agra_ros.workload.features import as_grey, frame_motion

SCENE_CUT = 30.0
"""Mean absolute grey-level difference (0-255) of two 32x32 thumbnails that counts as a new scene. Measured on the
package's clips: consecutive frames 2 (vtest), 13 (tree in wind), 27 (Megamind, at its cuts); different clips
64-165; two different photos 25-52 (median 52)."""


FB_ERROR_PX = 1.0
"""A point followed forward then back must land within this many pixels (work resolution) of where it started.
1.0 measured best of 0.5 / 1 / 2 on the two clips of the module docstring (2: 0.832 against 0.850 at interval 3 on
bikes.mp4; 0.5: 0.911 against 0.925 at interval 2 on vtest)."""


@dataclass(frozen=True)
class TrackResult:
    """The tracked detections of one frame, in the frame's pixel coordinates."""

    boxes: np.ndarray
    """(N, 4) float32 xyxy."""
    scores: np.ndarray
    """(N,) float32: the keyframe's scores (tracking does not re-score)."""
    labels: np.ndarray
    """(N,) int64."""
    ok: bool
    """False: scene cut or tracking failure; the caller should run the detector on this frame."""
    motion: float
    """Median point motion per frame as a share of the image diagonal (0: still); NaN when nothing was tracked."""
    reason: str = ""
    """Why ``ok`` is False (``scene cut``, ``lost every box``, ``no keyframe``)."""
    seconds: float = 0.0
    """Wall time of this tracking step."""

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


_LK = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
"""Pyramidal Lucas-Kanade settings, both directions: 15x15 window, 4 pyramid levels (moves of tens of pixels)."""


class KeyframeTracker:
    """Follows a keyframe's boxes over the frames until the next keyframe (one instance per camera stream)."""

    def __init__(
        self,
        work_side: int = 320,
        points_per_box: int = 12,
        min_points: int = 3,
        scene_cut: float = SCENE_CUT,
        fb_error: float | None = FB_ERROR_PX,
    ) -> None:
        if work_side < 32 or points_per_box < 1 or min_points < 1 or not scene_cut > 0:
            raise ValueError("work_side >= 32, points_per_box >= 1, min_points >= 1 and scene_cut > 0 are required")
        if fb_error is not None and not fb_error > 0:
            raise ValueError(f"fb_error must be positive (or None: no forward-backward check), got {fb_error}")
        self.fb_error = None if fb_error is None else float(fb_error)
        self.work_side = int(work_side)
        self.points_per_box = int(points_per_box)
        self.min_points = int(min_points)
        self.scene_cut = float(scene_cut)
        self._grey: np.ndarray | None = None
        self._thumb_src: np.ndarray | None = None
        self._scale = 1.0
        self._shape: tuple[int, int] = (0, 0)
        self._boxes = np.zeros((0, 4), np.float32)
        self._scores = np.zeros((0,), np.float32)
        self._labels = np.zeros((0,), np.int64)
        self._points: list[np.ndarray] = []

    @property
    def has_keyframe(self) -> bool:
        return self._grey is not None

    def reset(self) -> None:
        """Forget the keyframe (a new stream, a changed resolution): the next frame must be a keyframe."""
        self._grey = None

    def _work_grey(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self._scale = min(1.0, self.work_side / max(h, w))
        grey = as_grey(image)
        if self._scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * self._scale)), max(1, round(h * self._scale))), cv2.INTER_AREA)
        return grey

    def _seed_points(self, grey: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """Corner points inside each box (work coordinates), or the box's 3x3 grid where it has no corners."""
        out = []
        gh, gw = grey.shape
        for x0, y0, x1, y1 in boxes * self._scale:
            xa, ya = int(max(0, math.floor(x0))), int(max(0, math.floor(y0)))
            xb, yb = int(min(gw, math.ceil(x1))), int(min(gh, math.ceil(y1)))
            pts = None
            if xb - xa >= 3 and yb - ya >= 3:
                pts = cv2.goodFeaturesToTrack(
                    grey[ya:yb, xa:xb], self.points_per_box, qualityLevel=0.01, minDistance=2, blockSize=3
                )
            if pts is None or len(pts) < self.min_points:
                gx, gy = np.meshgrid(np.linspace(0.25, 0.75, 3), np.linspace(0.25, 0.75, 3))
                grid = np.stack([gx.ravel() * max(xb - xa, 1), gy.ravel() * max(yb - ya, 1)], axis=1)
                pts = grid.reshape(-1, 1, 2)
            out.append((pts.reshape(-1, 2) + (xa, ya)).astype(np.float32))
        return out

    def keyframe(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> None:
        """Start following the detector's output on ``image`` (an RGB or grey frame)."""
        self._shape = image.shape[:2]
        self._grey = self._work_grey(image)
        self._thumb_src = self._grey
        self._boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        self._scores = np.asarray(scores, np.float32).reshape(-1).copy()
        self._labels = np.asarray(labels, np.int64).reshape(-1).copy()
        self._points = self._seed_points(self._grey, self._boxes)

    def _fail(self, reason: str, t0: float, motion: float = math.nan) -> TrackResult:
        empty = np.zeros((0, 4), np.float32)
        return TrackResult(
            empty, np.zeros(0, np.float32), np.zeros(0, np.int64), False, motion, reason, time.perf_counter() - t0
        )

    def track(self, image: np.ndarray) -> TrackResult:
        """The keyframe's boxes moved onto ``image``; ``ok`` False asks for a keyframe instead."""
        t0 = time.perf_counter()
        if self._grey is None or image.shape[:2] != self._shape:
            return self._fail("no keyframe", t0)
        grey = self._work_grey(image)
        cut = frame_motion(self._grey, grey)
        if cut > self.scene_cut:
            return self._fail("scene cut", t0)
        if not len(self._boxes):  # nothing to follow: an empty frame stays empty until the next keyframe
            self._grey = grey
            return TrackResult(self._boxes, self._scores, self._labels, True, 0.0, "", time.perf_counter() - t0)
        counts = [len(p) for p in self._points]
        prev = np.concatenate(self._points).reshape(-1, 1, 2)
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(self._grey, grey, prev, None, **_LK)
        if nxt is None:
            return self._fail("lost every box", t0)
        status = status.reshape(-1).astype(bool) & np.isfinite(nxt.reshape(-1, 2)).all(axis=1)
        if self.fb_error is not None:  # follow each point back; one that does not return is not trusted
            back, back_ok, _ = cv2.calcOpticalFlowPyrLK(
                grey, self._grey, nxt, prev.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK
            )
            err = np.linalg.norm((back - prev).reshape(-1, 2), axis=1)
            status &= back_ok.reshape(-1).astype(bool) & (err < self.fb_error)  # NaN compares False: dropped
        prev, nxt = prev.reshape(-1, 2), nxt.reshape(-1, 2)
        h, w = self._shape
        keep_boxes, keep_points, keep = [], [], []
        shifts = []
        start = 0
        for i, n in enumerate(counts):
            ok = status[start : start + n]
            p0, p1 = prev[start : start + n][ok], nxt[start : start + n][ok]
            start += n
            if len(p0) < self.min_points:
                continue
            d = np.median(p1 - p0, axis=0)
            s0 = np.linalg.norm(p0 - p0.mean(axis=0), axis=1)
            s1 = np.linalg.norm(p1 - p1.mean(axis=0), axis=1)
            valid = s0 > 1e-3
            scale = float(np.clip(np.median(s1[valid] / s0[valid]), 0.8, 1.25)) if valid.sum() >= 2 else 1.0
            x0, y0, x1, y1 = self._boxes[i]
            cx, cy = (x0 + x1) / 2 + d[0] / self._scale, (y0 + y1) / 2 + d[1] / self._scale
            bw, bh = (x1 - x0) * scale, (y1 - y0) * scale
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], np.float32)
            box = np.clip(box, [0, 0, 0, 0], [w, h, w, h]).astype(np.float32)
            if not np.isfinite(box).all() or box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
                continue
            keep.append(i)
            keep_boxes.append(box)
            keep_points.append(p1.astype(np.float32))
            shifts.append(np.linalg.norm(p1 - p0, axis=1))
        if not keep:
            return self._fail("lost every box", t0)
        diag = math.hypot(*grey.shape)
        motion = float(np.median(np.concatenate(shifts)) / diag)
        self._grey = grey
        self._boxes = np.stack(keep_boxes)
        self._scores, self._labels = self._scores[keep], self._labels[keep]
        self._points = keep_points
        return TrackResult(self._boxes.copy(), self._scores.copy(), self._labels.copy(), True, motion, "",
                           time.perf_counter() - t0)  # fmt: skip
