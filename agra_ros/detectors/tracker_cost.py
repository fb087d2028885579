"""The keyframe tracker's cost per frame, measured on real video, for the cost table (``tracker`` section).

At keyframe interval k the frames between keyframes cost the tracker's latency, not the detector's
(:mod:`agra_ros.core.temporal`). That latency grows with the objects followed (corner points and pyramidal flow
inside each box), so it is measured the way perception runs it: the detector's ``full`` boxes on a real frame
seed :class:`agra_ros.perception.tracker.KeyframeTracker`, which then follows them over the next frames of the
same clip; every tracked frame gives one (objects followed, seconds) pair. A least-squares line through those pairs
gives the table's ``base_ms`` (a frame with no object: grey copy, thumbnail, scene-cut test) and
``per_object_ms``. The clips are the package's real ones (vtest: 15-20 people; tree: a few objects), so both
ends of the line are measured rather than extrapolated.

Each frame is timed as the fastest of a few runs from the same tracker state (a loaded machine only ever adds
time), and the line is fitted with numpy's least squares through the median of each object count's times, so that
one descheduled frame does not tilt it.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections import defaultdict
from typing import Any

import numpy as np

from agra_ros.granularity.levels import GranularityConfig

TRACKER_CLIPS = ("vtest", "tree", "Megamind")
"""Real clips the tracker is timed on (many people, a few objects, a film with cuts)."""


def _clip_frames(name: str, start: int, count: int) -> list[np.ndarray]:
    """``count`` consecutive RGB frames of a package clip from frame ``start`` (fewer where the clip ends)."""
    import cv2

    from agra_ros.workload.real_media import video_path

    cap = cv2.VideoCapture(str(video_path(name)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    while len(out) < count:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def fit_tracker_cost(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """(base_s, per_object_s) of the line through the per-count medians of (objects, seconds) samples.

    With fewer than two distinct counts the slope is not measurable and is 0 (every frame costs the median).
    Neither is allowed below zero (a negative base would price a tracked frame as free)."""
    by_count: dict[int, list[float]] = defaultdict(list)
    for n, s in samples:
        by_count[int(n)].append(float(s))
    if not by_count:
        raise ValueError("no tracker timings to fit")
    counts = np.array(sorted(by_count), dtype=np.float64)
    medians = np.array([statistics.median(by_count[int(c)]) for c in counts])
    if len(counts) < 2:
        return max(0.0, float(medians[0])), 0.0
    slope, base = np.polyfit(counts, medians, 1)
    return max(0.0, float(base)), max(0.0, float(slope))


def profile_tracker(
    model: Any, clips: tuple[str, ...] = TRACKER_CLIPS, keyframes: int = 10, follow: int = 8, repeats: int = 3
) -> dict[str, Any] | None:
    """The cost table's ``tracker`` section, timed on this machine (the caller sets torch's threads; OpenCV's
    tracker runs on one).

    For each clip, ``keyframes`` keyframes spread over its first frames, each followed for ``follow`` frames, each
    frame timed ``repeats`` times.
    Without the package's real media there is nothing real to time: None (the table then has no ``tracker``
    section and the simulator uses :mod:`agra_ros.core.temporal`'s defaults)."""
    from agra_ros.perception.tracker import KeyframeTracker
    from agra_ros.workload.real_media import media_available

    if not media_available():
        return None
    model.set_config(GranularityConfig.uniform("full", len(model.switchable_layer_names()), 1.0))
    samples: list[tuple[int, float]] = []
    for clip in clips:
        for i in range(keyframes):
            frames = _clip_frames(clip, 40 * i, follow + 1)
            if len(frames) < 2:
                continue
            det = model.detect([frames[0]])[0]
            tracker = KeyframeTracker()
            tracker.keyframe(frames[0], det.boxes, det.scores, det.labels)
            res = tracker.track(frames[1])  # the first call warms OpenCV's pyramids: not timed
            for frame in frames[2:]:
                if not res.ok:
                    break
                n = len(res)  # the boxes this step follows
                best = math.inf
                for _ in range(repeats):  # the fastest of a few runs from the same state: load only adds time
                    trial = copy.deepcopy(tracker)
                    t0 = time.perf_counter()
                    trial.track(frame)
                    best = min(best, time.perf_counter() - t0)
                res = tracker.track(frame)
                if res.ok:
                    samples.append((n, best))
    if not samples:
        raise RuntimeError("the tracker followed no frame of the real clips")
    base, per = fit_tracker_cost(samples)
    return {
        "base_ms": base * 1e3,
        "per_object_ms": per * 1e3,
        "frames": len(samples),
        "objects_range": [min(n for n, _ in samples), max(n for n, _ in samples)],
        "source": f"KeyframeTracker on {', '.join(clips)}: full-configuration keyframes, median per object count, "
        "least-squares line",
    }


__all__ = ["TRACKER_CLIPS", "fit_tracker_cost", "profile_tracker"]
