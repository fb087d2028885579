"""Power, voltage and temperature from an isaac_ros_jetson_stats ``jtop`` node's /diagnostics statuses.

On a Jetson the rails' power is what that node publishes. Its statuses carry unit strings, not numbers:

- ``jetson_stats/power/<rail>``: keys ``Power`` / ``Average`` (``"5.2W"``, ``"850mW"``), ``Volt`` (jtop's mV
  printed with a ``W`` suffix, e.g. ``"5.1W"`` for 5080 mV), message ``"Power: 5.2W - Avg: 4.9W"``. The total
  input rail is named ``ALL`` (jtop's sum) or by the board (``VDD_IN``, ``POM_5V_IN``).
- ``jetson_stats/temp/<sensor>``: the temperature in the message (``"45.50C"``, ``"Offline"``,
  ``"86.00C more than 84.00C"``).
- The older single statuses ``jetson_stats power`` (message ``"curr=5234mW avg=4900mW"``) and ``jetson_stats temp``
  (one key per sensor, ``"45.50C"``) as device_monitor's jtop-compatible output writes them too.

:func:`parse_quantity` turns one such string into an SI number; :func:`read_jtop_statuses` picks the device's total
power, input voltage and hottest temperature; :class:`JtopInput` keeps the latest reading and lays it over
device_monitor's keys where those are modelled (a sensor of device_monitor's own is kept).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agra_ros.device.keys import DEVICE_STATUS_NAME

_PREFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
_UNITS = {"W": "W", "V": "V", "A": "A", "C": "C", "°C": "C", "degC": "C", "%": "%", "Hz": "Hz"}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([mkMG]?)\s*(°C|degC|[WVAC%]|Hz)?\s*$")


@dataclass(frozen=True)
class Quantity:
    value: float
    """In the base unit: W, V, A, degrees Celsius, percent (0..100) or Hz."""
    unit: str
    """``W``, ``V``, ``A``, ``C``, ``%``, ``Hz``, or ``""`` for a bare number."""


def parse_quantity(text: str) -> Quantity | None:
    """``"5.2W"``, ``"850 mW"``, ``"4.9V"``, ``"4900mV"``, ``"45.5C"``, ``"45.5 °C"``, ``"12%"``, ``"3.2"`` -> value in
    the base unit. None for anything else (garbage, NaN, infinities, a prefix without a unit)."""
    if not isinstance(text, str):
        return None
    m = _QUANTITY.match(text)
    if m is None:
        return None
    number, prefix, unit = m.group(1), m.group(2), m.group(3) or ""
    if prefix and not unit:
        return None  # "5m": metres or milli-something, not ours
    if prefix and unit in ("C", "°C", "degC", "%"):
        return None
    value = float(number) * _PREFIX[prefix]
    if not math.isfinite(value):
        return None
    return Quantity(value, _UNITS.get(unit, ""))


def _as(text: str, unit: str, bare_scale: float | None = None) -> float | None:
    """The value of ``text`` in ``unit``; a bare number counts when ``bare_scale`` says how to read it."""
    q = parse_quantity(text)
    if q is None:
        return None
    if q.unit == unit:
        return q.value
    if q.unit == "" and bare_scale is not None:
        return q.value * bare_scale
    return None


TOTAL_RAILS: tuple[str, ...] = ("ALL", "VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "TOTAL")
"""Rail names that are the board's whole input, in preference order (otherwise the rails are summed)."""


@dataclass(frozen=True)
class JtopReading:
    power_w: float | None = None
    voltage_v: float | None = None
    temp_c: float | None = None

    def key_values(self) -> dict[str, str]:
        """device_monitor-style keys (``power_w``, ``voltage_v``, ``temp_c``) with ``<key>.source`` = ``jtop_node``."""
        out: dict[str, str] = {}
        for k in ("power_w", "voltage_v", "temp_c"):
            v = getattr(self, k)
            if v is not None:
                out[k] = f"{v:.6g}"
                out[f"{k}.source"] = "jtop_node"
        return out


Status = tuple[str, str, Mapping[str, str]]
"""(name, message, key/values) of one DiagnosticStatus."""


def _rail_power(message: str, kv: Mapping[str, str]) -> tuple[float | None, float | None]:
    power = _as(kv.get("Power", ""), "W")
    if power is None:  # the message: "Power: 5.2W - Avg: 4.9W"
        m = re.search(r"Power:\s*([^-\s][^-]*?)\s*(?:-|$)", message)
        power = _as(m.group(1), "W") if m else None
    # jtop's mV printed with jtop's W suffix ("5.1W" for 5080 mV): the number and prefix are right, the letter is not
    volt = kv.get("Volt", "")
    q = parse_quantity(volt)
    voltage = q.value if q is not None and q.unit in ("V", "W") and q.value > 0 else None
    return power, voltage


