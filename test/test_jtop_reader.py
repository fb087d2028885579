"""An isaac_ros_jetson_stats jtop node's statuses read into the device state D: unit parsing on the strings that node
prints, total power / voltage / temperature, preference over modelled values, and the policy's device input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agra_ros.device.jtop_compat import jtop_statuses
from agra_ros.device.jtop_reader import JtopInput, Quantity, parse_quantity, read_jtop_statuses
from agra_ros.device.keys import DEVICE_STATUS_NAME
from agra_ros.device.monitors import Sample
from agra_ros.online.device_input import DeviceInputs, parse_device_status


@pytest.mark.parametrize(
    "text, expected",
    [
        ("5.2W", Quantity(5.2, "W")),
        ("850mW", Quantity(0.85, "W")),
        ("850 mW", Quantity(0.85, "W")),
        ("12.3 W", Quantity(12.3, "W")),
        ("1.2kW", Quantity(1200.0, "W")),
        ("4.9V", Quantity(4.9, "V")),
        ("4900mV", Quantity(4.9, "V")),
        ("5080 mV", Quantity(5.08, "V")),
        ("45.50C", Quantity(45.5, "C")),
        ("   45.50C", Quantity(45.5, "C")),  # jtop's "{:8.2f}C"
        ("45.5 °C", Quantity(45.5, "C")),
        ("-5.00C", Quantity(-5.0, "C")),
        ("  12.50%", Quantity(12.5, "%")),
        ("100%", Quantity(100.0, "%")),
        ("5234", Quantity(5234.0, "")),
        ("1.5e3mW", Quantity(1.5, "W")),
    ],
)
def test_parse_quantity_recorded_strings(text, expected):
    got = parse_quantity(text)
    assert got is not None and got.unit == expected.unit and math.isclose(got.value, expected.value), (text, got)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Offline", "nan", "NaNW", "inf", "-infC", "1e999W", "W", "mW", "5m", "5 mC", "5.2Watts", "5.2 W x"],
)
def test_parse_quantity_garbage_is_none(text):
    assert parse_quantity(text) is None


def test_parse_quantity_non_string_is_none():
    assert parse_quantity(None) is None  # type: ignore[arg-type]
    assert parse_quantity(float("nan")) is None  # type: ignore[arg-type]


# statuses as isaac_ros_jetson_stats' ros2_jtop_node prints them on a Jetson Orin Nano (values from its utils:
# mW through unit_to_string with a "W" suffix, the rail voltage in mV printed with the same suffix)
ORIN = [
    ("jetson_stats/board/Status", "NV Power[0] 15W - JC inactive", {"NV Power-ID": "0"}),
    ("jetson_stats/cpu/0", " 12.50%", {"Idle": " 87.50%", "Freq": "1.5GHz"}),
    ("jetson_stats/temp/cpu", "48.41C", {"Warning": "84.00C", "Critical": "100.00C"}),
    ("jetson_stats/temp/gpu", "47.12C", {"Warning": "84.00C", "Critical": "100.00C"}),
    ("jetson_stats/temp/tj", "49.03C", {"Warning": "84.00C", "Critical": "100.00C"}),
    ("jetson_stats/temp/cv0", "Offline", {"Warning": "84.00C", "Critical": "100.00C"}),
    ("jetson_stats/power/VDD_CPU_GPU_CV", "Power: 1.9W - Avg: 1.8W", {"Volt": "5.1W", "Power": "1.9W"}),
    ("jetson_stats/power/VDD_SOC", "Power: 950mW - Avg: 940mW", {"Volt": "5.1W", "Power": "950mW"}),
    ("jetson_stats/power/VDD_IN", "Power: 5.2W - Avg: 4.9W", {"Volt": "5.1W", "Power": "5.2W", "Average": "4.9W"}),
]


def test_orin_statuses_total_rail_voltage_and_junction_temperature():
    r = read_jtop_statuses(ORIN)
    assert r is not None
    assert r.power_w == pytest.approx(5.2) and r.voltage_v == pytest.approx(5.1) and r.temp_c == pytest.approx(49.03)


def test_rails_without_a_total_are_summed_and_temps_take_the_hottest():
    statuses = [s for s in ORIN if not s[0].endswith(("VDD_IN", "/tj"))]
    r = read_jtop_statuses(statuses)
    assert r.power_w == pytest.approx(1.9 + 0.95) and r.voltage_v is None and r.temp_c == pytest.approx(48.41)
    # the power only in the message, a temperature over its warning level
    r = read_jtop_statuses(
        [
            ("jetson_stats/power/ALL", "Power: 7.4W - Avg: 7.0W", {}),
            ("jetson_stats/temp/cpu", "86.00C more than 84.00C", {}),
        ]
    )
    assert r.power_w == pytest.approx(7.4) and r.temp_c == pytest.approx(86.0)


def test_garbage_and_impossible_readings_are_dropped():
    assert read_jtop_statuses([("jetson_stats/power/ALL", "", {"Power": "nanW"})]) is None
    assert read_jtop_statuses([("jetson_stats/temp/cpu", "Offline", {})]) is None
    assert read_jtop_statuses([("perception: status", "ok", {"power_w": "3.0"})]) is None
    r = read_jtop_statuses([("jetson_stats/temp/cpu", "900.00C", {}), ("jetson_stats/power/ALL", "", {"Power": "2W"})])
    assert r.temp_c is None and r.power_w == 2.0


def test_legacy_single_statuses_as_device_monitor_writes_them():
    s = Sample(temps={"CPU": 51.0, "GPU": 49.5}, rails={"VDD_IN": (5234.0, 4900.0), "VDD_CPU": (1200.0, 1100.0)})
    statuses = [(d["name"], d["message"], dict(d["values"])) for d in jtop_statuses(s, "jetson")]
    r = read_jtop_statuses(statuses)
    assert r.power_w == pytest.approx(6.434) and r.temp_c == pytest.approx(51.0)
    # an older jtop node: "{:8.2f}C" per sensor, "curr=...mW" in the message
    r = read_jtop_statuses(
        [("jetson_stats temp", "2 temperatures reads", {"CPU": "   45.50C"}), ("jetson_stats power", "curr=850mW", {})]
    )
    assert r.power_w == pytest.approx(0.85) and r.temp_c == pytest.approx(45.5)


MODELLED = {
    "temp_c": "40",
    "temp_c.source": "model:jetson_orin_nano",
    "power_w": "3.0",
    "power_w.source": "model:jetson_orin_nano",
    "voltage_v": "5.0",
    "voltage_v.source": "model:jetson_orin_nano",
    "cpu_util": "0.5",
    "cpu_util.source": "psutil",
    "power_max_w": "15",
    "voltage_nominal_v": "5.0",
    "cores_total": "6",
    "cores_available": "6",
}


def test_jtop_values_replace_modelled_ones_only_while_fresh():
    j = JtopInput(max_age_s=5.0)
    assert j.update(ORIN, now=100.0)
    kv = j.merge(MODELLED, now=101.0)
    assert (kv["power_w"], kv["temp_c"], kv["voltage_v"]) == ("5.2", "49.03", "5.1")
    assert kv["power_w.source"] == "jtop_node" and kv["cpu_util"] == "0.5"
    assert j.merge(MODELLED, now=106.0) == MODELLED  # stale: the jtop node went silent
    # device_monitor's own sensor (its jtop or NVML backend) is kept
    measured = dict(MODELLED, **{"power_w.source": "nvml"})
    assert j.merge(measured, now=101.0)["power_w"] == "3.0"


def test_device_monitor_copies_in_its_own_array_are_not_an_external_jtop():
    own = [(DEVICE_STATUS_NAME, "", MODELLED), ("jetson_stats power", "curr=9000mW avg=9000mW", {})]
    j = JtopInput()
    assert not j.update(own, now=0.0) and j.fresh(0.0) is None


def test_policy_device_input_prefers_jtop_and_runs_on_jtop_alone():
    inputs = DeviceInputs(monitor_timeout_s=5.0)
    # a jtop node alone (no device_monitor heard): D from its power and temperature
    kvs = inputs.device_key_values(ORIN, now=10.0)
    assert len(kvs) == 1
    reading = parse_device_status(kvs[0])
    assert reading.temp_c == pytest.approx(49.03)
    # device_monitor arrives: its status, with the jtop values laid over the modelled ones
    kvs = inputs.device_key_values([(DEVICE_STATUS_NAME, "", MODELLED)], now=11.0)
    reading = parse_device_status(kvs[0])
    modelled = parse_device_status(MODELLED)
    assert reading.temp_c == pytest.approx(49.03) and modelled.temp_c == pytest.approx(40.0)
    assert reading.vector[1] == pytest.approx(5.2 / 15) and modelled.vector[1] == pytest.approx(3.0 / 15)
    assert np.all(np.isfinite(reading.vector))
    # while device_monitor is heard, a jtop array adds no second state of its own
    assert inputs.device_key_values(ORIN, now=12.0) == []
