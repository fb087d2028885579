"""The robot's graph CPU as power-model busy time (agra_ros.device.process_cpu, EnergyMeter.power_w): which
processes count, the rate over a window, and that the power is unchanged while nothing is measured."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from agra_ros.device.process_cpu import ProcessCpu, runs_graph_node
from agra_ros.perception.energy import make_energy_meter


@pytest.mark.parametrize(
    ("cmdline", "counted"),
    [
        (["python3", "-m", "agra_ros.nodes.policy", "--ros-args"], True),
        (["/opt/ws/lib/agra_ros/perception_node", "--ros-args"], True),
        (["python3", "-m", "agra_ros.nodes.perception_server"], False),  # the server's energy is never the robot's
        (["/opt/ws/lib/agra_ros/perception_server_node"], False),
        (["python3", "-m", "agra_ros.nodes.camera_source"], False),
        ([], False),
    ],
)
def test_which_command_lines_are_the_robots_graph(cmdline, counted):
    assert runs_graph_node(cmdline) is counted


def test_the_rate_counts_this_process_and_its_children():
    import psutil

    cpu = ProcessCpu()
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a busy child (as the learner is)
    try:
        time.sleep(0.2)
        assert cpu.available and cpu.sample() is None  # the first sample only starts the window
        t0 = sum(psutil.Process(child.pid).cpu_times()[:2])
        time.sleep(1.0)
        t1 = sum(psutil.Process(child.pid).cpu_times()[:2])
        rate = cpu.sample()
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.pid in cpu.pids
    assert rate is not None and rate >= 0.9 * (t1 - t0) / 1.2 > 0, (rate, t1 - t0)  # the child's share at least


def test_power_counts_the_graph_cpu_beyond_the_frames_own_busy_time():
    meter = make_energy_meter("x86_generic")
    base = meter.power_w(0.05, 10.0, busy_s=0.02)
    assert meter.power_source == meter.source  # not measured: the power is the frames' own
    meter.process_cpu_s_per_s = 0.2  # the frames' own busy time: 0.02 s x 10 FPS, nothing beyond it
    assert meter.power_w(0.05, 10.0, busy_s=0.02) == pytest.approx(base)
    meter.process_cpu_s_per_s = 0.7  # 0.5 s per second beyond the frames: charged as busy time
    extra_w = meter.model.detector_energy_per_frame_j(0.05) * 10.0
    assert meter.power_w(0.05, 10.0, busy_s=0.02) == pytest.approx(min(base + extra_w, meter.model.profile.p_max_w))
    assert meter.power_source.endswith("+process_cpu")
