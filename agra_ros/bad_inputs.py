"""Counting bad inputs by kind, with per-kind log throttling: one rule for every node that skips bad input.

Perception (malformed commands, images, target FPS) and the policy (rejected feedback, diagnostics, images,
catalogues) both keep running on bad input, count it by kind for their diagnostics and log each kind at most once
per period, so a flood of one bad input neither floods the log nor hides another kind. The rule lives here, below
both the detection and the online layers and free of ROS, so the two nodes count and throttle the same way.
"""

from __future__ import annotations

import threading

__all__ = ["BadInputCounter"]


class BadInputCounter:
    """Counts bad inputs by kind and says when a kind may be logged again (the first time, then at most once per
    ``log_period_s``).

    Thread-safe: subscriptions of different callback groups may record at the same time.
    """

    def __init__(self, log_period_s: float = 5.0) -> None:
        self.log_period_s = float(log_period_s)
        self._counts: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, kind: str, now: float) -> int | None:
        """Count one; returns the number of this kind not yet logged (>= 1) when a log line is due, else None."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            last = self._last_log.get(kind)
            if last is None or now - last >= self.log_period_s:
                self._last_log[kind] = now
                n, self._unlogged[kind] = self._unlogged[kind], 0
                return n
            return None

    def count(self, kind: str) -> int:
        """How many of ``kind`` were recorded so far."""
        with self._lock:
            return self._counts.get(kind, 0)

    def counts(self) -> dict[str, int]:
        """A snapshot of the counts by kind."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
