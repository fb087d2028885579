"""Starting the detector on this machine, the same way for perception_node and perception_server_node: the device
check, torch's thread count, the registry detector (or its synthetic fallback when its shipped weights are missing)
and the busy clock its energy accounting reads. One place, so a robot and its server run the same network under
the same rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agra_ros.detectors import registry
from agra_ros.detectors.interface import WeightsError
from agra_ros.perception.host import StartupError, device_rejected, set_threads

__all__ = ["HostedDetector"]


@dataclass
class HostedDetector:
    """The detector a node runs, and what it should say about it."""

    detector: object
    entry: registry.DetectorEntry
    """The registry entry of the detector that actually runs (the synthetic double's after a fallback)."""
    why: str
    """One log line: which detector runs and why."""
    fell_back: bool
    """The detector asked for could not load (shipped weights missing): the synthetic test double runs; say so loudly."""
    busy_clock: Callable[[], float] | None

    @property
    def network(self) -> str:
        return self.entry.network

    @property
    def n_layers(self) -> int:
        return len(self.detector.switchable_layer_names())

    @classmethod
    def start(cls, name: str, weights: str, device: str, threads: int) -> HostedDetector:
        """Check the device, set torch's threads and load ``name`` (falling back to the synthetic double when its
        shipped weights are missing); StartupError says what prevents it."""
        problem = device_rejected("device", device)
        if problem:
            raise StartupError(problem)
        clock = set_threads(threads)
        try:
            detector, why = registry.load_with_fallback(name, weights or None, device=device)
        except WeightsError as exc:
            raise StartupError(str(exc)) from None
        return cls(detector, registry.entry(detector.registry_name), why, detector.registry_name != name, clock)
