"""Device monitor backends and their merge: jtop, NVML, sysfs (RAPL/thermal/hwmon), psutil, modelled power.

Each backend reads what its source can measure; :class:`DeviceMonitor` asks them in priority order and the first
to report a key wins, so a Jetson's rail power beats the model and the model only fills what no sensor gives.
Every figure keeps the name of the source that produced it. A backend that raises at run time is dropped with one
warning and the next one takes over its keys: the monitor degrades, it does not crash.

No library covers this merge (jetson-stats is Jetson-only, nvidia-ml-py GPU-only, psutil has no power), so the
small amount of glue is written here; each source itself is read through its library or its documented sysfs files.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agra_ros.device.keys import DeviceState
from agra_ros.device.power_model import PowerModel
from agra_ros.device.profiles import DeviceProfile
from agra_ros.device.thermal import ThermalModel

BACKEND_ORDER: tuple[str, ...] = ("jtop", "nvml", "sysfs", "psutil", "model")


class BackendUnavailable(RuntimeError):
    """The backend's source does not exist on this machine (a reason, not an error)."""


@dataclass
class Sample:
    """A (partial) reading: numeric keys with their sources, plus the detail jtop-compatible statuses show."""

    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    cpu_cores: list[tuple[float, float]] = field(default_factory=list)
    """Per core: (utilisation %, frequency kHz)."""
    gpus: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per GPU: (load %, frequency kHz)."""
    temps: dict[str, float] = field(default_factory=dict)
    """Sensor name -> degrees C."""
    rails: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Power rail -> (current mW, average mW)."""

    def put(self, key: str, value: float | None, source: str) -> None:
        """Record ``key`` unless already known; a missing or non-finite (glitched) value leaves it to the next source."""
        if value is not None and math.isfinite(float(value)) and key not in self.values:
            self.values[key] = float(value)
            self.sources[key] = source

    def merge(self, other: Sample) -> None:
        """Add what ``other`` knows and this sample does not (first provider wins)."""
        for k, v in other.values.items():
            self.put(k, v, other.sources[k])
        if not self.cpu_cores:
            self.cpu_cores = list(other.cpu_cores)
        for d_self, d_other in ((self.gpus, other.gpus), (self.temps, other.temps), (self.rails, other.rails)):
            for k, v in d_other.items():
                d_self.setdefault(k, v)


class Backend:
    """One source of device figures. ``open`` raises :class:`BackendUnavailable` when the source is absent."""

    name = "backend"

    def open(self) -> None:
        """Check the source exists and prepare to read it."""

    def read(self, so_far: Sample) -> Sample:
        """A reading; ``so_far`` holds what higher-priority backends reported this round."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the source."""


