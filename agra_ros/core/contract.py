"""The contract between simulator and robot for one device profile and detector: what both sides read.

The pretrained policy learned on observations and rewards built by the simulator; on the robot the same vector
must be built from live data and the same reward terms from perception feedback, or the shipped policy would act
on inputs it never saw. Both sides therefore take their definitions from here (and from
:mod:`agra_ros.core.observation` and :mod:`agra_ros.core.reward`):

- the observation layout (:func:`observation_layout`: W from the detector backbone's embedding, D from the device model's
  bounds, P from :func:`agra_ros.core.observation.performance_vector`);
- the layer count and names and the cost-table latency of a configuration (the tables the simulator reads; the
  perception catalogue must agree), which the own-speed state compares measured latency with;
- ``energy_norm``'s reference: the energy per frame of the full configuration on the nominal device at the
  same target;
- the D vector of a device nobody has reported on yet (a fresh modelled device), for the first decisions;
- the default link round-trip time, what P shows while no link was measured (the accuracy floor's default is
  :data:`agra_ros.limits.ACCURACY_FLOOR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agra_ros.core.device import BACKGROUND_LOAD_MEAN, DEVICE_DIM, DeviceSim, device_bounds
from agra_ros.core.observation import (  # noqa: F401  (LINK_RTT_S re-exported: the simulator imports it here)
    LINK_RTT_S,
    LinkObservation,
    ObservationLayout,
    OwnSpeed,
    performance_vector,
)
from agra_ros.core.temporal import TRACKER_BASE_S, mean_frame_latency_s, tracker_latency_s
from agra_ros.detectors.registry import DEFAULT_DETECTOR, shipped_accuracy_model, shipped_cost_table
from agra_ros.granularity.levels import KEYFRAME_INTERVALS
from agra_ros.limits import ACCURACY_FLOOR
from agra_ros.tables.search import ConfigModel, load_config_model
from agra_ros.workload.features import WORKLOAD_DIM

SCORE_THRESHOLD = 0.3
"""Perception's default score threshold: every detection it keeps scores at least this, so W's mean confidence is
0 (nothing kept) or at least this, on the robot and in the simulator alike."""


def default_cost_table() -> Path:
    """The default detector's (the real SSD's) cost table measured on this project's reference machine."""
    return shipped_cost_table(DEFAULT_DETECTOR, "x86_generic")


def default_accuracy_model() -> Path:
    """The default detector's accuracy model (agreement with its full configuration on held-out real frames)."""
    return shipped_accuracy_model(DEFAULT_DETECTOR)


def observation_layout() -> ObservationLayout:
    """The (W, D, P) layout of the simulator and the robot."""
    d_low, d_high = device_bounds()
    return ObservationLayout(WORKLOAD_DIM, DEVICE_DIM, d_low=tuple(d_low), d_high=tuple(d_high))


@dataclass
class Contract:
    """The shared definitions for one device profile and detector (cost table)."""

    layout: ObservationLayout
    model: ConfigModel
    device: DeviceSim
    accuracy_floor: float = ACCURACY_FLOOR
    link_rtt_s: float = LINK_RTT_S

    @classmethod
    def load(cls, device_profile: str = "x86_generic") -> Contract:
        """Build from the shipped cost table and accuracy model and the named device profile."""
        model = load_config_model(str(default_cost_table()), str(default_accuracy_model()))
        table = model.cost_table
        device = DeviceSim(device_profile, table_device=table.device, table_threads=int(table.data.get("threads", 1)))
        return cls(layout=observation_layout(), model=model, device=device)

    @property
    def n_layers(self) -> int:
        return int(self.model.n_layers)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.model.layer_names)

    def reference_energy_j(self, target_fps: float) -> float:
        """Energy per frame of the full configuration on the nominal device at ``target_fps`` (``e_ref``)."""
        return self.device.reference_energy_j(self.model.full[:3], target_fps)

    def default_device_vector(self) -> np.ndarray:
        """D of a fresh device at ambient temperature and full clock (before the first /diagnostics)."""
        return np.asarray(self.device.vector(BACKGROUND_LOAD_MEAN, 0), dtype=np.float32)

    def tracker_latency_s(self, objects):
        """The keyframe tracker's latency per frame following ``objects`` boxes on the cost table's machine: the
        table's measured ``tracker`` line where it has one, else :mod:`agra_ros.core.temporal`'s defaults (works
        on numpy arrays)."""
        measured = self.model.cost_table.tracker_cost()
        return tracker_latency_s(objects) if measured is None else tracker_latency_s(objects, *measured)

    def table_latency_s(self, action: np.ndarray, tracker_s: float = TRACKER_BASE_S) -> float:
        """The cost table's mean frame latency of a granularity action (level indices, scale index, target index,
        and the keyframe-interval index where present: then ``tracker_s`` per tracked frame, on the table's
        machine, :func:`~agra_ros.core.temporal.mean_frame_latency_s`)."""
        key = tuple(int(x) for x in np.asarray(action).ravel())
        n = self.n_layers
        detector_s = float(self.model.lookup(key[: n + 1])[0])
        interval = KEYFRAME_INTERVALS[key[n + 2]] if len(key) > n + 2 else 1
        return float(mean_frame_latency_s(detector_s, interval, tracker_s)) if interval != 1 else detector_s

    def own_speed(
        self,
        latency_s: float,
        fps: float,
        target_fps: float,
        action: np.ndarray,
        slowdown_log2: float | None = None,
        tracker_s: float = TRACKER_BASE_S,
    ) -> OwnSpeed:
        """:meth:`OwnSpeed.measure` for a granularity action (level indices, scale index, target index);
        ``slowdown_log2`` replaces the one measurement's slowdown by a calibrated estimate (the robot's
        :class:`~agra_ros.online.live_latency.LiveLatency`)."""
        key = tuple(int(x) for x in np.asarray(action).ravel())
        n = self.n_layers
        table_latency = self.table_latency_s(action, tracker_s)
        return OwnSpeed.measure(
            latency_s, fps, target_fps, table_latency, key[:n], key[n], key[n + 1] == 1, slowdown_log2
        )

    def observation(
        self,
        w: np.ndarray,
        d: np.ndarray,
        target_fps: float,
        own_speed: OwnSpeed,
        last_accuracy_ratio: float,
        accuracy_floor: float | None = None,
        link: LinkObservation | None = None,
    ) -> np.ndarray:
        """The flat (W, D, P) vector, clipped into the layout's bounds: the one builder of both sides. ``link``:
        the measured link to a perception server; None: no server (RTT at the contract's default)."""
        p = performance_vector(
            target_fps,
            self.accuracy_floor if accuracy_floor is None else accuracy_floor,
            LinkObservation(rtt_s=self.link_rtt_s) if link is None else link,
            own_speed,
            last_accuracy_ratio,
        )
        return self.layout.build(w, d, p)
