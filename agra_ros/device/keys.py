"""The device state D as diagnostics key/values: names, units and the normalised vector the policy observes.

device_monitor writes these keys (plain numbers, SI units, utilisation as a 0..1 share) next to jtop-compatible
statuses, so the policy never parses strings like ``"45.50C"``. The simulator builds the same :class:`DeviceState`
from its device model, so D means the same thing in simulation and on the robot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DEVICE_KEYS: tuple[str, ...] = (
    "temp_c",
    "power_w",
    "voltage_v",
    "cpu_util",
    "gpu_util",
    "clock_ratio",
    "cores_available",
    "throttling",
)
"""The D block, in vector order."""

CONTEXT_KEYS: tuple[str, ...] = ("power_max_w", "voltage_nominal_v", "cores_total", "temp_critical_c")
"""Scales the vector is normalised by (from the device profile or the sensor)."""

DEVICE_DIM = len(DEVICE_KEYS)
DEVICE_STATUS_NAME = "device_monitor: device"
"""Name of the status that carries these keys on /diagnostics."""


@dataclass(frozen=True)
class DeviceState:
    """One reading of the device, in SI units."""

    temp_c: float
    power_w: float
    voltage_v: float
    cpu_util: float
    gpu_util: float
    clock_ratio: float
    cores_available: int
    throttling: bool
    power_max_w: float
    voltage_nominal_v: float
    cores_total: int
    temp_critical_c: float | None = None

    def vector(self) -> list[float]:
        """D: temp/100, power/P_max, voltage/nominal, CPU share, GPU share, clock ratio, share of cores, throttling."""
        return [
            self.temp_c / 100.0,
            self.power_w / self.power_max_w,
            self.voltage_v / self.voltage_nominal_v,
            self.cpu_util,
            self.gpu_util,
            self.clock_ratio,
            self.cores_available / self.cores_total,
            1.0 if self.throttling else 0.0,
        ]

    def to_key_values(self) -> dict[str, str]:
        out = {}
        for k in DEVICE_KEYS + CONTEXT_KEYS:
            v = getattr(self, k)
            if v is None:
                continue
            out[k] = str(int(v)) if isinstance(v, (bool, int)) else f"{float(v):.6g}"
        return out

    @classmethod
    def from_key_values(cls, kv: Mapping[str, str]) -> DeviceState:
        """Parse a status's key/values. Missing device keys take neutral values; raises ValueError on bad numbers.

        A status with none of :data:`DEVICE_KEYS` is not a device state (ValueError), so a caller can tell.
        """
        if not any(k in kv for k in DEVICE_KEYS):
            raise ValueError(f"no device keys ({', '.join(DEVICE_KEYS)}) in this status")

        def num(key: str, default: float | None) -> float | None:
            if key not in kv:
                return default
            try:
                v = float(kv[key])
            except (TypeError, ValueError):
                raise ValueError(f"{key}={kv[key]!r} is not a number") from None
            if not math.isfinite(v):
                raise ValueError(f"{key}={kv[key]!r} is not a finite number")
            return v

        power_max = num("power_max_w", None) or 10.0
        voltage = num("voltage_v", None)
        nominal = num("voltage_nominal_v", None) or voltage or 1.0
        cores_total = int(num("cores_total", None) or num("cores_available", 1.0) or 1)
        share = lambda v: min(1.0, max(0.0, v))  # noqa: E731 - utilisation outside 0..1 is a sensor glitch
        return cls(
            temp_c=num("temp_c", 25.0),
            power_w=max(0.0, num("power_w", 0.0)),
            voltage_v=voltage if voltage is not None else nominal,
            cpu_util=share(num("cpu_util", 0.0)),
            gpu_util=share(num("gpu_util", 0.0)),
            clock_ratio=min(1.0, max(0.05, num("clock_ratio", 1.0))),
            cores_available=max(1, int(num("cores_available", cores_total))),
            throttling=bool(num("throttling", 0.0)),
            power_max_w=max(power_max, 1e-3),
            voltage_nominal_v=max(nominal, 1e-3),
            cores_total=max(1, cores_total),
            temp_critical_c=num("temp_critical_c", None),
        )
