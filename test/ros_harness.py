"""Helpers for cross-process ROS tests: start node processes, spin a probe node, wait for conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


def _ros_arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


@contextmanager
def node_process(
    module: str,
    params: dict[str, Any] | None = None,
    log_dir: Path | None = None,
    name: str = "",
    ros_args: tuple[str, ...] = (),
):
    """Run ``python -m agra_ros.nodes.<module>`` with parameters; stop it with SIGINT (then SIGKILL) at the end.

    ``ros_args`` go first after ``--ros-args`` (e.g. ``("-r", "__ns:=/robot1", "--params-file", path)``); the
    ``params`` follow and so override a params file."""
    cmd = [sys.executable, "-m", f"agra_ros.nodes.{module}", "--ros-args", *ros_args]
    for k, v in (params or {}).items():
        cmd += ["-p", f"{k}:={_ros_arg(v)}"]
    log_path = (log_dir or Path("/tmp")) / f"{name or module}-{os.getpid()}-{time.monotonic_ns()}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    proc.log_path = log_path  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT, as Ctrl-C (a ROS node shuts down cleanly), then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def read_log(proc) -> str:
    return Path(proc.log_path).read_text(errors="replace")


class Probe:
    """A node in the test process, spun by a background executor on its own context."""

    def __init__(self, name: str = "probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # context shut down during spin
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


@contextmanager
def probe(name: str = "probe"):
    p = Probe(name)
    try:
        yield p
    finally:
        p.close()


def wait_for(cond: Callable[[], bool], timeout: float, period: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(period)
    return cond()


@contextmanager
def read_only_dir(path: Path):
    """Make ``path`` a folder in which no entry can be created, renamed or removed, even by root (tests run as root
    in some containers, where chmod does not stop anything): ``chattr +i`` as root, ``chmod 555`` otherwise.
    Skips the test where neither works."""
    import pytest

    path = Path(path)
    if os.geteuid() == 0:
        res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot make {path} read-only as root: {res.stderr.strip()}")
        undo = ["chattr", "-i", str(path)]
    else:
        mode = path.stat().st_mode
        path.chmod(0o555)
        undo = None
    try:
        probe_file = path / ".write-probe"
        try:
            probe_file.touch()
        except OSError:
            pass
        else:
            probe_file.unlink()
            pytest.skip(f"{path} is still writable")
        yield path
    finally:
        if undo:
            subprocess.run(undo, check=False)
        else:
            path.chmod(mode)
