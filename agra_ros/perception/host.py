"""What this machine offers the perception runtime, checked the same way by perception_node and
perception_server_node: CUDA, torch's thread count and the busy clock the energy accounting reads (the detector's
start-up on top of these is agra_ros.detectors.startup)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["StartupError", "busy_clock", "cuda_problem", "device_rejected", "set_threads"]


class StartupError(RuntimeError):
    """A setting a node cannot start with (missing weights, unusable device, unknown profile): reported once,
    exit code 2 (agra_ros.ros.spin)."""


def busy_clock(threads: int) -> Callable[[], float] | None:
    """The runtime's busy clock: this thread's CPU time with one torch thread, else None, the wall time of the
    detector call (see :class:`agra_ros.perception.runtime.PerceptionRuntime`)."""
    return time.thread_time if threads == 1 else None


def set_threads(threads: int) -> Callable[[], float] | None:
    """Set torch's intra-op threads; returns the busy clock that goes with that count."""
    import torch

    torch.set_num_threads(int(threads))
    return busy_clock(int(threads))


def cuda_problem() -> str | None:
    """Why cuda cannot be used here, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "torch reports no usable CUDA device (CPU-only build, no driver or no GPU)"
    return None


def device_rejected(name: str, value: object) -> str | None:
    """Why setting parameter ``name`` to ``value`` must be refused for this machine (device=cuda without a usable
    GPU), or None: checked at start-up and on every runtime change, with the same words."""
    if name == "device" and value == "cuda":
        problem = cuda_problem()
        if problem:
            return f"device=cuda rejected: {problem}"
    return None