class JtopBackend(Backend):
    """jetson-stats (``jtop``) on a Jetson: rail power, temperatures, per-core CPU and GPU load, clocks."""

    name = "jtop"

    def open(self) -> None:
        try:
            from jtop import jtop  # type: ignore[import-not-found]
        except ImportError as exc:
            raise BackendUnavailable(f"jetson-stats not installed ({exc})") from None
        try:
            self._jetson = jtop()
            self._jetson.start()
        except Exception as exc:  # jtop raises its own JtopException when jtop.service is not running
            raise BackendUnavailable(f"jtop service not reachable ({exc})") from None

    def read(self, so_far: Sample) -> Sample:
        j, s = self._jetson, Sample()
        if not j.ok():
            raise RuntimeError("jtop stopped delivering data")
        power = j.power
        tot = power.get("tot", {})
        s.put("power_w", tot.get("power", 0.0) / 1000.0, self.name)
        if tot.get("volt"):
            s.put("voltage_v", tot["volt"] / 1000.0, self.name)
        for rail, r in power.get("rail", {}).items():
            s.rails[rail] = (float(r.get("power", 0.0)), float(r.get("avg", 0.0)))
        for sensor, t in j.temperature.items():
            if t.get("online", True) and t.get("temp", -256) > -256:
                s.temps[sensor] = float(t["temp"])
        if s.temps:
            s.put("temp_c", max(s.temps.values()), self.name)
        cores = [c for c in j.cpu.get("cpu", []) if c.get("online", True)]
        for c in cores:
            freq = c.get("freq", {})
            s.cpu_cores.append((100.0 - float(c.get("idle", 100.0)), float(freq.get("cur", 0.0))))
        if cores:
            s.put("cpu_util", sum(u for u, _ in s.cpu_cores) / len(s.cpu_cores) / 100.0, self.name)
            s.put("cores_available", len(cores), self.name)
            s.put("cores_total", len(j.cpu.get("cpu", [])), self.name)
            ratios = [c["freq"]["cur"] / c["freq"]["max"] for c in cores if c.get("freq", {}).get("max")]
            if ratios:
                s.put("clock_ratio", sum(ratios) / len(ratios), self.name)
        for gname, g in j.gpu.items():
            load = float(g.get("status", {}).get("load", 0.0))
            s.gpus[gname] = (load, float(g.get("freq", {}).get("cur", 0.0)))
        if s.gpus:
            s.put("gpu_util", max(load for load, _ in s.gpus.values()) / 100.0, self.name)
        return s

    def close(self) -> None:
        try:
            self._jetson.close()
        except Exception:  # noqa: BLE001 - closing a dead service is not worth an error at shutdown
            pass


class NvmlBackend(Backend):
    """nvidia-ml-py on an NVIDIA GPU: board power, GPU utilisation, temperature, SM clock ratio, power limit."""

    name = "nvml"

    def open(self) -> None:
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError as exc:
            raise BackendUnavailable(f"nvidia-ml-py not installed ({exc})") from None
        try:
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._gpu_name = str(pynvml.nvmlDeviceGetName(self._h))
        except pynvml.NVMLError as exc:
            raise BackendUnavailable(f"NVML not usable ({exc})") from None
        self._nvml = pynvml

    def read(self, so_far: Sample) -> Sample:
        n, h, s = self._nvml, self._h, Sample()
        power_mw = float(n.nvmlDeviceGetPowerUsage(h))
        s.put("power_w", power_mw / 1000.0, self.name)
        s.rails[self._gpu_name] = (power_mw, power_mw)
        s.put("power_max_w", n.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0, self.name)
        util = n.nvmlDeviceGetUtilizationRates(h)
        s.put("gpu_util", util.gpu / 100.0, self.name)
        temp = float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))
        s.temps["GPU"] = temp
        s.put("temp_c", temp, self.name)
        sm, sm_max = n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM), n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_SM)
        s.gpus[self._gpu_name] = (float(util.gpu), float(sm) * 1000.0)
        if sm_max:
            s.put("clock_ratio", sm / sm_max, self.name)
        return s

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


