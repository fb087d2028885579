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
    name: str, params_file: Path | None = None, overrides: Mapping[str, Any] | None = None, module: str | None = None
) -> list[str]:
    """The command line that runs node ``name`` (module ``agra_ros.nodes.<module or name>``)."""
    cmd = [sys.executable, "-m", f"agra_ros.nodes.{module or name}", "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for k, v in (overrides or {}).items():
        cmd += ["-p", f"{k}:={_ros_value(v)}"]
    return cmd


class Supervisor:
    """Starts node processes and keeps watch; one dying stops the rest."""

    def __init__(self, log_dir: Path | None = None, domain_id: int | None = None, quiet: bool = False) -> None:
        self.procs: list[NodeProcess] = []
        self.env = ros_environment(domain_id)
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


def launch(
    nodes: Sequence[str] = GRAPH,
    params_file: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    duration: float | None = None,
    log_dir: Path | None = None,
    domain_id: int | None = None,
) -> int:
    """Run the graph; see :class:`Supervisor`. ``overrides`` maps node name -> {parameter: value}."""
    params_file = params_file or config_file("agra.yaml")
    sup = Supervisor(log_dir=log_dir, domain_id=domain_id)
    for name in nodes:
        sup.start(name, node_command(name, params_file, (overrides or {}).get(name)))
    return sup.run(duration)
