"""Remote execution over real DDS on a real link: the robot's graph (camera_source, perception, a command probe) in
one network namespace, perception_server in another, joined by a veth pair; the link then degraded with tc
(2 Mbit/s) and nftables (20 % random loss), restored, and the server killed.

Asserts: on the good link the commanded remote frames run on the server and the robot's energy per frame drops
against local full; within 3 s of the degraded link's first failure (a frame lost or answered later than the
frame budget: until then the link still carries the commanded frames in time) and of the server dying, the robot is
back on local, frames keep coming and every miss has its cause; no node dies. (When the policy chooses,
test_remote_policy_netns times it from the moment the link degrades.) The measured figures are printed (pytest -s shows them).

Needs root (network namespaces, veth, tc, nftables); skips with the reason where any of them cannot be made.
Everything it makes (namespaces, the veth pair, qdiscs, nftables tables, processes) is removed at the end, failed
or not. DDS: UDPv4 only (shared memory would bypass the link: both namespaces see one /dev/shm), discovery range
SUBNET plus static peers, lo up in each namespace.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agra_ros.device.profiles import load_profile

ROOT = Path(__file__).resolve().parent.parent
TARGET_FPS = float(os.environ.get("AGRA_REMOTE_TEST_FPS", "5"))
"""Frame budget 200 ms: the default deadline is 300 ms."""
DETECTOR = os.environ.get("AGRA_REMOTE_TEST_DETECTOR", "synthetic")
"""synthetic (fast start-up) in the suite; AGRA_REMOTE_TEST_DETECTOR=ssd measures the shipped detector."""
WIDTH, HEIGHT = (int(v) for v in os.environ.get("AGRA_REMOTE_TEST_SIZE", "320x240").split("x"))
BACK_TO_LOCAL_S = 3.0
P_IDLE_W = load_profile("x86_generic").p_idle_w
"""perception's default device profile: the idle power its system energy per frame includes."""

