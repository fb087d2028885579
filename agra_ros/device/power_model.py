"""The documented power model of a device profile: P = P_idle + E_dyn * FPS.

E_dyn, the *detector energy per frame* (the dynamic joules of one frame, idle power excluded), is linear in what the
frame costs: busy time of the inference thread, multiply-accumulates and bytes moved, with per-profile coefficients
(config/devices/*.yaml). :meth:`PowerModel.detector_energy_per_frame_j` is its one definition: perception reports it
(``detector_energy_per_frame_j``) and the simulator charges it. The *system* energy per frame, device power over
achieved FPS, is :func:`agra_ros.core.reward.system_energy_per_frame_j`.
"""

from __future__ import annotations

import numpy as np

from agra_ros.device.profiles import DeviceProfile, load_profile

__all__ = ["PowerModel", "load_profile"]


class PowerModel:
    """Energy and power of inference on one device profile."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile

    def detector_energy_per_frame_j(self, busy_s: float, macs: float = 0.0, bytes: float = 0.0) -> float:  # noqa: A002
        """Detector energy per frame: the dynamic joules of one frame; works element-wise on numpy arrays too."""
        p = self.profile
        return p.j_per_busy_s * busy_s + p.j_per_gmac * macs / 1e9 + p.j_per_mb * bytes / 1e6

    def transmit_energy_j(self, tx_bytes: float) -> float:
        """Radio joules of sending ``tx_bytes`` to a remote perception node."""
        return self.profile.tx_j_per_mb * tx_bytes / 1e6

    def power_w(self, detector_energy_j, fps):
        """Average board power at ``fps`` frames per second, capped at the profile's sustained maximum (works
        element-wise on numpy arrays too: the simulator evaluates many configurations at once)."""
        if isinstance(detector_energy_j, float) and isinstance(fps, float):  # the per-frame hot path stays in floats
            return min(self.profile.p_idle_w + detector_energy_j * max(0.0, fps), self.profile.p_max_w)
        return np.minimum(self.profile.p_idle_w + detector_energy_j * np.maximum(0.0, fps), self.profile.p_max_w)

    def utilisation_power_w(self, utilisation: float) -> float:
        """The classic linear utilisation model P_idle + (P_max - P_idle) * u, for a whole machine's CPU use."""
        u = min(1.0, max(0.0, utilisation))
        return self.profile.p_idle_w + (self.profile.p_max_w - self.profile.p_idle_w) * u
