"""What the on-robot agent takes from the simulator's definitions, in one place, so live and simulated agree.

The pretrained policy learned on observations and rewards defined by :class:`agra_ros.sim.env.AgraEnv`. On the
robot the same vector must be built from live data and the same reward terms computed from perception feedback,
or the shipped policy would act on inputs it never saw. This module reads those definitions from the simulator's
own building blocks (observation layout, device model, cost tables) instead of restating them:

- the observation layout (W from the workload encoder, D from the device model's bounds, P from
  :func:`agra_ros.policy.observation.performance_vector`) and the clip the env applies;
- the layer count and names (the cost table the simulator reads; the perception catalogue must agree);
- ``energy_norm``'s reference: the energy per frame of the full configuration on the nominal device at the
  same target, exactly as the env computes it each step;
- the D vector of a device nobody has reported on yet (the simulator's fresh device), for the first decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agra_ros.policy.observation import ObservationLayout, performance_vector


@dataclass
class SimReference:
    """The simulator's definitions for one device profile and detector (cost table)."""

    layout: ObservationLayout
    n_layers: int
    layer_names: tuple[str, ...]
    accuracy_floor: float
    link_rtt_s: float
    _device: object
    _full: tuple[float, float, float]
    """latency_s, MACs, bytes of the full configuration (cost table)."""
    _interference: float

    @classmethod
    def load(cls, device_profile: str = "x86_generic") -> SimReference:
        """Build from the shipped cost table and accuracy model and the named device profile."""
        from agra_ros.sim.configs import load_config_model
        from agra_ros.sim.device_sim import DEVICE_DIM, DeviceSim, device_bounds
        from agra_ros.sim.env import SimSettings, default_accuracy_model, default_cost_table
        from agra_ros.workload.features import WORKLOAD_DIM

        model = load_config_model(str(default_cost_table()), str(default_accuracy_model()))
        table = model.cost_table
        device = DeviceSim(device_profile, table_device=table.device, table_threads=int(table.data.get("threads", 1)))
        d_low, d_high = device_bounds()
        layout = ObservationLayout(WORKLOAD_DIM, DEVICE_DIM, d_low=tuple(d_low), d_high=tuple(d_high))
        s = SimSettings()
        return cls(
            layout=layout,
            n_layers=int(model.n_layers),
            layer_names=tuple(model.layer_names),
            accuracy_floor=float(s.accuracy_floor),
            link_rtt_s=float(s.link_rtt_s),
            _device=device,
            _full=tuple(float(x) for x in model.full[:3]),
            _interference=float(s.interference_mean),
        )

    def reference_energy_j(self, target_fps: float) -> float:
        """Energy per frame of the full configuration on the nominal device at ``target_fps`` (env's ``e_ref``)."""
        return self._device.reference_energy_j(self._full, target_fps)

    def default_device_vector(self) -> np.ndarray:
        """D of a fresh device at ambient temperature and full clock (before the first /diagnostics)."""
        return np.asarray(self._device.vector(self._interference, 0), dtype=np.float32)

    def observation(
        self,
        w: np.ndarray,
        d: np.ndarray,
        target_fps: float,
        last_load: float,
        last_accuracy_ratio: float,
        accuracy_floor: float | None = None,
        link_rtt_s: float | None = None,
    ) -> np.ndarray:
        """The flat (W, D, P) vector, clipped into the layout's bounds as the env clips its observations."""
        p = performance_vector(
            target_fps,
            self.accuracy_floor if accuracy_floor is None else accuracy_floor,
            self.link_rtt_s if link_rtt_s is None else link_rtt_s,
            last_load,
            last_accuracy_ratio,
        )
        obs = np.concatenate([np.ravel(w), np.ravel(d), p]).astype(np.float32)
        if obs.shape != (self.layout.dim,):
            raise ValueError(f"observation has {obs.size} entries, the layout needs {self.layout.dim}")
        if not np.all(np.isfinite(obs)):
            raise ValueError("observation has NaN/inf entries")
        low, high = self.layout.bounds()
        return np.clip(obs, low, high)
