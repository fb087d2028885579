"""Sliding-window statistics the policy node reports: decision latency percentiles and target attainment."""

from __future__ import annotations

from collections import deque

import numpy as np

from agra_ros.core.reward import target_met


class LatencyWindow:
    """The last ``size`` durations (seconds), reported as p50/p99 in milliseconds."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=int(size))

    def add(self, seconds: float) -> None:
        self._values.append(float(seconds))

    def __len__(self) -> int:
        return len(self._values)

    def percentiles_ms(self) -> tuple[float, float]:
        """(p50, p99) in ms; NaN before the first sample."""
        if not self._values:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(np.fromiter(self._values, float), [50, 99])
        return float(p50 * 1e3), float(p99 * 1e3)


class AttainmentWindow:
    """Share of the last ``size`` decisions whose measured FPS met the target
    (:func:`~agra_ros.core.reward.target_met`)."""

    def __init__(self, size: int = 100) -> None:
        self._met: deque[bool] = deque(maxlen=int(size))

    def add(self, fps: float, target_fps: float) -> None:
        self._met.append(bool(target_met(fps, target_fps)))

    def missing(self) -> bool:
        """Whether the latest feedback missed the target (False before any)."""
        return bool(self._met) and not self._met[-1]

    def share(self) -> float:
        """NaN before the first decision with feedback."""
        return float(np.mean(self._met)) if self._met else float("nan")
