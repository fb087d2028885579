"""The command watchdog: when the policy falls silent, perception runs its fallback configuration.

Apart from the runtime because it is the one safety rule of perception's command input, with its own states
(commanded, in fallback) and transitions that the node logs once each; it knows only a clock and a timeout.
"""

from __future__ import annotations

import math

__all__ = ["CommandWatchdog"]


class CommandWatchdog:
    """Tracks the age of the last valid granularity command and reports entering/leaving the fallback once each.

    The start counts as a command: the fallback begins ``timeout_s`` after start-up if the policy never speaks.
    """

    ENTERED = "entered"
    RECOVERED = "recovered"

    def __init__(self, timeout_s: float, now: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"fallback timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.last_command: float | None = None
        self._since = now
        self.in_fallback = False
        self.fallbacks = 0
        self.commands = 0

    def command(self, now: float) -> str | None:
        """A valid command arrived; returns RECOVERED when this ends a fallback."""
        self.last_command = now
        self.commands += 1
        if self.in_fallback:
            self.in_fallback = False
            return self.RECOVERED
        return None

    def check(self, now: float) -> str | None:
        """Returns ENTERED the first time the timeout has passed without a command."""
        ref = self.last_command if self.last_command is not None else self._since
        if not self.in_fallback and now - ref >= self.timeout_s:
            self.in_fallback = True
            self.fallbacks += 1
            return self.ENTERED
        return None

    def age(self, now: float) -> float:
        """Seconds since the last valid command (inf when none arrived yet)."""
        return math.inf if self.last_command is None else now - self.last_command
