"""Frame scheduling for the perception runtime: pacing to a target rate, the measured rate, and which frames get
a shadow run.

Kept apart from the runtime because each is a small clock-driven rule with its own tests and no knowledge of
detectors or configurations: the runtime and the node pass the clock in, these decide only *when* work happens.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RatePacer", "ShadowScheduler", "SlidingRate"]


class RatePacer:
    """Keeps the processing rate at or below ``rate_hz`` (None: unlimited).

    A frame is due when its start time reaches the schedule; a late start catches up by at most half a period,
    so the long-run rate equals the target without bursts.
    """

    def __init__(self, rate_hz: float | None = None) -> None:
        self.rate_hz: float | None = None
        self._next = -math.inf
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz: float | None) -> None:
        if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"pacing rate must be a positive number of Hz, got {rate_hz}")
        if rate_hz != self.rate_hz:
            self.rate_hz = rate_hz
            self._next = -math.inf

    def delay(self, now: float) -> float:
        """Seconds until the next frame may start (0: now)."""
        return 0.0 if self.rate_hz is None else max(0.0, self._next - now)

    def started(self, now: float) -> None:
        """Record that a frame started processing at ``now``."""
        if self.rate_hz is None:
            return
        period = 1.0 / self.rate_hz
        self._next = max(self._next + period, now + period / 2)


class SlidingRate:
    """Events per second over a sliding time window (the fps that rqt_plot shows)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._t: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._t.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()

    def rate(self, now: float | None = None) -> float:
        if now is not None:
            self._trim(now)
        t = self._t
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


class ShadowScheduler:
    """Picks ``share`` of the frames for a shadow run, evenly spaced and deterministic (no random jitter)."""

    def __init__(self, share: float) -> None:
        self.share = 0.0
        self._acc = 0.0
        self.set_share(share)

    def set_share(self, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"shadow share must be in [0, 1], got {share}")
        self.share = float(share)

    def next(self) -> bool:
        self._acc += self.share
        if self._acc >= 1.0 - 1e-9:
            self._acc -= 1.0
            return True
        return False
