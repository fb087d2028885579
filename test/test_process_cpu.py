"""The robot's graph CPU as power-model busy time (agra_ros.device.process_cpu, EnergyMeter.power_w): which
processes count, the rate over a window, and that the power is unchanged while nothing is measured."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from agra_ros.device.process_cpu import ProcessCpu, graph_of, runs_graph_node, same_graph
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


def test_only_this_robots_graph_counts_another_domain_or_network_namespace_does_not():
    """A soak or a second robot on another ROS domain (or in another network namespace) is not this robot's power:
    a soak's graph beside a netns test once made offloading read 1.1x local."""
    import os

    mine = graph_of("self", {"ROS_DOMAIN_ID": "7"})
    assert mine[1].startswith("net:")
    assert same_graph(mine, graph_of(os.getpid(), {"ROS_DOMAIN_ID": "7"}))
    assert not same_graph(mine, graph_of(os.getpid(), {"ROS_DOMAIN_ID": "8"}))
    assert not same_graph(mine, ("7", "net:[1]"))
    assert same_graph(("0", "?"), graph_of("self", {}))  # no ROS_DOMAIN_ID is domain 0; unreadable matches
    assert same_graph(mine, graph_of(os.getpid(), None))  # an environment it cannot read: counted
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    pids = {d: _orphan_graph_node(d) for d in (domain, str((int(domain) + 1) % 200))}  # not this test's children
    try:
        cpu = ProcessCpu()
        cpu._scan()
        assert pids[domain] in cpu._procs  # this robot's domain: counted
        assert pids[str((int(domain) + 1) % 200)] not in cpu._procs  # another domain: another robot's
    finally:
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)


def _orphan_graph_node(domain: str) -> int:
    """A process whose command line names agra_ros.nodes.policy, in ROS domain ``domain``, that is no child of
    this one (children count whatever their domain, as the learner does)."""
    line = f'ROS_DOMAIN_ID={domain} {sys.executable} -c "import time; time.sleep(30)" agra_ros.nodes.policy'
    out = subprocess.run(["sh", "-c", f"{line} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, timeout=10)
    pid = int(out.stdout.strip())
    end = time.monotonic() + 20.0
    while time.monotonic() < end:  # until the shell's fork has become the python process
        try:
            if "agra_ros.nodes.policy" in psutil.Process(pid).cmdline():
                return pid
        except psutil.Error:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never ran python")
