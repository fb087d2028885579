"""Device layer without ROS: profiles, power and thermal models, backend merge and degradation, sysfs parsing."""

from __future__ import annotations

import math
import time

import pytest

from agra_ros.device import DeviceState, PowerModel, ProfileError, ThermalModel, available_profiles, load_profile
from agra_ros.device.jtop_compat import jtop_statuses
from agra_ros.device.monitors import Backend, DeviceMonitor, Sample, SysfsBackend, parse_backend_list
from agra_ros.device.profiles import profiles_dir


def test_every_shipped_profile_loads_and_is_sane():
    names = available_profiles()
    assert {"jetson_nano_5w", "jetson_nano_maxn", "jetson_orin_nano", "x86_generic"} <= set(names)
    for n in names:
        p = load_profile(n)
        assert p.name == n and p.p_idle_w < p.p_max_w and p.clock_steps[0] == 1.0
    nano5, maxn = load_profile("jetson_nano_5w"), load_profile("jetson_nano_maxn")
    assert nano5.p_max_w < maxn.p_max_w and nano5.speed < maxn.speed


def test_bad_profiles_are_clear_errors(tmp_path):
    with pytest.raises(ProfileError, match="unknown device profile 'nope'.*x86_generic"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n")
    with pytest.raises(ProfileError, match="lacks"):
        load_profile(bad)
    src = tmp_path / "x.yaml"
    text = (profiles_dir() / "x86_generic.yaml").read_text()
    src.write_text(text.replace("p_idle_w: 8.0", "p_idle_w: 80.0"))
    with pytest.raises(ProfileError, match="p_idle_w < p_max_w"):
        load_profile(src)
    src.write_text(text.replace("clock_steps: [1.0, 0.9", "clock_steps: [1.0, 1.2"))
    with pytest.raises(ProfileError, match="clock_steps"):
        load_profile(src)


def test_power_model_is_linear_and_capped():
    p = load_profile("jetson_nano_5w")
    m = PowerModel(p)
    e = m.detector_energy_per_frame_j(0.1, macs=2e9, bytes=5e6)
    assert e == pytest.approx(p.j_per_busy_s * 0.1 + p.j_per_gmac * 2 + p.j_per_mb * 5)
    assert m.power_w(e, 10) == pytest.approx(min(p.p_idle_w + 10 * e, p.p_max_w))
    assert m.power_w(1.0, 1000) == p.p_max_w
    assert m.utilisation_power_w(0) == p.p_idle_w and m.utilisation_power_w(1) == p.p_max_w


def test_thermal_model_heats_throttles_and_recovers():
    p = load_profile("jetson_nano_5w")
    t = ThermalModel(p)
    for _ in range(200):
        t.advance(p.p_max_w * 3, 10.0)  # far above what it can shed: heats past throttle
    assert t.throttling and t.clock_ratio < 1.0 and t.temperature_c > p.t_throttle_c
    for _ in range(200):
        t.advance(0.0, 10.0)
    assert not t.throttling and t.temperature_c == pytest.approx(p.t_ambient_c, abs=0.5)


def test_device_state_round_trip_and_bad_values():
    s = DeviceState(51.5, 7.5, 4.9, 0.5, 0.25, 0.85, 3, True, 10.0, 5.0, 4, 97.0)
    back = DeviceState.from_key_values(s.to_key_values())
    assert back == s
    v = back.vector()
    assert v == pytest.approx([0.515, 0.75, 0.98, 0.5, 0.25, 0.85, 0.75, 1.0])
    with pytest.raises(ValueError, match="not a finite"):
        DeviceState.from_key_values({"temp_c": "nan"})
    with pytest.raises(ValueError, match="not a number"):
        DeviceState.from_key_values({"power_w": "12W"})
    with pytest.raises(ValueError, match="no device keys"):
        DeviceState.from_key_values({"foo": "1"})


def test_auto_on_this_machine_names_every_source():
    mon = DeviceMonitor(load_profile("x86_generic"))
    time.sleep(0.2)
    s = mon.sample()
    state = mon.state(s)
    assert set(s.values) >= {"power_w", "temp_c", "cpu_util", "cores_available", "clock_ratio", "throttling"}
    assert all(s.sources[k] for k in s.values)
    assert s.sources["power_w"] in ("model:x86_generic", "sysfs:rapl", "nvml", "jtop")
    assert 0.0 <= state.cpu_util <= 1.0 and state.power_w >= load_profile("x86_generic").p_idle_w - 1e-6
    assert all(math.isfinite(x) for x in state.vector())
    names = [st["name"] for st in jtop_statuses(s, "hw")]
    assert "jetson_stats temp" in names and "jetson_stats power" in names and "jetson_stats cpu 1" in names


class _Flaky(Backend):
    name = "psutil"  # pose as a known backend that breaks after its first read

    def __init__(self) -> None:
        self.reads = 0

    def read(self, so_far: Sample) -> Sample:
        self.reads += 1
        if self.reads > 1:
            raise OSError("sensor unplugged")
        s = Sample()
        s.put("power_w", 3.0, "flaky")
        s.put("temp_c", float("nan"), "flaky")  # a glitch: left to the next source
        return s


def test_failing_backend_degrades_to_the_next_with_one_warning():
    logs: list[tuple[str, str]] = []
    mon = DeviceMonitor(load_profile("x86_generic"), backends="model", log=lambda lv, m: logs.append((lv, m)))
    flaky = _Flaky()
    mon.active.insert(0, flaky)
    first = mon.sample()
    assert first.sources["power_w"] == "flaky" and first.sources["temp_c"] == "model:x86_generic"
    for _ in range(3):
        later = mon.sample()
    assert later.sources["power_w"] == "model:x86_generic"
    warns = [m for lv, m in logs if lv == "warn"]
    assert len(warns) == 1 and "sensor unplugged" in warns[0] and "psutil" in mon.failed


def test_backend_list_parsing():
    assert parse_backend_list("auto")[-1] == "model"
    assert parse_backend_list("psutil, model,psutil") == ["psutil", "model"]
    with pytest.raises(ValueError, match="unknown device backend"):
        parse_backend_list("psutil,rapl9")


def _fake_sysfs(root, energy_uj: int) -> None:
    dom = root / "class" / "powercap" / "intel-rapl:0"
    dom.mkdir(parents=True, exist_ok=True)
    (dom / "energy_uj").write_text(str(energy_uj))
    (dom / "max_energy_range_uj").write_text(str(10**9))
    z = root / "class" / "thermal" / "thermal_zone0"
    z.mkdir(parents=True, exist_ok=True)
    (z / "type").write_text("x86_pkg_temp\n")
    (z / "temp").write_text("61500\n")
    (z / "trip_point_0_type").write_text("critical\n")
    (z / "trip_point_0_temp").write_text("105000\n")


def test_sysfs_backend_reads_rapl_power_and_thermal_zones(tmp_path):
    _fake_sysfs(tmp_path, 5_000_000)
    b = SysfsBackend(tmp_path)
    b.open()
    first = b.read(Sample())
    assert "power_w" not in first.values  # RAPL needs two readings
    assert first.values["temp_c"] == 61.5 and first.values["temp_critical_c"] == 105.0
    time.sleep(0.2)
    t0 = b._last_energy[0]
    _fake_sysfs(tmp_path, 7_000_000)  # 2 J later
    second = b.read(Sample())
    dt = b._last_energy[0] - t0
    assert second.values["power_w"] == pytest.approx(2.0 / dt, rel=1e-6)
    assert second.sources["power_w"] == "sysfs:rapl"
    _fake_sysfs(tmp_path, 1_000_000)  # wrapped past max_energy_range_uj
    third = b.read(Sample())
    assert third.values["power_w"] > 0


def test_sysfs_backend_absent_is_unavailable(tmp_path):
    from agra_ros.device.monitors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="no RAPL"):
        SysfsBackend(tmp_path).open()


@pytest.mark.parametrize(
    ("machine", "model", "profile"),
    [
        ("x86_64", "", "x86_generic"),
        ("aarch64", "NVIDIA Jetson Orin Nano Developer Kit", "jetson_orin_nano"),
        ("aarch64", "NVIDIA Jetson Nano Developer Kit", "jetson_nano_maxn"),
        ("aarch64", "Raspberry Pi 5 Model B Rev 1.0", "raspberry_pi_5"),
        ("aarch64", "Raspberry Pi 4 Model B Rev 1.4", "raspberry_pi_5"),
        ("aarch64", "", "raspberry_pi_5"),
    ],
)
def test_auto_profile_tells_a_pi_from_a_jetson(machine, model, profile):
    from agra_ros.device.profiles import load_profile, profile_for_board

    assert profile_for_board(machine, model) == profile
    load_profile(profile)  # every answer is a shipped profile
