"""Device state D from one /diagnostics status, for the policy: parsed by the device layer, checked here.

The key names and their parsing belong to the device layer: :mod:`agra_ros.device.keys` (``DeviceState.from_key_values``
reads device_monitor's numeric keys; ``DeviceState.vector()`` is the D block the simulator's device model produces) and
:mod:`agra_ros.device.jtop_reader` (an isaac_ros_jetson_stats jtop node's statuses with unit strings). This adapter
decides which statuses carry a device state (:class:`DeviceInputs`: device_monitor's status, with a jtop node's
measured power, voltage and temperature laid over its modelled ones; the jtop node alone when no device_monitor is
heard) and refuses readings the policy must not act on (NaN or infinite values), naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agra_ros.device.jtop_reader import JtopInput, Status, is_jtop_status
from agra_ros.device.keys import DEVICE_KEYS, DEVICE_STATUS_NAME, DeviceState


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


def is_device_input_status(name: str) -> bool:
    """Whether a /diagnostics status of this name can carry device state D (device_monitor's, a jtop node's).

    Checked on the name before any key is read, so heavy statuses of other nodes cost nothing."""
    return name == DEVICE_STATUS_NAME or is_jtop_status(name)


class DeviceInputs:
    """Picks the device key/values of each /diagnostics array (see the module docstring)."""

    def __init__(self, monitor_timeout_s: float = 5.0) -> None:
        self.jtop = JtopInput(max_age_s=monitor_timeout_s)
        self.monitor_timeout_s = monitor_timeout_s
        self._monitor_t = -math.inf

    def device_key_values(self, statuses: Sequence[Status], now: float) -> list[dict[str, str]]:
        """Key/values to give :func:`parse_device_status`, one per device state in this array (usually 0 or 1)."""
        had_jtop = self.jtop.update(statuses, now)
        kvs = [self.jtop.merge(kv, now) for name, _, kv in statuses if name == DEVICE_STATUS_NAME]
        if kvs:
            self._monitor_t = now
        elif had_jtop and now - self._monitor_t > self.monitor_timeout_s:
            kvs = [self.jtop.merge({}, now)]
        return kvs
