"""Temporal granularity in the shared contract: what a keyframe interval costs and keeps, for simulator and robot.

At keyframe interval k perception runs the detector on every k-th frame and moves the keyframe's boxes onto the
frames in between with its tracker (:mod:`agra_ros.perception.tracker`). The simulator needs both sides of that
trade in the same terms as the cost table and the accuracy model:

- **Cost.** A tracked frame costs the tracker's latency, not the detector's:
  :func:`tracker_latency_s` grows with the objects followed (points per box). The cost table's ``tracker``
  section holds the line measured on the table's machine (``agra-ros profile-ssd``, or ``--tracker-only`` to add it
  to a table, :mod:`agra_ros.detectors.tracker_cost`); the defaults here were first measured on this project's VM at
  1 thread with ``agra-ros evaluate-footage`` (mean frame latency at k=2 and k=3 against k=1): about 12-14 ms
  on vtest (768x576, 15-20 people) and 2.7 ms on a 640x272 street clip with a few objects. The mean frame
  latency of interval k is :func:`mean_frame_latency_s`.
- **Accuracy.** Boxes drift with motion and objects enter unseen between keyframes. :func:`keyframe_retention` is
  the share of the detector's agreement kept, exp(-RATE x (k - 1) x motion), with ``motion`` the workload's
  :func:`~agra_ros.workload.features.frame_motion` (grey levels, 0-255): fitted on vtest (every 2nd frame,
  motion 1.5 between them, confident agreement against full on every frame: 0.904 / 0.849 / 0.777 / 0.658 at
  k = 2 / 3 / 4 / 6, i.e. 0.084 +- 0.008 lost per tracked frame). The tracker with its forward-backward check
  keeps 0.925 / 0.882 / 0.835 / 0.761 on the clip's held-out half (median motion 1.1): rates 0.071 / 0.057 / 0.055 /
  0.050, so the fitted rate stands (the shipped policies were trained on it). A still scene keeps everything; a cut (motion
  above the tracker's scene-cut level) forces a keyframe on the robot, which the model does not credit.

These are models of one machine and one clip, as the cost table and the accuracy model are; on the robot, the
shadow agreement (tracked frames included) and the live accuracy model correct the accuracy side, and the live
latency calibration the cost side.
"""

from __future__ import annotations

import numpy as np

TRACKER_BASE_S = 0.002
"""Tracker latency per frame with no object (grey copy, scene-cut test), seconds, on the cost table's machine."""
TRACKER_PER_OBJECT_S = 0.0006
"""Tracker latency per object followed, seconds (corner points and pyramidal flow inside its box)."""
KEYFRAME_RETENTION_RATE = 0.057
"""Agreement lost per tracked frame per grey level of motion (fitted on vtest, see the module docstring)."""


def tracker_latency_s(objects: float, base_s: float = TRACKER_BASE_S, per_object_s: float = TRACKER_PER_OBJECT_S):
    """Tracker latency of one frame following ``objects`` boxes (works on numpy arrays); ``base_s`` and
    ``per_object_s`` come from the cost table's ``tracker`` section where it has one
    (:meth:`agra_ros.tables.files.CostTable.tracker_cost`), else this module's defaults."""
    return base_s + per_object_s * np.maximum(objects, 0.0)


def mean_frame_latency_s(detector_s, interval, tracker_s):
    """Mean latency per frame at keyframe ``interval``: one detector frame and interval - 1 tracked frames."""
    k = np.asarray(interval, dtype=np.float64)
    return (detector_s + (k - 1.0) * tracker_s) / k


def keyframe_retention(interval, motion: float):
    """Share of the detector's agreement kept at keyframe ``interval`` on a scene moving ``motion`` grey levels per
    frame (1 at interval 1 or a still scene; works on numpy arrays)."""
    k = np.asarray(interval, dtype=np.float64)
    out = np.exp(-KEYFRAME_RETENTION_RATE * (k - 1.0) * max(0.0, float(motion)))
    return float(out) if out.ndim == 0 else out


__all__ = [
    "KEYFRAME_RETENTION_RATE",
    "TRACKER_BASE_S",
    "TRACKER_PER_OBJECT_S",
    "keyframe_retention",
    "mean_frame_latency_s",
    "tracker_latency_s",
]
