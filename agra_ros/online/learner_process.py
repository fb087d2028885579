"""The learner's process: its entry point (:func:`learner_main`) and the node's side, :class:`LearnerSupervisor`.

Why a process: PPO updates are pure Python and torch work that would hold the GIL of the policy node and, on a
2-core robot, steal time from perception (a third of the image rate was lost to a learner thread; see
docs/architecture.md). The
learner runs in a child started with the *spawn* context (no fork of a process that holds DDS threads), at a
lower scheduling priority and one torch thread, so perception keeps the cores it needs. The spawn target is
:func:`learner_main` of this module, which the child imports by name.

Protocol (plain picklable data only, so either side can die without corrupting the other):

- node -> learner, ``experience`` queue: :class:`ExperienceBatch` dicts, consecutive decisions of the acting
  policy with their behaviour log-probabilities and the three reward terms; ``("control", dict)`` with the
  runtime settings ``cpu_budget`` and ``target_missed``; ``None`` asks the learner to stop.
- learner -> node, ``updates`` queue: ``("ready", pid)`` once, then ``("state", LearnerState)`` after every PPO
  update (weights, Lagrange multipliers, EWC state, counters), ``("stats", dict)`` every second (its CPU budget,
  measured CPU share, time throttled, updates deferred while perception missed its target:
  :meth:`agra_ros.online.budget.UpdateGate.stats`), and ``("error", text)`` before dying of an exception.

Within a budget: the learner runs niced, on one torch thread, and asks its
:class:`~agra_ros.online.budget.UpdateGate` before every update, which holds it to ``cpu_budget`` of one core on
average and defers it while perception misses its target.

:class:`LearnerSupervisor` owns the child in the node: it feeds it without ever blocking the caller, collects
new states, notices a dead learner (crash, OOM kill, ``kill -9``), logs it and starts a new one from the last
state it received, with backoff when the learner keeps dying. The node keeps acting with its last weights
throughout.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch

from agra_ros.online.budget import UpdateGate, checked_cpu_budget
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_settings import LearnerSettings, LearnerState
from agra_ros.policy.gpn import GPNSpec

_NOTHING = object()
STATS_PERIOD_S = 1.0
"""How often the learner reports its budget and deferral figures (:meth:`UpdateGate.stats`) to the node."""


# ------------------------------------------------------------------------------------------ the child process
def _apply_control(gate: UpdateGate, control: dict[str, Any]) -> None:
    """The node's runtime settings: ``cpu_budget`` (share of one core) and ``target_missed`` (perception misses
    its target: defer updates)."""
    if "cpu_budget" in control:
        gate.budget.set_share(float(control["cpu_budget"]))
    if "target_missed" in control:
        gate.set_target_missed(bool(control["target_missed"]))


def _lower_priority(pid: int | None, parent_pid: int, nice: int) -> None:
    """Make ``pid`` run ``nice`` steps nicer than ``parent_pid`` (the node), once: called by the node right after
    the spawn, so the learner's start-up (spawn re-imports the node's modules, then torch) already yields to
    perception, and by the learner itself in case the node could not."""
    if not nice or pid is None:
        return
    try:
        want = min(19, os.getpriority(os.PRIO_PROCESS, parent_pid) + int(nice))
        if os.getpriority(os.PRIO_PROCESS, pid) < want:
            os.setpriority(os.PRIO_PROCESS, pid, want)
    except OSError:  # gone already, or a platform without priorities: the learner's budget still holds
        pass


def _exit_with_parent(parent_pid: int, period_s: float = 0.5) -> None:
    """End this process as soon as the node that started it is gone, whatever the main thread is doing.

    Checking in the main loop is not enough: a node killed while writing megabytes of weights into the queue leaves a
    half-written message, and the child's read of it blocks forever (the child holds the queue's write end itself, so
    no EOF comes). A daemon thread that polls the parent's pid and calls ``os._exit`` cannot be blocked that way.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(period_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def learner_main(
    spec_dict: dict[str, Any],
    settings: LearnerSettings,
    experience: mp.Queue,
    updates: mp.Queue,
    parent_pid: int,
) -> None:
    """Entry point of the learner process (spawn target: module level, small picklable arguments only).

    The starting :class:`LearnerState` (megabytes of weights) is the first item of the experience queue, not an
    argument: spawn writes the arguments into a pipe that the child reads only after importing its modules, so
    large arguments would block the node for those seconds; the queue's feeder thread absorbs that instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node stops us (see LearnerSupervisor.start); already so
    _exit_with_parent(parent_pid)
    try:
        _lower_priority(os.getpid(), parent_pid, settings.nice)  # the node did it already, unless it could not
        torch.set_num_threads(max(1, settings.threads))
        spec = GPNSpec(int(spec_dict["obs_dim"]), tuple(spec_dict["nvec"]), int(spec_dict["hidden"]))
        while True:
            try:
                state = experience.get(timeout=0.5)
                break
            except queue.Empty:
                if os.getppid() != parent_pid:
                    updates.cancel_join_thread()
                    return
        if state is None:
            return
        learner = OnlineLearner(spec, state, settings)
        gate = UpdateGate(settings.cpu_budget, settings.max_defer_s)
        updates.put(("ready", os.getpid()))
        wait, reported = 0.5, time.monotonic()
        while True:
            try:  # waiting here is also how the learner sleeps off its budget: it stays responsive to the node
                item = experience.get(timeout=wait) if wait > 0 else experience.get_nowait()
            except queue.Empty:
                if os.getppid() != parent_pid:  # the node died without stopping us: do not linger as an orphan
                    updates.cancel_join_thread()  # nobody reads our queue any more: exiting must not wait for it
                    return
                item = _NOTHING
            if item is None:
                return
            if isinstance(item, tuple) and item[:1] == ("control",):
                _apply_control(gate, item[1])
            elif item is not _NOTHING:
                learner.push(ExperienceBatch.from_dict(item))
            wait = 0.5
            if learner.due:
                wait = gate.wait_s()
                if wait == 0.0:
                    learner.step()
                    gate.ran()
                    updates.put(("state", learner.state()))
            if time.monotonic() - reported >= STATS_PERIOD_S:
                updates.put(("stats", {**gate.stats(), "dropped_steps": float(learner.dropped_steps)}))
                reported = time.monotonic()
    except KeyboardInterrupt:  # only if a caller re-enabled SIGINT: the node stops us itself
        return
    except BaseException:
        try:
            updates.put(("error", traceback.format_exc()))
            updates.close()
            updates.join_thread()
        finally:
            raise SystemExit(1) from None


# ------------------------------------------------------------------------------------------ the node's side
@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while a child is spawned, so the child starts with it ignored (an ignored signal stays ignored
    across exec, and Python then installs no KeyboardInterrupt handler): a terminal's Ctrl-C, which reaches the
    whole process group, cannot end the learner with a traceback while it imports torch. The node stops it through
    the queue. A no-op outside the main thread, where handlers cannot be changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LearnerSupervisor:
    """Owns the learner process: feeds it, collects its states, restarts it when it dies.

    Never blocks its caller for long: experience goes through a queue with a feeder thread, states are read with
    ``get_nowait``. ``log(level, text)`` receives one line per event (started, died, restarted, error text).
    """

    QUEUE_BATCHES = 64
    """Experience batches that may wait for a busy learner before new ones are dropped (and counted)."""

    def __init__(
        self,
        spec: GPNSpec,
        state: LearnerState,
        settings: LearnerSettings,
        log: Callable[[str, str], None] | None = None,
        backoff_s: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.spec = spec
        self.latest = state
        self.settings = settings
        self.log = log or (lambda level, text: None)
        self.backoff_s = backoff_s
        self._ctx = mp.get_context("spawn")
        self._proc: mp.process.BaseProcess | None = None
        self._experience: mp.Queue | None = None
        self._updates: mp.Queue | None = None
        self.status = "stopped"
        """stopped | running | restarting"""
        self.restarts = 0
        self.dropped_batches = 0
        self.last_error = ""
        self._deaths: deque[float] = deque(maxlen=8)
        self._restart_at: float | None = None
        self.new_state = False
        self.stats: dict[str, float] = {}
        """The learner's last budget report (:meth:`agra_ros.online.budget.UpdateGate.stats`); empty before one."""
        self.control: dict[str, Any] = {"cpu_budget": settings.cpu_budget, "target_missed": False}
        """Runtime settings the learner is told (:meth:`set_control`); every (re)started learner gets them too."""
        self._control_due = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def start(self) -> None:
        """Start a learner from :attr:`latest` (idempotent while one runs)."""
        if self._proc is not None and self._proc.is_alive():
            return
        self._experience = self._ctx.Queue(maxsize=self.QUEUE_BATCHES)
        self._updates = self._ctx.Queue()
        self._proc = self._ctx.Process(
            target=learner_main,
            args=(self.spec.to_dict(), self.settings, self._experience, self._updates, os.getpid()),
            name="agra-learner",
            daemon=True,
        )
        with _sigint_ignored():  # inherited through spawn's exec: Ctrl-C on the terminal is for the node
            self._proc.start()
        _lower_priority(self._proc.pid, os.getpid(), self.settings.nice)  # before it imports torch, not after
        self._experience.put(self.latest)  # first item: where to start (see learner_main)
        self.status = "running"
        self.stats = {}
        self._control_due = True
        self._send_control()
        self._restart_at = None
        self.log("info", f"learner process started (pid {self._proc.pid}, {self.latest.updates} updates so far)")

    def stop(self, timeout: float = 1.5) -> None:
        """Ask the learner to finish and collect the last state it sends; terminate it (then kill it) if it has not
        exited within ``timeout`` s, e.g. in the middle of an update, whose result is then lost. Bounded at about
        ``timeout`` + 2 s, so a node's shutdown stays inside launch's SIGINT window (5 s)."""
        proc, self._proc = self._proc, None
        self.status = "stopped"
        if proc is None:
            return
        if proc.is_alive() and self._experience is not None:
            try:
                self._experience.put(None, timeout=0.2)
            except queue.Full:
                pass
        deadline = time.monotonic() + timeout
        while proc.is_alive() and time.monotonic() < deadline:
            self._drain()  # a learner exiting flushes its queue first: it cannot exit while nobody reads
            proc.join(0.05)
        if proc.exitcode is not None:  # exited by itself: whatever it wrote is whole
            self._drain()
        else:  # killed maybe mid-write: reading on could block for ever; keep the last whole state
            proc.terminate()
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        self._discard_queues()

    def _discard_queues(self) -> None:
        for q in (self._experience, self._updates):
            if q is not None:
                q.cancel_join_thread()  # never block the node's exit on a dead reader
                q.close()
        self._experience = self._updates = None

    # ------------------------------------------------------------------ runtime settings
    def set_control(self, **values: Any) -> None:
        """Change the learner's runtime settings: ``cpu_budget`` (share of one core, validated here: ValueError) and
        ``target_missed`` (perception misses its target: defer updates). Sent through the experience queue at once
        when it has room, else at the next :meth:`poll`."""
        if "cpu_budget" in values:
            values["cpu_budget"] = checked_cpu_budget(values["cpu_budget"])
            self.settings = replace(self.settings, cpu_budget=values["cpu_budget"])
        changed = {k: v for k, v in values.items() if self.control.get(k) != v}
        if changed:
            self.control.update(changed)
            self._control_due = True
            self._send_control()

    def _send_control(self) -> None:
        if not self._control_due or self.status != "running" or self._experience is None:
            return
        try:
            self._experience.put_nowait(("control", dict(self.control)))
        except queue.Full:
            return
        self._control_due = False

    # ------------------------------------------------------------------ data
    def submit(self, batch: ExperienceBatch) -> bool:
        """Hand a batch to the learner; False (and counted) when it is not running or its queue is full."""
        if self.status != "running" or self._experience is None:
            self.dropped_batches += 1
            return False
        try:
            self._experience.put_nowait(batch.to_dict())
        except queue.Full:
            self.dropped_batches += 1
            return False
        return True

    def _drain(self) -> None:
        q = self._updates
        if q is None:
            return
        while True:
            try:
                kind, payload = q.get_nowait()
            except (queue.Empty, EOFError, OSError, ValueError):
                return
            if kind == "state":
                self.latest = payload
                self.new_state = True
            elif kind == "stats":
                self.stats = dict(payload)
            elif kind == "error":
                self.last_error = str(payload).strip().splitlines()[-1] if payload else "unknown error"
                self.log("error", f"learner raised: {payload}")

    def poll(self, now: float | None = None) -> LearnerState | None:
        """Collect new states (returns the newest one, or None); notice a dead learner and restart it."""
        now = time.monotonic() if now is None else now
        self.new_state = False
        if self.status == "running" and self._proc is not None:
            alive = self._proc.is_alive()
            if alive:
                self._drain()
                self._send_control()
            else:
                self._on_death(now)
        if self.status == "restarting" and self._restart_at is not None and now >= self._restart_at:
            self.restarts += 1
            self.start()
        return self.latest if self.new_state else None

    def _on_death(self, now: float) -> None:
        proc = self._proc
        code = proc.exitcode if proc is not None else None
        if proc is not None:
            proc.join(0.1)
        # a learner that died mid-write may leave half a message in the pipe: drop the queues, keep our last state
        self._discard_queues()
        self._proc = None
        self._deaths.append(now)
        recent = sum(1 for t in self._deaths if now - t < 60.0)
        delay = 0.0 if recent <= 1 else min(self.backoff_s[1], self.backoff_s[0] * 2 ** (recent - 2))
        self._restart_at = now + delay
        self.status = "restarting"
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        self.log(
            "error",
            f"learner process died ({how}); acting on with the last weights ({self.latest.updates} updates), "
            f"restarting it in {delay:.0f} s",
        )
