"""Which /diagnostics messages the policy reads, decided on their serialized size (see :class:`DiagnosticsGate`)."""

from __future__ import annotations

import math

LARGE_DIAGNOSTICS_BYTES = 32 * 1024
"""A serialized /diagnostics message above this size is large: device_monitor's and a jtop node's are a few KiB."""
LARGE_DIAGNOSTICS_PERIOD_S = 1.0
"""Large /diagnostics messages are read at most once in this period."""


class DiagnosticsGate:
    """Which /diagnostics messages the policy deserialises, decided on their serialized size.

    Deserialising is the cost a neighbour's flood imposes: a status of 10,000 key-values (235 KB) takes 24 ms to
    turn into Python objects, so 50 of them a second take more than a core before the policy can even read their
    names, and the decision timer starves (measured with the EventsExecutor and one core busy: 4.8 of 10 decisions
    a second). Small messages, which is what device statuses are, always go through; a large one at most once per
    :data:`LARGE_DIAGNOSTICS_PERIOD_S`; the others are not read (the node counts each as a rejected message)."""

    def __init__(self, large_bytes: int = LARGE_DIAGNOSTICS_BYTES, period_s: float = LARGE_DIAGNOSTICS_PERIOD_S):
        self.large_bytes = int(large_bytes)
        self.period_s = float(period_s)
        self._last_large = -math.inf

    def admit(self, size: int, now: float) -> bool:
        """Whether a message of ``size`` serialized bytes arriving at ``now`` is to be read."""
        if size <= self.large_bytes:
            return True
        if now - self._last_large >= self.period_s:
            self._last_large = now
            return True
        return False
