"""Device state D from one /diagnostics status, for the policy: parsed by the device layer, checked here.

The key names and their parsing belong to :mod:`agra_ros.device.keys` (``DeviceState.from_key_values`` reads our
device_monitor's numeric keys or a jetson-stats jtop node's statuses; ``DeviceState.vector()`` is the D block the
simulator's device model produces). This adapter only decides which statuses carry a device state at all and refuses
readings the policy must not act on (NaN or infinite values), naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from agra_ros.device.keys import DEVICE_KEYS, DeviceState


class DeviceInputError(ValueError):
    """A device status the policy refuses (non-numeric, NaN or infinite values)."""

    kind = "diagnostics"


@dataclass(frozen=True)
class DeviceReading:
    vector: np.ndarray
    """The D block."""
    temp_c: float | None
    throttling: bool
    critical_temp_c: float | None = None
    """The device's own critical temperature when it reports one."""


def parse_device_status(kv: Mapping[str, str]) -> DeviceReading | None:
    """The device reading of one status's key/values, None when it is not a device status."""
    if not any(k in kv for k in DEVICE_KEYS):
        return None
    for k in DEVICE_KEYS:
        if k in kv:
            try:
                v = float(kv[k])
            except ValueError:
                raise DeviceInputError(f"diagnostics key {k}={kv[k]!r} is not a number") from None
            if not math.isfinite(v):
                raise DeviceInputError(f"diagnostics key {k}={kv[k]!r} is not a finite number")
    try:
        state = DeviceState.from_key_values(dict(kv))
        vec = np.asarray(state.vector(), dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise DeviceInputError(f"device status not understood: {exc}") from None
    if not np.all(np.isfinite(vec)):
        raise DeviceInputError(f"device state vector has NaN/inf entries: {vec.tolist()}")
    temp = getattr(state, "temp_c", None)
    temp = float(temp) if temp is not None and math.isfinite(float(temp)) else None
    critical = getattr(state, "temp_critical_c", None)
    critical = float(critical) if critical is not None and math.isfinite(float(critical)) else None
    return DeviceReading(vec, temp, bool(getattr(state, "throttling", False)), critical)
