"""The modelled robot computer: speed, power, heat and throttling of one device profile, and its D vector.

Part of the core that the simulator and the robot share: the simulator steps it, the robot reads the energy
reference of the reward and the D vector of a device nobody has reported on yet from it. The device profiles
(``config/devices/<name>.yaml``) and their models live in :mod:`agra_ros.device`; this module adapts them to what
a decision needs:

- a latency multiplier for the cost table's latencies: profile speed relative to the device the table was measured
  on, divided by the DVFS clock ratio, times background interference, times the slowdown of losing cores;
- the dynamic energy of a frame from busy time, MACs and bytes (the profile's power model), the radio energy of
  sending a frame to a remote node, and P = P_idle + E_dyn * FPS;
- a first-order thermal RC model driven by that power: above the throttle temperature the clock ratio steps down
  (DVFS), below it minus a hysteresis band it steps back up;
- the device-state vector D the policy observes (same keys as the device monitor's diagnostics).
"""

from __future__ import annotations

import numpy as np

from agra_ros.core.reward import system_energy_per_frame_j
from agra_ros.device.keys import DEVICE_DIM, DEVICE_KEYS, DeviceState
from agra_ros.device.power_model import PowerModel
from agra_ros.device.profiles import DeviceProfile, ProfileError, load_profile
from agra_ros.device.thermal import ThermalModel

BACKGROUND_LOAD_MEAN = 0.15
"""Mean background CPU load from other processes (0..1) of the nominal device; slows local inference by 1 + load."""

__all__ = ["BACKGROUND_LOAD_MEAN", "DEVICE_DIM", "DEVICE_KEYS", "DeviceProfile", "DeviceSim", "device_bounds"]


def device_bounds() -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the D block (normalised entries, see :meth:`DeviceSim.vector`)."""
    return np.zeros(DEVICE_DIM), np.array([1.5, 2.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0])


class DeviceSim:
    """One device: parameters from its profile plus the evolving thermal and clock state."""

    def __init__(self, profile: str | DeviceProfile, table_device: str = "x86_generic", table_threads: int = 2) -> None:
        self.p = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
        ref = self.p if table_device == self.p.name else _try_profile(table_device)
        self.nominal_mult = (ref.speed if ref is not None else 1.0) / self.p.speed
        self.table_threads = max(1, int(table_threads))
        self.p_idle_w = self.p.p_idle_w
        self.power = PowerModel(self.p)
        self.thermal = ThermalModel(self.p)
        self.last_power_w = self.p.p_idle_w
        self.last_util = 0.0

    @property
    def temperature_c(self) -> float:
        return self.thermal.temperature_c

    @property
    def clock_ratio(self) -> float:
        return self.thermal.clock_ratio

    @property
    def throttling(self) -> bool:
        return self.thermal.throttling

    def reset(self, rng: np.random.Generator) -> None:
        """Start warm or cold at random, at full clock."""
        steady_hot = self.thermal.steady_state_c(self.p.p_max_w)
        self.thermal.reset(float(rng.uniform(self.p.t_ambient_c, 0.5 * (self.p.t_ambient_c + steady_hot))))
        self.last_power_w = self.p.p_idle_w
        self.last_util = 0.0

    def latency_multiplier(self, interference: float, cores_lost: int) -> float:
        """Factor from the cost table's latency to this device's latency right now."""
        cores = max(1, self.p.cores - cores_lost)
        core_factor = max(1.0, self.table_threads / cores) ** 0.8 if cores < self.table_threads else 1.0
        return self.nominal_mult / self.clock_ratio * (1.0 + interference) * core_factor

    def dynamic_energy_scale(self) -> float:
        """Dynamic energy per operation scales with V^2, and V roughly with the clock: ratio^2 (at most 1)."""
        return self.clock_ratio**2

    def detector_energy_per_frame_j(self, busy_s, macs, bytes_moved):
        """Detector energy per frame, the dynamic joules alone (the profile's power model; works on numpy arrays)."""
        return self.power.detector_energy_per_frame_j(busy_s, macs, bytes_moved)

    def reference_energy_j(self, full: tuple[float, ...], target_fps: float) -> float:
        """e_ref: joules per frame of the full configuration (``full`` = latency_s, MACs, bytes) on the nominal device
        at ``target_fps``; the energy term of the reward is normalised by it, in simulation and on the robot alike."""
        lat_f, macs_f, bytes_f = full[0], full[1], full[2]
        e_dyn = float(self.detector_energy_per_frame_j(lat_f * self.nominal_mult, macs_f, bytes_f))
        fps = float(target_fps)
        return float(system_energy_per_frame_j(self.power.power_w(e_dyn, fps), fps))

    def transmit_energy_j(self, tx_bytes):
        return self.power.transmit_energy_j(tx_bytes)

    def advance(self, power_w: float, busy_fraction: float, dt_s: float) -> None:
        """Let ``dt_s`` pass at ``power_w``: RC heating toward ambient + R * P, then DVFS steps on the thresholds."""
        power_w = min(power_w, self.p.p_max_w)
        self.thermal.advance(power_w, dt_s)
        self.last_power_w = power_w
        self.last_util = min(1.0, max(0.0, busy_fraction))

    def vector(self, interference: float, cores_lost: int) -> np.ndarray:
        """D as the device monitor would report it (:meth:`agra_ros.device.keys.DeviceState.vector`)."""
        p = self.p
        # the detector's busy share shows where it runs, as the monitor measures it: on the GPU of a board that has
        # one (the CPU then carries the background load), else on the CPU, with the GPU reading 0
        busy = self.last_util
        cpu = interference if p.gpu else min(1.0, interference + busy * (1.0 - interference))
        state = DeviceState(
            temp_c=self.temperature_c,
            power_w=self.last_power_w,
            voltage_v=p.voltage_v * (0.7 + 0.3 * self.clock_ratio),
            cpu_util=cpu,
            gpu_util=busy if p.gpu else 0.0,
            clock_ratio=self.clock_ratio,
            cores_available=max(1, p.cores - cores_lost),
            throttling=self.throttling,
            power_max_w=p.p_max_w,
            voltage_nominal_v=p.voltage_v,
            cores_total=p.cores,
            temp_critical_c=p.t_critical_c,
        )
        return np.asarray(state.vector(), dtype=np.float32)


def _try_profile(name: str) -> DeviceProfile | None:
    try:
        return load_profile(name)
    except ProfileError:  # an unknown reference device means "same speed"
        return None