pytestmark = pytest.mark.slow


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def _ns(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def link():
    """Two namespaces (robot, server) joined by a veth pair, addresses 10.231.<n>.1 and .2; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found (nftables: apt-get install nftables)")
    tag = f"{os.getpid() % 100000}"
    robot, server = f"agra_r{tag}", f"agra_s{tag}"
    v_robot, v_server = f"agr{tag}r", f"agr{tag}s"
    subnet = f"10.231.{os.getpid() % 250}"
    made: list[str] = []
    try:
        for ns in (robot, server):
            res = _ip("netns", "add", ns, check=False)
            if res.returncode != 0:
                pytest.skip(f"cannot make a network namespace: {res.stderr.strip()}")
            made.append(ns)
        res = _ip("link", "add", v_robot, "type", "veth", "peer", "name", v_server, check=False)
        if res.returncode != 0:
            pytest.skip(f"cannot make a veth pair: {res.stderr.strip()}")
        for ns, dev, host in ((robot, v_robot, 1), (server, v_server, 2)):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{subnet}.{host}/24", "dev", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery multicast over the veth
        yield {
            "robot": robot,
            "server": server,
            "dev": {robot: v_robot, server: v_server},
            "ip": {robot: f"{subnet}.1", server: f"{subnet}.2"},
        }
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)  # takes the veth pair, its qdiscs and nftables tables with it


def degrade(link: dict) -> None:
    """2 Mbit/s (tbf; this kernel has no netem) and 20 % random loss (nftables), both directions."""
    for ns, dev in link["dev"].items():
        _ns(ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "2mbit", "burst", "32kbit", "latency", "400ms")
        rules = (
            "add table inet agra_loss\n"
            "add chain inet agra_loss out { type filter hook output priority 0 ; }\n"
            f'add rule inet agra_loss out oifname "{dev}" numgen random mod 100 < 20 drop\n'
        )
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True, timeout=20)


def restore(link: dict) -> None:
    for ns, dev in link["dev"].items():
        _ns(ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
        _ns(ns, "nft", "delete", "table", "inet", "agra_loss", check=False)


def _env(link: dict, ns: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_PROFILES_FILE")}
    peer = link["ip"][link["server"] if ns == link["robot"] else link["robot"]]
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET",
        ROS_STATIC_PEERS=peer,
        FASTDDS_BUILTIN_TRANSPORTS="UDPv4",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class Graph:
    """The test's processes, each logging to its own file; ``ns`` None runs one here (this machine's loopback,
    the test's own ROS environment) instead of in a namespace of ``link``."""

    def __init__(self, link: dict | None, logs: Path) -> None:
        self.link, self.logs, self.procs = link, logs, {}

    def start(self, name: str, ns: str | None, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        prefix = ["ip", "netns", "exec", ns] if ns else []
        env = _env(self.link, ns) if ns else {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [*prefix, sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        self.procs[name] = proc
        return proc

    def node(self, name: str, ns: str | None, module: str, **params) -> subprocess.Popen:
        args = ["-m", f"agra_ros.nodes.{module}", "--ros-args"]
        for k, v in params.items():
            args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
        return self.start(name, ns, args)

    def stop(self) -> dict[str, int | None]:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        codes = {}
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait(timeout=5)
        return codes

    def tail(self) -> str:
        return "\n".join(
            f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:])
            for f in sorted(self.logs.glob("*.log"))
        )


def assert_alive(g: Graph, names) -> None:
    for name in names:
        assert g.procs[name].poll() is None, f"{name} died\n" + g.tail()


def close(g: Graph, link: dict, title: str, report: dict) -> dict[str, int | None]:
    """Print the figures, restore the link, stop every process; their exit codes."""
    print(f"{title}:", json.dumps(report, default=str))
    restore(link)
    codes = g.stop()
    print("exit codes:", codes)
    return codes


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "catalogue" not in r:
            out.append(r)
    return out


def wait_rows(path: Path, cond, timeout: float) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = rows(path)
        if cond(r):
            return r
        time.sleep(0.2)
    return rows(path)


def mean(values) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else math.nan


def robot_dynamic_j(frames: list[dict]) -> float:
    """The robot's own joules per frame beyond idle: (power - P_idle) / FPS, from the feedback's power (the
    graph's process CPU and the radio included: power_counts_processes)."""
    return mean((x["power_w"] - P_IDLE_W) / x["fps"] for x in frames if x["fps"] and x["fps"] > 0)


def attainment(frames: list[dict], target_fps: float = TARGET_FPS) -> float:
    """Share of frames whose achieved FPS met the target (>= 0.95 x target: the one rule everywhere)."""
    return sum(bool(x["fps"]) and x["fps"] >= 0.95 * target_fps for x in frames) / max(1, len(frames))


def test_remote_execution_over_a_degrading_link(link, tmp_path):
    g = Graph(link, tmp_path)
    out, control = tmp_path / "feedback.jsonl", tmp_path / "command"
    control.write_text("full-local")
    robot, server = link["robot"], link["server"]
    report: dict[str, object] = {}
    try:
        g.node("server", server, "perception_server", server_id="edge1", detector=DETECTOR)
        g.node(
            "camera",
            robot,
            "camera_source",
            source="synthetic",
            fps=2 * TARGET_FPS,
            width=WIDTH,
            height=HEIGHT,
            trace="''",
            reliability="reliable",
        )
        g.node(
            "perception", robot, "perception", detector=DETECTOR, reliability="reliable", shadow_share=0.2,
            power_counts_processes=True, remote_probe_period_s=0.0,  # the baseline is a robot without a server
        )  # fmt: skip
        g.start("probe", robot, [str(ROOT / "test" / "remote_probe.py"), str(out), str(TARGET_FPS), str(control)])

        # local full: the baseline
        got = wait_rows(out, lambda r: sum(x["target"] == 0 and x["decision"] > 0 for x in r) >= 15, 120)
        assert sum(x["target"] == 0 and x["decision"] > 0 for x in got) >= 15, "no local frames\n" + g.tail()
        t_local = time.monotonic()
        time.sleep(4.0)
        local = [x for x in rows(out) if x["t"] >= t_local and x["target"] == 0 and x["decision"] > 0]

        # good link, commanded remote: the server runs the frames
        control.write_text("full-remote")
        t_remote = time.monotonic()
        got = wait_rows(out, lambda r: sum(x["t"] > t_remote and x["target"] == 1 for x in r) >= 20, 40)
        remote = [x for x in got if x["t"] > t_remote + 2.0]
        remote_ran = [x for x in remote if x["target"] == 1]
        assert len(remote_ran) >= 10, "the server ran no frames\n" + g.tail()
        assert all(x["remote_server"] == "edge1" for x in remote_ran)
        assert len(remote_ran) >= 0.8 * len(remote), [x["remote_miss"] for x in remote]
        e_local = mean(x["detector_energy_per_frame_j"] for x in local)
        e_remote = mean(x["detector_energy_per_frame_j"] for x in remote_ran)
        report.update(
            local_frames=len(local),
            local_detector_j=e_local,
            local_system_j=mean(x["system_energy_per_frame_j"] for x in local),
            local_robot_dynamic_j=robot_dynamic_j(local),
            local_fps=mean(x["fps"] for x in local),
            local_attainment=attainment(local),
            energy_source=local[-1]["energy_source"] if local else None,
            remote_frames=len(remote_ran),
            remote_share=len(remote_ran) / len(remote),
            remote_detector_j=e_remote,
            remote_accuracy_proxy=mean(x["accuracy_proxy"] for x in remote_ran),  # the server's shadow: full vs full
            remote_radio_j=mean(x["radio_energy_per_frame_j"] for x in remote_ran),
            remote_system_j=mean(x["system_energy_per_frame_j"] for x in remote_ran),
            remote_robot_dynamic_j=robot_dynamic_j(remote_ran),
            remote_attainment=attainment(remote),
            remote_fps=mean(x["fps"] for x in remote_ran),
            remote_rtt_ms=mean(x["remote_rtt_ms"] for x in remote_ran),
            server_compute_ms=mean(x["server_compute_ms"] for x in remote_ran),
            server_j=mean(x["server_energy_per_frame_j"] for x in remote_ran),
            link_uplink_mbps=remote_ran[-1]["link_uplink_mbps"],
            energy_ratio=e_remote / e_local,
        )
        report["robot_dynamic_ratio"] = report["remote_robot_dynamic_j"] / report["local_robot_dynamic_j"]
        report["system_ratio"] = report["remote_system_j"] / report["local_system_j"]
        assert e_remote < e_local, report

        # the link degrades: back on local within 3 s, frames keep coming, misses by cause
        degrade(link)
        t_bad = time.monotonic()
        time.sleep(7.0)
        bad = [x for x in rows(out) if x["t"] > t_bad]
        first_local = next((x["t"] - t_bad for x in bad if x["target"] == 0), math.inf)
        # commanded remote stays remote while the link still carries every frame in time (2 Mbit/s does; a loss is
        # random: no request lost in the first 3 s happens in about one run in twenty), so the robot's clock starts
        # at the link's first failure: a frame not answered, or answered later than the frame budget
        first_failure = next(
            (x["t"] - t_bad for x in bad if x["target"] == 0 or (x["remote_rtt_ms"] or 0.0) > 1e3 / TARGET_FPS),
            math.inf,
        )
        late = [x for x in bad if x["t"] > t_bad + BACK_TO_LOCAL_S]
        report.update(
            degraded_back_to_local_s=first_local,
            degraded_first_failure_s=first_failure,
            degraded_frames=len(bad),
            degraded_local_share_after_3s=sum(x["target"] == 0 for x in late) / max(1, len(late)),
            degraded_fps_after_3s=len(late) / (7.0 - BACK_TO_LOCAL_S),
            degraded_misses={c: sum(x["remote_miss"] == c for x in bad) for c in ("timeout", "link_down", "no_server")},
            degraded_link_loss=bad[-1]["link_loss"] if bad else None,
            # the goal "bad link: no worse than local only": energy per frame and attainment once back on local
            degraded_system_j=mean(x["system_energy_per_frame_j"] for x in late),
            degraded_robot_dynamic_j=robot_dynamic_j(late),
            degraded_attainment=attainment(late),
        )
        report["degraded_system_ratio"] = report["degraded_system_j"] / report["local_system_j"]
        report["degraded_dynamic_ratio"] = report["degraded_robot_dynamic_j"] / report["local_robot_dynamic_j"]
        assert first_local - first_failure <= BACK_TO_LOCAL_S, report
        assert len(late) >= 0.5 * TARGET_FPS * (7.0 - BACK_TO_LOCAL_S), report
        assert all(x["remote_miss"] for x in bad if x["target"] == 0), "a local frame without its cause"

        # the link recovers: the probe frames find the server again
        restore(link)
        t_ok = time.monotonic()
        got = wait_rows(out, lambda r: any(x["t"] > t_ok and x["target"] == 1 for x in r), 15)
        report["recovered_to_remote_s"] = next((x["t"] - t_ok for x in got if x["t"] > t_ok and x["target"] == 1), None)

        # the server dies
        g.procs["server"].kill()
        g.procs["server"].wait(timeout=10)
        t_dead = time.monotonic()
        time.sleep(6.0)
        dead = [x for x in rows(out) if x["t"] > t_dead]
        report.update(
            killed_back_to_local_s=next((x["t"] - t_dead for x in dead if x["target"] == 0), math.inf),
            killed_frames=len(dead),
            killed_misses={c: sum(x["remote_miss"] == c for x in dead) for c in ("timeout", "link_down", "no_server")},
        )
        assert report["killed_back_to_local_s"] <= BACK_TO_LOCAL_S, report
        assert sum(x["t"] > t_dead + BACK_TO_LOCAL_S for x in dead) >= 0.5 * TARGET_FPS * 3, report
        assert all(x["remote_miss"] for x in dead if x["target"] == 0)
        catalogues = [json.loads(line) for line in out.read_text().splitlines() if '"catalogue"' in line]
        report["catalogue_targets"] = [(round(c["t"] - t_local, 1), c["catalogue"]) for c in catalogues]
        assert any("remote" in c["catalogue"] for c in catalogues), "the catalogue never offered remote"
        assert catalogues[-1]["catalogue"] == ["local"], "remote still offered with the server dead"
        assert_alive(g, ("camera", "perception", "probe"))
    finally:
        codes = close(g, link, "remote over veth", report)
    assert codes["perception"] == 0 and codes["camera"] == 0, codes