JTOP_STATUS_NAMES = ("jetson_stats power", "jetson_stats temp")
"""Whole names of the jtop statuses read here (older jetson_stats, and device_monitor's copies)."""
JTOP_STATUS_PREFIXES = ("jetson_stats/power/", "jetson_stats/temp/")
"""Name prefixes of the per-rail and per-sensor jtop statuses read here."""


def is_jtop_status(name: str) -> bool:
    """Whether :func:`read_jtop_statuses` reads a status of this name (all others it skips)."""
    name = name.strip()
    return name in JTOP_STATUS_NAMES or name.startswith(JTOP_STATUS_PREFIXES)


def read_jtop_statuses(statuses: Sequence[Status]) -> JtopReading | None:
    """The device's total power, input voltage and hottest online temperature from a jtop node's statuses; None when
    none of them is there or readable."""
    rails: dict[str, tuple[float | None, float | None]] = {}
    temps: dict[str, float] = {}
    legacy_power: float | None = None
    for name, message, kv in statuses:
        name = name.strip()
        if name.startswith(JTOP_STATUS_PREFIXES[0]):
            rails[name.split("/", 2)[2]] = _rail_power(message, kv)
        elif name.startswith(JTOP_STATUS_PREFIXES[1]):
            t = _as(message.split(" more than ")[0], "C")
            if t is not None:
                temps[name.split("/", 2)[2]] = t
        elif name == JTOP_STATUS_NAMES[0]:
            m = re.search(r"curr\s*=\s*(\S+)", message)
            legacy_power = _as(m.group(1), "W", bare_scale=1e-3) if m else None
        elif name == JTOP_STATUS_NAMES[1]:
            for sensor, value in kv.items():
                t = _as(value, "C", bare_scale=1.0)  # device_monitor's copy writes plain numbers in degrees C
                if t is not None:
                    temps[sensor] = t
    power = voltage = None
    total = next((r for r in TOTAL_RAILS if r in rails and rails[r][0] is not None), None)
    if total is not None:
        power, voltage = rails[total]
    elif any(p is not None for p, _ in rails.values()):
        power = sum(p for p, _ in rails.values() if p is not None)
    elif legacy_power is not None:
        power = legacy_power
    # physically possible readings only: a sensor glitch must not steer the policy
    power = power if power is not None and 0.0 <= power < 10_000.0 else None
    temps = {k: t for k, t in temps.items() if -40.0 <= t <= 200.0}
    temp = temps.get("tj", temps.get("TJ", max(temps.values()) if temps else None))
    if power is None and temp is None:
        return None
    return JtopReading(power, voltage, temp)


class JtopInput:
    """The latest reading of an external jtop node, laid over device_monitor's modelled keys while fresh.

    Statuses that arrive in the same DiagnosticArray as device_monitor's device status are that node's own
    jtop-compatible copies (modelled where it has no sensor) and are ignored.
    """

    def __init__(self, max_age_s: float = 5.0) -> None:
        self.max_age_s = max_age_s
        self.reading: JtopReading | None = None
        self._t = -math.inf

    def update(self, statuses: Sequence[Status], now: float) -> bool:
        """Take a jtop reading from one DiagnosticArray's statuses; True when it had one."""
        if any(name == DEVICE_STATUS_NAME for name, _, _ in statuses):
            return False
        reading = read_jtop_statuses(statuses)
        if reading is None:
            return False
        self.reading, self._t = reading, now
        return True

    def fresh(self, now: float) -> JtopReading | None:
        return self.reading if now - self._t <= self.max_age_s else None

    def merge(self, kv: Mapping[str, str], now: float) -> dict[str, str]:
        """device_monitor's key/values with the jtop node's power, voltage and temperature where device_monitor's
        value is modelled (``model:...`` source) or missing; unchanged when no fresh reading exists."""
        out = dict(kv)
        reading = self.fresh(now)
        if reading is None:
            return out
        jtop = reading.key_values()
        for key in ("power_w", "voltage_v", "temp_c"):
            if key in jtop and (key not in kv or kv.get(f"{key}.source", "model:").startswith("model:")):
                out[key], out[f"{key}.source"] = jtop[key], jtop[f"{key}.source"]
        return out
