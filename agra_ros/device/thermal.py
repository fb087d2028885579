"""First-order thermal RC model with stepwise DVFS, shared by the modelled power source and the simulator.

The die temperature relaxes toward T_ambient + R * P with time constant tau; above the profile's throttle
temperature the clock steps down one DVFS step per update, and steps back up once it is a hysteresis band below.
This is the behaviour the policy must learn to anticipate: power now costs clock speed later.
"""

from __future__ import annotations

import math

from agra_ros.device.profiles import DeviceProfile

HYSTERESIS_C = 5.0


class ThermalModel:
    """Temperature and DVFS clock state of one device profile."""

    def __init__(self, profile: DeviceProfile, temperature_c: float | None = None) -> None:
        self.profile = profile
        self.temperature_c = profile.t_ambient_c if temperature_c is None else float(temperature_c)
        self.clock_index = 0

    @property
    def clock_ratio(self) -> float:
        return self.profile.clock_steps[self.clock_index]

    @property
    def throttling(self) -> bool:
        return self.clock_index > 0

    def steady_state_c(self, power_w: float) -> float:
        return self.profile.t_ambient_c + self.profile.thermal_r_c_per_w * power_w

    def reset(self, temperature_c: float) -> None:
        self.temperature_c = float(temperature_c)
        self.clock_index = 0

    def advance(self, power_w: float, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass at ``power_w`` (capped at the profile's maximum)."""
        p = self.profile
        t_inf = self.steady_state_c(min(max(power_w, 0.0), p.p_max_w))
        self.temperature_c = t_inf + (self.temperature_c - t_inf) * math.exp(-max(dt_s, 0.0) / p.thermal_tau_s)
        if self.temperature_c > p.t_throttle_c and self.clock_index < len(p.clock_steps) - 1:
            self.clock_index += 1
        elif self.temperature_c < p.t_throttle_c - HYSTERESIS_C and self.clock_index > 0:
            self.clock_index -= 1
