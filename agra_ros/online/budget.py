"""The learner's CPU budget and its deference to perception: :class:`CpuBudget` and :class:`UpdateGate`.

The learner process (:mod:`agra_ros.online.learner_process`) asks its gate before every PPO update. The gate says
wait while the learner has spent more than its budget (a share of one core on average: a token bucket filled at
``share`` CPU-seconds per second, at most ``window_s`` seconds' worth, from which every CPU-second the process used
is taken) or while perception misses its target (the policy node sends that flag). A deferral for a missed target
lasts at most ``max_defer_s``: then one update runs, within the budget, so a target no configuration reaches does
not stop learning for good. What the gate held back is counted for the node's /diagnostics, so a throttled learner
says so instead of silently falling behind.

Pure Python: the clock and the CPU-time source are arguments, so tests drive it with fake ones.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

CPU_BUDGET_RANGE = (0.01, 1.0)
"""Accepted learner CPU budgets (share of one core)."""


def checked_cpu_budget(share: float) -> float:
    """``share`` as a float, or ValueError when it is outside :data:`CPU_BUDGET_RANGE`."""
    share = float(share)
    lo, hi = CPU_BUDGET_RANGE
    if not (math.isfinite(share) and lo <= share <= hi):
        raise ValueError(f"cpu budget must be a share of one core in [{lo}, {hi}], got {share}")
    return share


class CpuBudget:
    """A token bucket of CPU time: :meth:`wait_s` says how long to wait until the process is back within ``share``
    of one core on average; :meth:`share_measured` is the process's CPU share over the last ``measure_s`` seconds."""

    def __init__(
        self,
        share: float,
        window_s: float = 10.0,
        measure_s: float = 30.0,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cpu, self._clock = cpu, clock
        self.window_s = float(window_s)
        self.measure_s = float(measure_s)
        self.share = checked_cpu_budget(share)
        self.tokens = 0.0
        """CPU-seconds the process may still use now; negative: the debt to wait off."""
        self._t, self._c = clock(), cpu()
        self._samples: deque[tuple[float, float]] = deque([(self._t, self._c)])

    def set_share(self, share: float) -> None:
        self._refill()
        self.share = checked_cpu_budget(share)

    def _refill(self) -> None:
        t, c = self._clock(), self._cpu()
        cap = self.share * self.window_s
        self.tokens = min(cap, self.tokens + self.share * (t - self._t)) - (c - self._c)
        self._t, self._c = t, c
        self._samples.append((t, c))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.measure_s:
            self._samples.popleft()

    def wait_s(self) -> float:
        """Seconds until the process is within its budget again (0: it may work now)."""
        self._refill()
        return max(0.0, -self.tokens / self.share)

    def share_measured(self) -> float:
        """CPU-seconds per second over (about) the last ``measure_s`` seconds; NaN before any time has passed."""
        self._refill()
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else math.nan


class UpdateGate:
    """Whether the learner may run a PPO update now, and what it held back (:meth:`stats`)."""

    def __init__(
        self,
        share: float,
        max_defer_s: float = 30.0,
        window_s: float = 10.0,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = CpuBudget(share, window_s=window_s, cpu=cpu, clock=clock)
        self._clock = clock
        self.max_defer_s = float(max_defer_s)
        self.target_missed = False
        """Perception misses its target (the node's flag)."""
        self.throttled = False
        """The last answer was: wait for the budget."""
        self.throttled_s = 0.0
        """Seconds an update was due and waited for the budget."""
        self.deferred_updates = 0
        """Updates that waited because perception missed its target (each counted once)."""
        self.deferred_s = 0.0
        self.updates = 0
        self._waiting_since: float | None = None
        """When the update now due started waiting; None: none waits."""
        self._deferring = False
        self._last: float | None = None

    def set_target_missed(self, missed: bool) -> None:
        self.target_missed = bool(missed)

    def wait_s(self, poll_s: float = 0.5) -> float:
        """Ask for an update that is due: 0 to run it now, else seconds to wait (at most ``poll_s``) before asking
        again. The time since the last question is counted as throttled or deferred, by the reason then given."""
        now = self._clock()
        if self._last is not None and self._waiting_since is not None:
            if self._deferring:
                self.deferred_s += now - self._last
            elif self.throttled:
                self.throttled_s += now - self._last
        self._last = now
        if self._waiting_since is None:
            self._waiting_since = now
        if self.target_missed and now - self._waiting_since < self.max_defer_s:
            if not self._deferring:
                self.deferred_updates += 1
            self._deferring, self.throttled = True, False
            return poll_s
        self._deferring = False
        wait = self.budget.wait_s()
        self.throttled = wait > 0
        return min(wait, poll_s) if wait > 0 else 0.0

    def ran(self) -> None:
        """The due update ran: the next one starts its own wait."""
        self.updates += 1
        self._waiting_since = self._last = None
        self._deferring = self.throttled = False

    def stats(self) -> dict[str, float]:
        """What the node reports (keys as in its /diagnostics, without the ``learner_`` prefix)."""
        return {
            "cpu_budget": self.budget.share,
            "cpu_share": self.budget.share_measured(),
            "throttled": float(self.throttled),
            "throttled_s": self.throttled_s,
            "target_missed": float(self.target_missed),
            "deferred_updates": float(self.deferred_updates),
            "deferred_s": self.deferred_s,
        }
