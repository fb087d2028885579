"""What this machine offers the perception runtime: the busy clock its energy accounting reads, and CUDA."""

from __future__ import annotations

import time
from collections.abc import Callable


def busy_clock(threads: int) -> Callable[[], float] | None:
    """The runtime's busy clock: this thread's CPU time with one torch thread, else None, the wall time of the
    detector call (see :class:`agra_ros.perception.runtime.PerceptionRuntime`)."""
    return time.thread_time if threads == 1 else None


def cuda_problem() -> str | None:
    """Why cuda cannot be used here, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "torch reports no usable CUDA device (CPU-only build, no driver or no GPU)"
    return None