class SysfsBackend(Backend):
    """Linux sysfs on x86: RAPL package energy (-> power), thermal zones and hwmon temperatures, critical trip."""

    name = "sysfs"

    def __init__(self, root: str | Path = "/sys") -> None:
        self.root = Path(root)
        self._rapl: list[Path] = []
        self._last_energy: tuple[float, float] | None = None

    def open(self) -> None:
        pc = self.root / "class" / "powercap"
        self._rapl = sorted(p for p in pc.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        self._rapl = [p for p in self._rapl if (p / "energy_uj").is_file()]
        self._zones = sorted((self.root / "class" / "thermal").glob("thermal_zone*"))
        self._zones = [z for z in self._zones if (z / "temp").is_file()]
        self._hwmon_temps = sorted((self.root / "class" / "hwmon").glob("hwmon*/temp*_input"))
        if not (self._rapl or self._zones or self._hwmon_temps):
            raise BackendUnavailable(f"no RAPL, thermal zones or hwmon sensors under {self.root}/class")

    def _energy_j(self) -> float:
        total = 0.0
        for dom in self._rapl:
            total += int((dom / "energy_uj").read_text()) / 1e6
        return total

    def _wrap_j(self) -> float:
        out = 0.0
        for dom in self._rapl:
            f = dom / "max_energy_range_uj"
            out += int(f.read_text()) / 1e6 if f.is_file() else 0.0
        return out

    def read(self, so_far: Sample) -> Sample:
        s = Sample()
        if self._rapl:
            now, e = time.monotonic(), self._energy_j()
            if self._last_energy is not None and now > self._last_energy[0]:
                de = e - self._last_energy[1]
                if de < 0:  # the counter wrapped
                    de += self._wrap_j()
                watts = de / (now - self._last_energy[0])
                s.put("power_w", watts, f"{self.name}:rapl")
                s.rails["RAPL package"] = (watts * 1000.0, watts * 1000.0)
            self._last_energy = (now, e)
        critical: list[float] = []
        for z in self._zones:
            kind = (z / "type").read_text().strip() if (z / "type").is_file() else z.name
            s.temps[kind] = int((z / "temp").read_text()) / 1000.0
            for trip_type in z.glob("trip_point_*_type"):
                if trip_type.read_text().strip() == "critical":
                    temp_file = trip_type.with_name(trip_type.name.replace("_type", "_temp"))
                    critical.append(int(temp_file.read_text()) / 1000.0)
        for f in self._hwmon_temps:
            chip = (f.parent / "name").read_text().strip() if (f.parent / "name").is_file() else f.parent.name
            s.temps.setdefault(f"{chip} {f.name.split('_')[0]}", int(f.read_text()) / 1000.0)
        if s.temps:
            s.put("temp_c", max(s.temps.values()), f"{self.name}:thermal")
        if critical:
            s.put("temp_critical_c", min(critical), f"{self.name}:thermal")
        return s


class PsutilBackend(Backend):
    """psutil everywhere: CPU utilisation per core, cores this process may use, frequency ratio, temperatures."""

    name = "psutil"

    def open(self) -> None:
        try:
            import psutil
        except ImportError as exc:
            raise BackendUnavailable(f"psutil not installed ({exc})") from None
        self._ps = psutil
        psutil.cpu_percent(percpu=True)  # the first call only starts the measurement interval

    def read(self, so_far: Sample) -> Sample:
        ps, s = self._ps, Sample()
        per_core = ps.cpu_percent(percpu=True)
        freqs = ps.cpu_freq(percpu=True) or []
        for i, u in enumerate(per_core):
            f = freqs[i].current * 1000.0 if i < len(freqs) else 0.0
            s.cpu_cores.append((float(u), float(f)))
        if per_core:
            s.put("cpu_util", sum(per_core) / len(per_core) / 100.0, self.name)
        total = ps.cpu_count(logical=True) or len(per_core) or 1
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            available = total
        s.put("cores_available", available, self.name)
        s.put("cores_total", total, self.name)
        agg = ps.cpu_freq()
        if agg is not None and agg.max and agg.max > 0 and agg.current > 0:
            s.put("clock_ratio", min(1.0, agg.current / agg.max), self.name)
        temps = getattr(ps, "sensors_temperatures", lambda: {})() or {}
        for chip, entries in temps.items():
            for i, t in enumerate(entries):
                s.temps[t.label or f"{chip} {i}"] = float(t.current)
        if s.temps:
            s.put("temp_c", max(s.temps.values()), self.name)
        return s


class ModelledBackend(Backend):
    """The named device profile's power and thermal model, driven by the measured CPU utilisation.

    Power: P = P_idle + (P_max - P_idle) * utilisation (the linear utilisation model), temperature and DVFS from
    :class:`~agra_ros.device.thermal.ThermalModel`. It fills every key no sensor reported; its source is
    ``model:<profile>``.
    """

    name = "model"

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self.source = f"model:{profile.name}"
        self._power = PowerModel(profile)
        self._thermal = ThermalModel(profile)
        self._last: float | None = None

    def read(self, so_far: Sample) -> Sample:
        p, s, src = self.profile, Sample(), self.source
        now = time.monotonic()
        util = so_far.values.get("cpu_util", 0.0)
        power = so_far.values.get("power_w", self._power.utilisation_power_w(util))
        if self._last is not None:
            self._thermal.advance(power, now - self._last)
        self._last = now
        s.put("power_w", power, src)
        s.put("temp_c", self._thermal.temperature_c, src)
        s.put("clock_ratio", self._thermal.clock_ratio, src)
        s.put("throttling", 1.0 if self._thermal.throttling else 0.0, src)
        s.put("voltage_v", p.voltage_v * (0.7 + 0.3 * self._thermal.clock_ratio), src)
        s.put("gpu_util", 0.0, src)
        s.put("cpu_util", util, src)
        s.put("cores_available", p.cores, src)
        s.put("cores_total", p.cores, src)
        s.put("power_max_w", p.p_max_w, src)
        s.put("voltage_nominal_v", p.voltage_v, src)
        s.put("temp_critical_c", p.t_critical_c, src)
        s.rails.setdefault("modelled total", (power * 1000.0, power * 1000.0))
        s.temps.setdefault("modelled die", self._thermal.temperature_c)
        return s


def make_backend(name: str, profile: DeviceProfile, sysfs_root: str | Path = "/sys") -> Backend:
    factories: dict[str, Callable[[], Backend]] = {
        "jtop": JtopBackend,
        "nvml": NvmlBackend,
        "sysfs": lambda: SysfsBackend(sysfs_root),
        "psutil": PsutilBackend,
        "model": lambda: ModelledBackend(profile),
    }
    if name not in factories:
        raise ValueError(f"unknown device backend {name!r}; known: {', '.join(BACKEND_ORDER)}")
    return factories[name]()


def parse_backend_list(spec: str) -> list[str]:
    """``auto`` or a comma-separated list from :data:`BACKEND_ORDER`; ``model`` is always last (it fills gaps)."""
    spec = spec.strip().lower()
    names = list(BACKEND_ORDER) if spec in ("", "auto") else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKEND_ORDER]
    if unknown:
        raise ValueError(f"unknown device backend(s) {', '.join(unknown)}; choose from {', '.join(BACKEND_ORDER)}")
    names = [n for n in dict.fromkeys(names) if n != "model"]
    return names + ["model"]


