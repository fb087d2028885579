"""device_monitor_node across processes: sane numeric keys with sources, jtop-style statuses, rate, bad parameters."""

from __future__ import annotations

import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import node_process, probe, read_log, wait_for

from agra_ros.device.keys import DEVICE_KEYS, DEVICE_STATUS_NAME, DeviceState
from agra_ros.ros.diagnostics import array_to_dicts

pytestmark = pytest.mark.ros


class DiagRecorder:
    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.msgs: list[tuple[float, DiagnosticArray]] = []
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.sub = node.create_subscription(DiagnosticArray, "/diagnostics", self._cb, qos)

    def _cb(self, msg: DiagnosticArray) -> None:
        if any(s.name == DEVICE_STATUS_NAME for s in msg.status):
            with self.lock:
                self.msgs.append((time.monotonic(), msg))


def test_diagnostics_carry_sane_values_and_name_their_source(tmp_path):
    params = {"rate_hz": 5.0, "device_profile": "jetson_nano_maxn", "backends": "auto"}
    with node_process("device_monitor", params, tmp_path) as proc, probe("dm_probe") as pr:
        rec = DiagRecorder(pr.node)
        assert wait_for(lambda: len(rec.msgs) >= 12, 30), "no device diagnostics:\n" + read_log(proc)
        with rec.lock:
            times = [t for t, _ in rec.msgs]
            last = rec.msgs[-1][1]
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert 3.5 <= rate <= 6.5, f"expected ~5 Hz, got {rate:.1f}"
        statuses = array_to_dicts(last)
        kv = statuses[DEVICE_STATUS_NAME]
        for k in DEVICE_KEYS:
            assert k in kv and kv[f"{k}.source"], f"missing {k} or its source in {kv}"
        state = DeviceState.from_key_values(kv)
        assert 0.0 <= state.cpu_util <= 1.0
        assert 1.5 - 1e-6 <= state.power_w <= 10.0 + 1e-6  # the MAXN profile's idle..max when modelled
        assert 15.0 <= state.temp_c <= 110.0 and state.cores_available >= 1
        assert kv["power_w.source"] in ("model:jetson_nano_maxn", "sysfs:rapl", "nvml", "jtop")
        assert kv["device_profile"] == "jetson_nano_maxn"
        assert "jetson_stats temp" in statuses and "jetson_stats power" in statuses
        assert "Current Power" in statuses["jetson_stats power"]
        assert any(name.startswith("jetson_stats cpu ") for name in statuses)
        assert "device backends in use" in read_log(proc)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"device_profile": "no_such_board"}, "unknown device profile 'no_such_board'"),
        ({"backends": "psutil,lidar"}, "unknown device backend"),
    ],
)
def test_bad_startup_parameters_are_clear_errors(tmp_path, params, expected):
    with node_process("device_monitor", params, tmp_path) as proc:
        proc.wait(timeout=30)
        assert proc.returncode == 2
        assert expected in read_log(proc)
