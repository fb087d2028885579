"""`agra-ros launch` for pip users: every node in its own process from the same config/agra.yaml.

ros2 launch (launch/agra.launch.py) does the same for ROS distro users; launch and launch_ros are not on PyPI,
so this small supervisor replaces them: it starts the processes with the project's DDS environment, forwards
Ctrl-C, stops everything when one node dies, and returns non-zero in that case.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agra_ros.paths import config_file
from agra_ros.runtime_env import ros_environment

log = logging.getLogger("agra_ros.launch")

GRAPH: tuple[str, ...] = ("camera_source", "device_monitor", "perception", "policy")
"""Nodes of the full graph, in start order (the ROS node name equals the module name under agra_ros.nodes)."""


CAMERAS = ("synthetic", "video", "none")
ARGUMENTS = (
    (
        "camera",
        "video",
        "video | synthetic | none (video: real clips, the synthetic scene where none are fetched; none: the robot's own camera driver publishes image_topic)",
    ),
    ("image_topic", "image_raw", "image topic perception subscribes to (camera_source publishes on it)"),
    ("namespace", "", "ROS namespace of every node (/diagnostics stays global)"),
    ("device_profile", "auto", "device profile (config/devices) of modelled power/heat; auto: by CPU architecture"),
    ("algorithm", "agra", "agra | a2c | bandit | rule | static"),
    ("target_fps", "", "policy target FPS, which then wins over the trace's; empty: config/agra.yaml's, trace-driven"),
    (
        "trace",
        "auto",
        "workload trace of the camera (config/traces); auto: video for camera video, default for synthetic; empty: none",
    ),
    (
        "localhost_only",
        "false",
        "true: DDS on this host only, with the project's Fast DDS profile; false: DDS as the shell set it",
    ),
    ("view", "false", "true: also start the viewer node (the Foxglove WebSocket of agra-ros view, port 8765)"),
    (
        "record",
        "false",
        "true: record the graph's topics (rosbag2, MCAP) into runs/recordings/agra_<date>_<time>; or a folder path "
        "for the recording (it must not exist); 'agra-ros report <folder>' makes its table and plot",
    ),
)
FALSE = ("false", "0", "no", "off", "")
TRUE = ("true", "1", "yes", "on")


def camera_trace(camera: str, trace: str) -> str:
    """The trace a camera plays: ``auto`` is the demo's, ``video`` for real clips and ``default`` for the scene."""
    if trace.strip().lower() != "auto":
        return trace
    return "video" if camera == "video" else "default"


def graph_spec(arg: dict[str, str]) -> tuple[bool, list[tuple[str, dict, list[tuple[str, str]]]]]:
    """For the launch arguments' values: (localhost_only, [(node, parameter overrides, remappings), ...])."""
    arg = {name: str(arg.get(name, default)).strip() for name, default, _ in ARGUMENTS}
    camera = arg["camera"].lower()
    if camera not in CAMERAS:
        raise ValueError(f"camera:={arg['camera']} is not one of {' | '.join(CAMERAS)}")
    overrides = {
        "camera_source": {"source": camera, "trace": camera_trace(camera, arg["trace"])},
        "device_monitor": {"device_profile": arg["device_profile"]},
        "perception": {"device_profile": arg["device_profile"]},
        "policy": {"algorithm": arg["algorithm"], "device_profile": arg["device_profile"]},
    }
    if arg["target_fps"]:
        try:
            overrides["policy"]["target_fps"] = float(arg["target_fps"])
        except ValueError:
            raise ValueError(f"target_fps:={arg['target_fps']} is not a number") from None
        overrides["policy"]["follow_trace"] = False  # the user's target wins over the trace's
    remap = [("image_raw", arg["image_topic"])] if arg["image_topic"] not in ("", "image_raw") else []
    spec = [
        (name, overrides[name], remap if name != "device_monitor" else [])
        for name in GRAPH
        if not (name == "camera_source" and camera == "none")
    ]
    if arg["view"].lower() in TRUE:
        spec.append(("viewer", {}, remap if remap else []))
    record = arg["record"]
    if record.lower() not in FALSE:
        spec.append(("recorder", {"out": "" if record.lower() in TRUE else record}, []))
    return arg["localhost_only"].lower() in TRUE, spec


@dataclass
class NodeProcess:
    name: str
    args: list[str]
    popen: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ros_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else "''"
    return repr(v)


def node_command(
    name: str,
    params_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    module: str | None = None,
    ros_args: Sequence[str] = (),
) -> list[str]:
    """The command line that runs node ``name`` (module ``agra_ros.nodes.<module or name>``); ``ros_args`` (e.g.
    remappings ``-r a:=b``) go before the parameters."""
    cmd = [sys.executable, "-m", f"agra_ros.nodes.{module or name}", "--ros-args", *ros_args]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for k, v in (overrides or {}).items():
        cmd += ["-p", f"{k}:={_ros_value(v)}"]
    return cmd


