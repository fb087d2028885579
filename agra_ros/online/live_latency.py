"""Live calibration of speed: how much slower (or faster) than the cost table this robot runs, right now.

The cost table was measured on one machine; a robot runs each configuration some factor slower or faster (another
CPU, thermal throttling, a second process on the same cores). The policy reads that factor from its state, P's
``slowdown_log2`` (:data:`agra_ros.core.observation.P_FIELDS`), which the simulator computes exactly (its device's
latency multiplier). On the robot one decision's measurement is noisy (a frame that waited for a core, a switch):
read raw, a loaded 2-core machine looks like a device slower than any profile the policy was trained on, one
decision, and a fast one the next. This module keeps a running estimate instead, from every frame perception
measures:

- per configuration, the decayed mean of log2(measured latency / table latency) (a configuration whose kernels run
  unusually here, e.g. one channel count with a slow kernel, gets its own figure);
- pooled over all configurations, the same, which is the device's calibrated slowdown;
- a configuration's estimate is shrunk toward the pooled one while it has few measurements.

:meth:`LiveLatency.slowdown_log2` is what the state carries for the configuration that ran, and
:meth:`LiveLatency.predicted_latency_s` the calibrated prediction of any configuration's latency on this robot.
Why not a library: this is a decayed mean with shrinkage over a handful of keys; no estimator in the dependencies
does less.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

from agra_ros.core.observation import SLOWDOWN_RANGE


class LiveLatency:
    """Running estimate of this robot's latency against the cost table, per configuration and pooled."""

    def __init__(self, memory: float = 0.9, prior_weight: float = 3.0) -> None:
        if not 0 < memory <= 1 or not prior_weight > 0:
            raise ValueError("0 < memory <= 1 and prior_weight > 0 are required")
        self.memory = float(memory)
        self.prior_weight = float(prior_weight)
        self._configs: dict[Hashable, list[float]] = {}  # key -> [decayed sum of log2 ratios, decayed count]
        self._pool = [0.0, 0.0]
        self.observations = 0

    def observe(self, key: Hashable, measured_s: float, table_s: float) -> None:
        """One decision's mean measured frame latency of configuration ``key`` against its table latency.
        Non-finite or non-positive values are ignored (a decision without a measured frame teaches nothing)."""
        if not (math.isfinite(measured_s) and math.isfinite(table_s) and measured_s > 0 and table_s > 0):
            return
        lo, hi = SLOWDOWN_RANGE
        r = min(hi, max(lo, math.log2(measured_s / table_s)))
        for acc in (self._configs.setdefault(key, [0.0, 0.0]), self._pool):
            acc[0] = self.memory * acc[0] + r
            acc[1] = self.memory * acc[1] + 1.0
        self.observations += 1

    @property
    def device_slowdown_log2(self) -> float:
        """Pooled log2(measured / table) over every configuration (0 before any measurement: the table's device)."""
        s, n = self._pool
        return s / n if n > 0 else 0.0

    def slowdown_log2(self, key: Hashable) -> float:
        """Calibrated log2(latency here / table latency) of configuration ``key``: its own decayed mean, shrunk
        toward the device's pooled figure by ``prior_weight`` pseudo-measurements."""
        s, n = self._configs.get(key, (0.0, 0.0))
        pooled = self.device_slowdown_log2
        return (s + self.prior_weight * pooled) / (n + self.prior_weight)

    def predicted_latency_s(self, key: Hashable, table_s: float) -> float:
        """Calibrated latency of ``key`` on this robot, from its table latency."""
        return float(table_s) * 2.0 ** self.slowdown_log2(key)

    @property
    def configurations(self) -> int:
        """Configurations measured so far."""
        return len(self._configs)


__all__ = ["LiveLatency"]
