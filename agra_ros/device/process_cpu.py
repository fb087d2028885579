"""CPU time the robot's own graph spends on this machine, per second: the busy time the power model charges when
the robot's power should count everything its graph runs, not only the detector's thread.

Why: the detector's busy time (what perception's energy accounting reads per frame) leaves out the rest of what
the robot pays for perception and its policy: image conversion, DDS, the policy's forward passes, the learner
process. Offloading removes the detector's work but not that; counting the processes shows how much a frame sent
to a server really saves.

Which processes: this process (perception) and its children, and every process on this machine that runs one of
:data:`GRAPH_NODES` (``agra_ros.nodes.<name>`` or its ``<name>_node`` entry point), with their children (the
policy's learner). Never a perception server: its energy is reported beside the robot's, never inside it. Only
processes of this robot's graph: the same ``ROS_DOMAIN_ID`` and the same network namespace as this process (a
process whose environment cannot be read counts). Several robots' graphs on one machine, in one domain and one
network namespace, are counted together (one robot per machine is what this models). Needs psutil;
:meth:`ProcessCpu.sample` returns None where it cannot measure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

__all__ = ["GRAPH_NODES", "ProcessCpu", "graph_of", "runs_graph_node", "same_graph"]

GRAPH_NODES = ("perception", "policy")
"""The robot's graph processes besides this one (their children, e.g. the learner, come with them)."""
RESCAN_S = 10.0
"""How often the process list is read again (a node started later is found within this long)."""


def graph_of(pid: int | str, environ: dict[str, str] | None) -> tuple[str, str]:
    """(ROS domain, network namespace) a process belongs to; "?" where it cannot be read (then it matches any)."""
    domain = "?" if environ is None else environ.get("ROS_DOMAIN_ID", "").strip() or "0"
    try:
        netns = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        netns = "?"
    return domain, netns


def same_graph(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return all(x == y or "?" in (x, y) for x, y in zip(a, b))


def runs_graph_node(cmdline: Iterable[str], nodes: Iterable[str] = GRAPH_NODES) -> bool:
    """Whether a command line runs one of ``nodes`` (``python -m agra_ros.nodes.policy``, ``.../policy_node``)."""
    wanted = set(nodes)
    for token in cmdline:
        if token.startswith("agra_ros.nodes.") and token.removeprefix("agra_ros.nodes.") in wanted:
            return True
        base = os.path.basename(token)
        if base.endswith("_node") and base.removesuffix("_node") in wanted:
            return True
    return False


class ProcessCpu:
    """CPU seconds per second (user + system) of the robot's graph processes, over the window since the last
    :meth:`sample`; see the module docstring."""

    def __init__(self, nodes: Iterable[str] = GRAPH_NODES, clock: Callable[[], float] = time.monotonic) -> None:
        try:
            import psutil
        except ImportError:
            psutil = None
        self._psutil = psutil
        self.nodes = tuple(nodes)
        self.clock = clock
        self._procs: dict[int, object] = {}
        self._last_scan = -float("inf")
        self._last: tuple[float, dict[int, float]] | None = None
        self.pids: list[int] = []
        """The processes counted in the last sample."""

    @property
    def available(self) -> bool:
        return self._psutil is not None

    def _scan(self) -> None:
        ps = self._psutil
        roots = [ps.Process()]
        mine = graph_of("self", dict(os.environ))
        for proc in ps.process_iter(["pid", "cmdline"]):
            try:
                cmd = proc.info.get("cmdline") or []
                if proc.pid == roots[0].pid or not runs_graph_node(cmd, self.nodes):
                    continue
                try:
                    environ = proc.environ()
                except ps.AccessDenied:
                    environ = None
                if same_graph(graph_of(proc.pid, environ), mine):  # another robot's graph is not this one's
                    roots.append(proc)
            except ps.Error:
                continue
        procs: dict[int, object] = {}
        for root in roots:
            try:
                for p in (root, *root.children(recursive=True)):
                    procs.setdefault(p.pid, self._procs.get(p.pid, p))  # keep known objects: psutil checks pid reuse
            except ps.Error:
                continue
        self._procs = procs

    def _times(self) -> dict[int, float]:
        out = {}
        for pid, p in list(self._procs.items()):
            try:
                t = p.cpu_times()
                out[pid] = t.user + t.system
            except self._psutil.Error:
                self._procs.pop(pid, None)
        return out

    def sample(self) -> float | None:
        """CPU seconds per second since the previous call (None on the first call, without psutil, or over an
        empty window). A process found since the previous call counts from its first sample on."""
        if self._psutil is None:
            return None
        now = self.clock()
        if now - self._last_scan >= RESCAN_S:
            self._scan()
            self._last_scan = now
        times = self._times()
        last, self._last = self._last, (now, times)
        if last is None or now <= last[0]:
            return None
        t0, before = last
        common = [pid for pid in times if pid in before]
        self.pids = sorted(common)
        used = sum(max(0.0, times[pid] - before[pid]) for pid in common)
        return used / (now - t0)