class Supervisor:
    """Starts node processes and keeps watch; one dying stops the rest."""

    def __init__(
        self,
        log_dir: Path | None = None,
        domain_id: int | None = None,
        quiet: bool = False,
        localhost_only: bool = True,
    ) -> None:
        self.procs: list[NodeProcess] = []
        self.env = ros_environment(domain_id, localhost_only=localhost_only)
        self.log_dir = log_dir
        self.quiet = quiet
        self.failed: str | None = None

    def start(self, name: str, cmd: list[str], foreground: bool = False) -> NodeProcess:
        """Start one process; its output goes to a log file (or the terminal when ``foreground``)."""
        np_ = NodeProcess(name, cmd)
        out = None
        if not foreground and (self.log_dir is not None or self.quiet):
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                np_.log_path = self.log_dir / f"{name}.log"
                out = open(np_.log_path, "w")
            else:
                out = subprocess.DEVNULL
        np_.popen = subprocess.Popen(
            cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT if out is not None else None, start_new_session=True
        )
        self.procs.append(np_)
        log.info("started %s (pid %d)", name, np_.popen.pid)
        return np_

    def poll(self) -> str | None:
        """Name of the first process that has exited, if any."""
        for p in self.procs:
            if p.popen is not None and p.popen.poll() is not None:
                return p.name
        return None

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGINT everything still running (reverse start order), wait, then SIGKILL stragglers."""
        for p in reversed(self.procs):
            if p.popen is not None and p.popen.poll() is None:
                p.popen.send_signal(signal.SIGINT)
        end = time.monotonic() + timeout
        codes = {}
        for p in self.procs:
            assert p.popen is not None
            try:
                codes[p.name] = p.popen.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", p.name, timeout)
                p.popen.kill()
                codes[p.name] = p.popen.wait()
        return codes

    def run(self, duration: float | None = None, watch: str | None = None) -> int:
        """Wait until ``duration`` passes, Ctrl-C, the ``watch`` process ends, or a node dies; then stop all.

        Returns 0 on a clean end and 1 when a node died on its own.
        """
        t_end = None if duration is None else time.monotonic() + duration
        interrupted = False
        try:
            while t_end is None or time.monotonic() < t_end:
                dead = self.poll()
                if dead is not None:
                    p = next(x for x in self.procs if x.name == dead)
                    code = p.popen.returncode if p.popen else None
                    if dead == watch and code == 0:
                        break
                    self.failed = dead
                    where = f" (log: {p.log_path})" if p.log_path else ""
                    log.error("node %s exited with code %s: stopping the graph%s", dead, code, where)
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:
            interrupted = True
            log.info("Ctrl-C: stopping all nodes")
        codes = self.stop()
        if self.failed:
            return 1
        bad = {n: c for n, c in codes.items() if c not in (0, -signal.SIGINT, 130)}
        if bad and not interrupted:
            log.warning("nodes ended with non-zero codes: %s", bad)
        return 0


def parse_launch_arguments(items: Sequence[str]) -> dict[str, str]:
    """``name:=value`` words (as ``ros2 launch`` takes them) -> {name: value}; unknown names are a ValueError."""
    known = {name for name, _, _ in ARGUMENTS}
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep:
            raise ValueError(f"{item!r} is not name:=value")
        if name not in known:
            raise ValueError(f"unknown launch argument {name!r}; known: {', '.join(sorted(known))}")
        out[name] = value
    return out


def launch(
    arguments: Mapping[str, str] | None = None,
    nodes: Sequence[str] | None = None,
    params_file: Path | None = None,
    duration: float | None = None,
    log_dir: Path | None = None,
    domain_id: int | None = None,
) -> int:
    """Run the graph ``ros2 launch agra_ros agra.launch.py`` runs for the same ``arguments`` (:func:`graph_spec`:
    same nodes, parameters, namespace, remappings and DDS set-up); ``nodes`` keeps a subset. See
    :class:`Supervisor`."""
    args = dict(arguments or {})
    localhost_only, spec = graph_spec(args)
    params_file = params_file or config_file("agra.yaml")
    namespace = args.get("namespace", "").strip().strip("/")
    sup = Supervisor(log_dir=log_dir, domain_id=domain_id, localhost_only=localhost_only)
    for name, overrides, remaps in spec:
        if nodes is not None and name not in nodes:
            continue
        ros_args = ["-r", f"__ns:=/{namespace}"] if namespace else []
        for src, dst in remaps:
            ros_args += ["-r", f"{src}:={dst}"]
        sup.start(name, node_command(name, params_file, overrides, ros_args=ros_args))
    return sup.run(duration)
