"""Energy metering of the perception runtime: detector energy per frame and power from a device power model.

Apart from the runtime because it binds two other layers (a device profile's power model and a detector's cost
table) into one per-frame figure with its source named; the runtime only asks it for joules and watts. The
power model is imported lazily, so the detection layer does not load device/ until a meter is made. It sits in
detection/, not next to the power model, because the runtime uses it and device/ is above detection/ in
docs/architecture.md's layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agra_ros.granularity.levels import GranularityConfig

__all__ = ["EnergyMeter", "EnergyModelError", "PowerModelLike", "RadioLike", "make_energy_meter"]


class RadioLike(Protocol):
    """A radio's energy for a transfer (:class:`agra_ros.device.radio.RadioModel`)."""

    def energy_j(self, tx_bytes: float, rx_bytes: float, active_s: float) -> float: ...


class PowerModelLike(Protocol):
    """A device power model: the detector energy per frame from its busy time and work, and the power at a frame
    rate (:class:`agra_ros.device.power_model.PowerModel`)."""

    def detector_energy_per_frame_j(self, busy_s: float, macs: float = 0.0, bytes: float = 0.0) -> float: ...

    def power_w(self, detector_energy_j: float, fps: float) -> float: ...


@dataclass
class EnergyMeter:
    """Detector energy per frame and power from a device power model; ``source`` says where the figures come from."""

    model: PowerModelLike
    source: str
    """E.g. ``model:x86_generic`` (modelled from measured busy time with that device profile)."""
    cost_of: Callable[[GranularityConfig], tuple[float, float]] | None = None
    """(MACs, bytes) of a configuration, from a cost table; None: busy time only."""
    radio: RadioLike | None = None
    """The radio that sends frames to a perception server (agra_ros.device.radio: Huang et al., MobiSys 2012)."""
    process_cpu_s_per_s: float | None = None
    """CPU seconds per second the robot's graph processes used over the last window (agra_ros.device.process_cpu),
    set by whoever measures it; None: not measured, the power counts the frames' own busy time only."""

    def radio_energy_j(self, tx_bytes: float, rx_bytes: float, active_s: float) -> float:
        """The radio's joules for one request to a perception server (0 without a radio model)."""
        return float(self.radio.energy_j(tx_bytes, rx_bytes, active_s)) if self.radio is not None else 0.0

    def detector_energy_per_frame_j(self, busy_s: float, config: GranularityConfig, detector_ran: bool = True) -> float:
        """Joules of one frame; ``detector_ran`` False (a tracked frame between keyframes) counts busy time only."""
        use_table = self.cost_of is not None and detector_ran
        macs, nbytes = self.cost_of(config.detector_config()) if use_table else (0.0, 0.0)
        return float(self.model.detector_energy_per_frame_j(busy_s, macs=macs, bytes=nbytes))

    def power_w(self, detector_energy_j: float, fps: float, busy_s: float = 0.0) -> float:
        """The robot's power at ``fps`` frames of ``detector_energy_j`` each. With the graph's process CPU measured,
        the CPU it used per frame beyond the frame's own ``busy_s`` (conversions, DDS, the policy and its learner)
        is charged as busy time too: offloading then shows what it saves of everything the robot runs."""
        rate = self.process_cpu_s_per_s
        if rate is not None and fps > 0:
            beyond_s = max(0.0, rate / fps - busy_s)
            detector_energy_j += float(self.model.detector_energy_per_frame_j(beyond_s))
        return float(self.model.power_w(detector_energy_j, fps))

    @property
    def power_source(self) -> str:
        """``source``, with ``+process_cpu`` while the graph's process CPU is part of the power."""
        return self.source + ("+process_cpu" if self.process_cpu_s_per_s is not None else "")


class EnergyModelError(ValueError):
    """A device profile or cost table the energy accounting cannot use."""


def make_energy_meter(profile: str, cost_table: object | None = None, radio: str = "wifi") -> EnergyMeter:
    """An :class:`EnergyMeter` for the named device profile (source ``model:<profile used>``, ``auto`` resolved).

    ``cost_table`` (a :class:`~agra_ros.tables.files.CostTable` of this detector) adds the configuration's
    MACs and bytes to the busy time; without one the model works from busy time alone. ``radio`` names the radio
    model of frames sent to a perception server (``wifi`` or ``lte``, agra_ros.device.radio).
    """
    try:
        from agra_ros.device.power_model import PowerModel, load_profile
        from agra_ros.device.radio import radio_model
    except ImportError as exc:
        raise EnergyModelError(f"the device power model is not installed ({exc})") from None
    try:
        model = PowerModel(load_profile(profile))
    except (KeyError, OSError, ValueError) as exc:
        raise EnergyModelError(f"unknown or unusable device profile {profile!r}: {exc}") from None
    cost_of = None
    if cost_table is not None:

        def cost_of(config: GranularityConfig) -> tuple[float, float]:
            c = cost_table.frame_cost(config)  # type: ignore[attr-defined]
            return c.macs, c.bytes

    try:
        radio_used = radio_model(radio)
    except KeyError as exc:
        raise EnergyModelError(str(exc)) from None
    return EnergyMeter(model, f"model:{model.profile.name}", cost_of, radio_used)  # the profile used, "auto" resolved
