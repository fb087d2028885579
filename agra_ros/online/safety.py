"""Thermal and throttling safety: when the device is hot or throttling, command the safety override configuration.

A learned policy may not know a device state it never saw; a Jetson at its critical temperature must shed load now,
not after PPO has learned that it should. :class:`SafetyGuard` is a small state machine with hysteresis: it engages
when any temperature reaches the critical level or the device reports throttling, and releases only when the
temperature has fallen ``recover_margin_c`` below the critical level and throttling has stopped, so it does not
chatter around the threshold. While engaged, the agent commands :func:`safety_override_configuration` (the
coarsest configuration; not perception's fallback configuration, which runs when the policy falls silent).
"""

from __future__ import annotations

from dataclasses import dataclass

from agra_ros.granularity.levels import COARSEST_LEVEL, RESOLUTION_SCALES, GranularityConfig
from agra_ros.limits import CRITICAL_TEMP_C, RECOVER_MARGIN_C


def safety_override_configuration(n_layers: int) -> GranularityConfig:
    """The policy's *safety override configuration*, the coarsest there is: every layer at
    :data:`~agra_ros.granularity.levels.COARSEST_LEVEL` (neuron-25), the lowest resolution scale, executed locally (no
    network dependence)."""
    return GranularityConfig.uniform(COARSEST_LEVEL, n_layers, min(RESOLUTION_SCALES), "local")


@dataclass(frozen=True)
class SafetyTransition:
    """A change of the guard's state, for the one log line each way."""

    engaged: bool
    reason: str


class SafetyGuard:
    """Engages on temperature >= critical or throttling; releases below critical - margin without throttling."""

    def __init__(self, critical_temp_c: float = CRITICAL_TEMP_C, recover_margin_c: float = RECOVER_MARGIN_C) -> None:
        if recover_margin_c < 0:
            raise ValueError(f"recover_margin_c must be >= 0, got {recover_margin_c}")
        self.critical_temp_c = float(critical_temp_c)
        self.recover_margin_c = float(recover_margin_c)
        self.engaged = False
        self.reason = ""
        self.engagements = 0

    def update(
        self, temp_c: float | None, throttling: bool, critical_temp_c: float | None = None
    ) -> SafetyTransition | None:
        """Feed one device reading; returns a transition when the state changes, else None.

        ``critical_temp_c`` overrides the configured level when the device reports its own (a profile or a
        jtop reading); ``temp_c`` None means the device has no temperature sensor.
        """
        critical = self.critical_temp_c if critical_temp_c is None else float(critical_temp_c)
        hot = temp_c is not None and temp_c >= critical
        if not self.engaged and (hot or throttling):
            self.engaged = True
            self.engagements += 1
            parts = []
            if hot:
                parts.append(f"temperature {temp_c:.1f} C >= critical {critical:.1f} C")
            if throttling:
                parts.append("device reports throttling")
            self.reason = " and ".join(parts)
            return SafetyTransition(True, self.reason)
        if self.engaged:
            cool = temp_c is None or temp_c < critical - self.recover_margin_c
            if cool and not throttling:
                self.engaged = False
                t = "no temperature sensor" if temp_c is None else f"temperature {temp_c:.1f} C"
                self.reason = ""
                return SafetyTransition(False, f"{t}, below {critical - self.recover_margin_c:.1f} C, not throttling")
        return None