class DeviceMonitor:
    """Reads the backends in priority order and merges them into one :class:`Sample` and :class:`DeviceState`."""

    def __init__(
        self,
        profile: DeviceProfile,
        backends: str = "auto",
        sysfs_root: str | Path = "/sys",
        log: Callable[[str, str], None] | None = None,
    ) -> None:
        """``log(level, message)`` receives 'info'/'warn' lines (the node forwards them to its logger)."""
        self.profile = profile
        self._log = log or (lambda level, msg: None)
        self.active: list[Backend] = []
        self.unavailable: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        for name in parse_backend_list(backends):
            b = make_backend(name, profile, sysfs_root)
            try:
                b.open()
            except BackendUnavailable as exc:
                self.unavailable[name] = str(exc)
                self._log("info", f"device backend {name} unavailable: {exc}")
                continue
            self.active.append(b)
        self._log("info", "device backends in use: " + ", ".join(b.name for b in self.active))

    def sample(self) -> Sample:
        merged = Sample()
        for b in list(self.active):
            try:
                merged.merge(b.read(merged))
            except Exception as exc:  # any run-time failure of one source: drop it, the next takes over
                self.active.remove(b)
                self.failed[b.name] = repr(exc)
                self._log("warn", f"device backend {b.name} failed ({exc!r}); degrading to the next source")
                b.close()
        return merged

    def state(self, sample: Sample) -> DeviceState:
        """The DeviceState of a merged sample (the modelled backend guarantees every key is present)."""
        return DeviceState.from_key_values({k: str(v) for k, v in sample.values.items()})

    def close(self) -> None:
        for b in self.active:
            b.close()
        self.active.clear()
