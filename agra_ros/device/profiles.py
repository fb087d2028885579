"""Device profiles: the named YAML files in config/devices/ that describe a board's speed, power and heat.

A profile is what the modelled power source, the simulator and the energy accounting share, so the three agree on
one device. Numbers come from vendor data sheets (cited in each file); where a machine has a real sensor, the
device monitor reports the sensor and the profile only fills what the sensor lacks.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from agra_ros.paths import config_dir


class ProfileError(ValueError):
    """A device profile that does not exist or cannot be used (missing or absurd fields)."""


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """One device: speed relative to the cost table's device, power model coefficients, thermal RC model, DVFS steps.

    The device monitor, the power model, the thermal model and the simulator all read this one type.
    """

    name: str
    description: str = ""
    arch: str = "generic"
    speed: float
    """Throughput relative to the reference device (x86_generic = 1.0)."""
    cores: int
    gpu: bool = False
    p_idle_w: float
    p_max_w: float
    j_per_busy_s: float
    """Dynamic energy per second of inference busy time."""
    j_per_gmac: float
    j_per_mb: float
    tx_j_per_mb: float
    """Radio energy per megabyte sent to a remote perception node."""
    voltage_v: float
    t_ambient_c: float
    thermal_r_c_per_w: float
    thermal_tau_s: float
    t_throttle_c: float
    t_critical_c: float
    clock_steps: tuple[float, ...]
    """DVFS clock ratios, fastest first; throttling walks down this list."""

    def __post_init__(self) -> None:
        positive = ("speed", "p_max_w", "voltage_v", "thermal_r_c_per_w", "thermal_tau_s")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ProfileError(f"device profile {self.name!r}: {f.name} is not a finite number")
        for k in positive:
            if getattr(self, k) <= 0:
                raise ProfileError(f"device profile {self.name!r}: {k} must be > 0, got {getattr(self, k)}")
        if self.cores < 1:
            raise ProfileError(f"device profile {self.name!r}: cores must be >= 1")
        if not 0 <= self.p_idle_w < self.p_max_w:
            raise ProfileError(f"device profile {self.name!r}: need 0 <= p_idle_w < p_max_w")
        if not self.t_ambient_c < self.t_throttle_c <= self.t_critical_c:
            raise ProfileError(f"device profile {self.name!r}: need t_ambient_c < t_throttle_c <= t_critical_c")
        steps = self.clock_steps
        if not steps or steps[0] != 1.0 or any(not 0 < b < a for a, b in zip(steps, steps[1:])):
            raise ProfileError(f"device profile {self.name!r}: clock_steps must start at 1.0 and decrease, got {steps}")

    def get(self, key: str, default=None):
        """Mapping-style access, so code written against a dict profile works unchanged."""
        return getattr(self, key, default)


def profiles_dir() -> Path:
    return config_dir() / "devices"


def available_profiles() -> list[str]:
    """Names of the profiles shipped in config/devices/."""
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


BOARD_MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
"""Where an ARM board names itself (the device tree's model string, e.g. "NVIDIA Jetson Orin Nano ...")."""


def board_model() -> str:
    """This board's device-tree model string, or "" where there is none (x86, containers without /proc/device-tree)."""
    for f in BOARD_MODEL_FILES:
        try:
            return Path(f).read_bytes().rstrip(b"\0").decode(errors="replace").strip()
        except OSError:
            continue
    return ""


def profile_for_board(machine: str, model: str) -> str:
    """The shipped profile that models a board, from its CPU architecture and device-tree model string.

    A Jetson and a Raspberry Pi are both aarch64: only the model string tells them apart. An ARM board that is
    neither gets the Pi's profile (a CPU-only ARM board, the closer guess than a Jetson's GPU)."""
    if machine.lower() not in ("aarch64", "arm64", "armv7l"):
        return "x86_generic"
    m = model.lower()
    if "jetson" in m or "tegra" in m:
        if "orin" in m:
            return "jetson_orin_nano"
        if "nano" in m:
            return "jetson_nano_maxn"
        return "jetson_orin_nano"
    return "raspberry_pi_5"


def default_profile_name() -> str:
    """The profile to model this machine with when none is named (``auto``): see :func:`profile_for_board`."""
    return profile_for_board(platform.machine(), board_model())


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a profile by name (config/devices/<name>.yaml), by path, or ``auto`` (:func:`default_profile_name`).

    Raises ProfileError naming the profile and what is wrong (unknown name lists the known ones).
    """
    key = str(name_or_path)
    if key == "auto":
        key = default_profile_name()
    path = Path(key).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = profiles_dir() / f"{key}.yaml"
    if not path.is_file():
        raise ProfileError(f"unknown device profile {key!r}; known: {', '.join(available_profiles()) or 'none'}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"device profile {path} is unreadable: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"device profile {path} is not a mapping")
    names = {f.name: f for f in fields(DeviceProfile)}
    missing = [n for n in names if n not in raw]
    if missing:
        raise ProfileError(f"device profile {path} lacks {', '.join(missing)}")
    try:
        values = {
            "name": str(raw["name"]),
            "description": str(raw["description"]),
            "arch": str(raw["arch"]),
            "cores": int(raw["cores"]),
            "gpu": bool(raw["gpu"]),
            "clock_steps": tuple(float(x) for x in raw["clock_steps"]),
        }
        for n in names:
            if n not in values:
                values[n] = float(raw[n])
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"device profile {path}: {exc}") from None
    return DeviceProfile(**values)
