"""Domain randomisation over device profiles: one policy for every device it may run on.

Each simulated episode runs on a device drawn around one of the shipped profiles (:data:`TRAINING_PROFILES`): its
speed, idle and peak power, dynamic energy, thermal resistance and time constant, core count and background load
are perturbed by independent factors. The held-out profile (:data:`HELDOUT_PROFILE`) is never a base, so the
benchmark can show how the policy does on a device it never saw. Why the ranges are wide (speed x0.6..1.7, a
continuum from 0.07 to 1.7 of the reference): the policy has to read its speed from the own-speed state, not
memorise four devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from agra_ros.device.profiles import DeviceProfile, load_profile

TRAINING_PROFILES: tuple[str, ...] = ("x86_generic", "jetson_orin_nano", "jetson_nano_maxn", "jetson_nano_5w")
"""The shipped profiles the policy is trained around."""
HELDOUT_PROFILE = "raspberry_pi_5"
"""A profile no training episode is drawn around (config/devices/raspberry_pi_5.yaml)."""


@lru_cache(maxsize=16)
def _base(name: str) -> DeviceProfile:
    return load_profile(name)


@dataclass(frozen=True)
class DeviceRandomisation:
    """Ranges of the per-episode device perturbation (factors are drawn log-uniformly in [lo, hi])."""

    profiles: tuple[str, ...] = TRAINING_PROFILES
    """Base profiles, drawn with equal chance."""
    speed: tuple[float, float] = (0.6, 1.7)
    p_idle: tuple[float, float] = (0.7, 1.4)
    p_max: tuple[float, float] = (0.8, 1.25)
    dynamic_energy: tuple[float, float] = (0.7, 1.4)
    """Factor on the energy per busy second, per GMAC and per MB together."""
    thermal_r: tuple[float, float] = (0.7, 1.4)
    thermal_tau: tuple[float, float] = (0.5, 2.0)
    cores_delta: tuple[int, int] = (-2, 2)
    """Cores added to the base's (at least 1)."""
    background_load: tuple[float, float] = (0.0, 0.45)
    """Mean background CPU load of the episode (uniform)."""

    def sample(self, rng: np.random.Generator) -> tuple[DeviceProfile, float]:
        """A perturbed profile and the episode's mean background load."""

        def f(r: tuple[float, float]) -> float:
            return float(math.exp(rng.uniform(math.log(r[0]), math.log(r[1]))))

        base = _base(str(self.profiles[int(rng.integers(len(self.profiles)))]))
        p_max = base.p_max_w * f(self.p_max)
        p_idle = min(base.p_idle_w * f(self.p_idle), 0.6 * p_max)
        e = f(self.dynamic_energy)
        prof = replace(
            base,
            name=f"{base.name}~",
            speed=base.speed * f(self.speed),
            p_idle_w=p_idle,
            p_max_w=p_max,
            j_per_busy_s=base.j_per_busy_s * e,
            j_per_gmac=base.j_per_gmac * e,
            j_per_mb=base.j_per_mb * e,
            thermal_r_c_per_w=base.thermal_r_c_per_w * f(self.thermal_r),
            thermal_tau_s=base.thermal_tau_s * f(self.thermal_tau),
            cores=max(1, base.cores + int(rng.integers(self.cores_delta[0], self.cores_delta[1] + 1))),
        )
        return prof, float(rng.uniform(*self.background_load))
