"""The background learner: a separate process that turns on-robot experience into new GPN weights.

Why a process: PPO updates are pure Python and torch work that would hold the GIL of the policy node and, on a
2-core robot, steal time from perception (a third of the image rate was lost to a learner thread; see
docs/architecture.md). The
learner runs in a child started with the *spawn* context (no fork of a process that holds DDS threads), at a
lower scheduling priority and one torch thread, so perception keeps the cores it needs.

Protocol (plain picklable data only, so either side can die without corrupting the other):

- node -> learner, ``experience`` queue: :class:`ExperienceBatch` dicts, consecutive decisions of the acting
  policy with their behaviour log-probabilities and the three reward terms; ``None`` asks the learner to stop.
- learner -> node, ``updates`` queue: ``("ready", pid)`` once, then ``("state", LearnerState)`` after every PPO
  update (weights, Lagrange multipliers, EWC state, counters), and ``("error", text)`` before dying of an
  exception.

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from agra_ros.core.reward import DualAscentSettings, LagrangeMultipliers, RewardWeights
from agra_ros.policy.ewc import OnlineEWC, WorkloadShift
from agra_ros.policy.gpn import GPN, GPNSpec
from agra_ros.policy.memory import PrioritisedMemory
from agra_ros.policy.ppo import PPOSettings, compute_gae, ppo_epochs


def online_ppo_settings(**overrides: Any) -> PPOSettings:
    """The PPO settings of the on-robot learner: :class:`PPOSettings` with what differs on a robot, then
    ``overrides``. One rollout is ``num_steps`` consecutive decisions of the one robot (``num_envs`` 1)."""
    robot = {
        "num_envs": 1,
        "num_steps": 64,  # decisions per PPO update (at 5 decisions/s: one update every ~13 s)
        "learning_rate": 1e-4,  # smaller than in simulation: the robot's policy is already good and must not lurch
        "ent_coef": 0.005,
        "target_kl": 0.02,
        "dual_ascent": True,
        "memory_capacity": 2048,  # prioritised memory of past states (feeds the Fisher estimate)
        "normalise_obs": False,  # the GPN keeps the standardisation it was pretrained with
    }
    return PPOSettings(**{**robot, **overrides})


@dataclass
class LearnerSettings:
    """Settings of the on-robot learner: the one PPO settings type plus what only continual learning needs."""

    ppo: PPOSettings = field(default_factory=online_ppo_settings)
    """PPO, dual ascent and memory (:func:`online_ppo_settings`)."""
    ewc: bool = True
    """Online EWC: consolidate when the workload shifts, penalise moving away from consolidated behaviour."""
    ewc_strength: float = 10.0
    """Pull on an average parameter (the Fisher is mean-normalised): 10 kept 99.7 % of trace A while still learning
    trace B in `policy_bench continual`; 100 stopped learning on B."""
    ewc_decay: float = 0.9
    fisher_samples: int = 128
    w_dim: int = 0
    """Length of the W block at the start of the observation (workload-shift detection); 0: no shift detection."""
    threads: int = 1
    """torch threads of the learner process."""
    nice: int = 10
    """Scheduling niceness added to the learner process, so perception wins the CPU when both want it."""

    @property
    def rollout_steps(self) -> int:
        """Decisions per PPO update."""
        return self.ppo.num_steps


@dataclass
class LearnerState:
    """Everything the learner hands back, and everything a new learner (or a checkpoint) starts from."""

    policy: dict[str, np.ndarray]
    """GPN state_dict as numpy arrays."""
    lagrange: dict[str, float]
    """Reward weights (alpha fixed; beta, gamma learned)."""
    ewc: dict[str, Any] | None = None
    """OnlineEWC state (fisher/anchor as lists of numpy arrays), None before the first consolidation."""
    updates: int = 0
    """PPO updates applied since the shipped policy (carried across restarts and checkpoints)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Last update's losses and charts (CleanRL names)."""


def gpn_state_to_numpy(gpn: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in gpn.state_dict().items()}


def load_numpy_state(gpn: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    gpn.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})


def ewc_to_numpy(ewc: OnlineEWC) -> dict[str, Any] | None:
    """The EWC state as plain numpy data (what crosses the process boundary and goes into checkpoints)."""
    if not ewc.ready:
        return None
    st = ewc.state_dict()
    st["fisher"] = [t.numpy().copy() for t in st["fisher"]]
    st["anchor"] = [t.numpy().copy() for t in st["anchor"]]
    return st


def _ewc_from_numpy(ewc: OnlineEWC, st: Mapping[str, Any]) -> None:
    ewc.load_state_dict(
        {
            **st,
            "fisher": [torch.as_tensor(np.asarray(f)) for f in st["fisher"]],
            "anchor": [torch.as_tensor(np.asarray(a)) for a in st["anchor"]],
        }
    )


@dataclass
class ExperienceBatch:
    """Consecutive decisions of the acting policy (T rows) and the observation after the last one."""

    obs: np.ndarray
    """(T, obs_dim) float32."""
    actions: np.ndarray
    """(T, n_heads) int64: level indices, then scale index, then target index."""
    logprobs: np.ndarray
    """(T,) log-probability of each action under the policy that took it (PPO's old log-prob)."""
    energy_norm: np.ndarray
    fps_shortfall: np.ndarray
    accuracy_loss: np.ndarray
    """(T,) the reward terms measured over each decision's interval."""
    next_obs: np.ndarray
    """(obs_dim,) observation after the last decision (bootstrap of the value)."""
    starts: np.ndarray
    """(T,) 1.0 where a decision does not follow the previous one (a gap: learning paused, safety override)."""

    def __len__(self) -> int:
        return len(self.obs)

    def validate(self, obs_dim: int, n_heads: int) -> None:
        T = len(self.obs)
        shapes = {
            "obs": (self.obs.shape, (T, obs_dim)),
            "actions": (self.actions.shape, (T, n_heads)),
            "logprobs": (self.logprobs.shape, (T,)),
            "energy_norm": (self.energy_norm.shape, (T,)),
            "fps_shortfall": (self.fps_shortfall.shape, (T,)),
            "accuracy_loss": (self.accuracy_loss.shape, (T,)),
            "starts": (self.starts.shape, (T,)),
            "next_obs": (self.next_obs.shape, (obs_dim,)),
        }
        for name, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"experience batch: {name} has shape {tuple(got)}, expected {want}")
        for name in ("obs", "logprobs", "energy_norm", "fps_shortfall", "accuracy_loss", "next_obs"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"experience batch: {name} holds NaN/inf")

    @staticmethod
    def concatenate(parts: list[ExperienceBatch]) -> ExperienceBatch:
        return ExperienceBatch(
            obs=np.concatenate([p.obs for p in parts]),
            actions=np.concatenate([p.actions for p in parts]),
            logprobs=np.concatenate([p.logprobs for p in parts]),
            energy_norm=np.concatenate([p.energy_norm for p in parts]),
            fps_shortfall=np.concatenate([p.fps_shortfall for p in parts]),
            accuracy_loss=np.concatenate([p.accuracy_loss for p in parts]),
            next_obs=parts[-1].next_obs,
            starts=np.concatenate([p.starts for p in parts]),
        )


# ------------------------------------------------------------------------------------------ the learning itself
class OnlineLearner:
    """PPO (+ online EWC, + dual ascent) on batches of on-robot experience; runs inside the learner process.

    Kept free of any process machinery so a test can drive it directly.
    """

    def __init__(self, spec: GPNSpec, state: LearnerState, settings: LearnerSettings) -> None:
        self.s = settings
        torch.manual_seed(settings.ppo.seed)
        self.rng = np.random.default_rng(settings.ppo.seed)
        self.gpn = GPN(spec)
        load_numpy_state(self.gpn, state.policy)
        self.optimizer = torch.optim.Adam(self.gpn.parameters(), lr=settings.ppo.learning_rate, eps=1e-5)
        self.multipliers = LagrangeMultipliers(RewardWeights(**state.lagrange), DualAscentSettings())
        self.ewc = OnlineEWC(settings.ewc_strength, settings.ewc_decay, settings.fisher_samples)
        if state.ewc is not None:
            _ewc_from_numpy(self.ewc, state.ewc)
        self.memory = (  # none for A2C (memory_capacity 0: no EWC to feed)
            PrioritisedMemory(settings.ppo.memory_capacity, spec.obs_dim, len(spec.nvec), seed=settings.ppo.seed)
            if settings.ppo.memory_capacity > 0
            else None
        )
        self.shift = WorkloadShift() if settings.w_dim > 0 else None
        self.updates = state.updates
        self.metrics: dict[str, float] = dict(state.metrics)
        self._pending: list[ExperienceBatch] = []
        self._pending_steps = 0
        self._shift_seen = False

    def state(self) -> LearnerState:
        return LearnerState(
            policy=gpn_state_to_numpy(self.gpn),
            lagrange=self.multipliers.state_dict(),
            ewc=ewc_to_numpy(self.ewc),
            updates=self.updates,
            metrics=dict(self.metrics),
        )

    def add(self, batch: ExperienceBatch) -> int:
        """Queue experience; run as many PPO updates as full rollouts allow. Returns the updates run."""
        batch.validate(self.gpn.spec.obs_dim, len(self.gpn.nvec))
        if self.shift is not None:
            for w in batch.obs[:, : self.s.w_dim]:
                self._shift_seen |= self.shift.update(w)
        self._pending.append(batch)
        self._pending_steps += len(batch)
        done = 0
        while self._pending_steps >= self.s.rollout_steps:
            rollout = ExperienceBatch.concatenate(self._pending)
            n = self.s.rollout_steps
            head = ExperienceBatch(
                obs=rollout.obs[:n],
                actions=rollout.actions[:n],
                logprobs=rollout.logprobs[:n],
                energy_norm=rollout.energy_norm[:n],
                fps_shortfall=rollout.fps_shortfall[:n],
                accuracy_loss=rollout.accuracy_loss[:n],
                next_obs=rollout.obs[n] if len(rollout) > n else rollout.next_obs,
                starts=rollout.starts[:n],
            )
            rest_len = len(rollout) - n
            self._pending = []
            if rest_len:
                self._pending = [
                    ExperienceBatch(
                        obs=rollout.obs[n:],
                        actions=rollout.actions[n:],
                        logprobs=rollout.logprobs[n:],
                        energy_norm=rollout.energy_norm[n:],
                        fps_shortfall=rollout.fps_shortfall[n:],
                        accuracy_loss=rollout.accuracy_loss[n:],
                        next_obs=rollout.next_obs,
                        starts=rollout.starts[n:],
                    )
                ]
            self._pending_steps = rest_len
            self.update(head)
            done += 1
        return done

    def update(self, b: ExperienceBatch) -> dict[str, float]:
        """One PPO update on one rollout: consolidation first if the workload shifted, then dual ascent."""
        s, ppo = self.s, self.s.ppo
        if s.ewc and self._shift_seen and self.memory is not None and len(self.memory) >= 32:
            states, _, _ = self.memory.sample(s.fisher_samples)
            self.ewc.consolidate(self.gpn, states, seed=ppo.seed + self.updates)
        self._shift_seen = False
        rewards = self.multipliers.reward(b.energy_norm, b.fps_shortfall, b.accuracy_loss).astype(np.float64)
        obs_t = torch.as_tensor(b.obs, dtype=torch.float32)
        with torch.no_grad():
            values = self.gpn.get_value(obs_t).numpy().astype(np.float64)
            next_value = self.gpn.get_value(torch.as_tensor(b.next_obs, dtype=torch.float32)[None]).numpy()
        advantages, returns = compute_gae(
            rewards[:, None], values[:, None], b.starts[:, None], next_value, np.zeros(1), ppo.gamma, ppo.gae_lambda
        )
        if self.memory is not None:
            self.memory.add(b.obs, b.actions, rewards)
        batch = (
            obs_t,
            torch.as_tensor(b.actions),
            torch.as_tensor(b.logprobs, dtype=torch.float32),
            torch.as_tensor(advantages[:, 0], dtype=torch.float32),
            torch.as_tensor(returns[:, 0], dtype=torch.float32),
            torch.as_tensor(values, dtype=torch.float32),
        )
        m = ppo_epochs(
            self.gpn, self.optimizer, ppo, batch, self.ewc if s.ewc else None, self.rng.shuffle, min_minibatch=2
        )
        if ppo.dual_ascent:
            beta, gamma = self.multipliers.update(b.fps_shortfall, b.accuracy_loss)
            m["charts/beta"], m["charts/gamma"] = beta, gamma
        m["charts/mean_reward"] = float(rewards.mean())
        m["charts/fps_shortfall"] = float(np.mean(b.fps_shortfall))
        m["charts/accuracy_loss"] = float(np.mean(b.accuracy_loss))
        m["charts/energy_norm"] = float(np.mean(b.energy_norm))
        m["charts/ewc_consolidations"] = float(self.ewc.consolidations)
        self.updates += 1
        self.metrics = m
        return m


# ------------------------------------------------------------------------------------------ the child process
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
        if settings.nice:
            os.nice(settings.nice)
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
        updates.put(("ready", os.getpid()))
        while True:
            try:
                item = experience.get(timeout=0.5)
            except queue.Empty:
                if os.getppid() != parent_pid:  # the node died without stopping us: do not linger as an orphan
                    updates.cancel_join_thread()  # nobody reads our queue any more: exiting must not wait for it
                    return
                continue
            if item is None:
                return
            if learner.add(ExperienceBatch(**item)):
                updates.put(("state", learner.state()))
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
        self._experience.put(self.latest)  # first item: where to start (see learner_main)
        self.status = "running"
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

    # ------------------------------------------------------------------ data
    def submit(self, batch: ExperienceBatch) -> bool:
        """Hand a batch to the learner; False (and counted) when it is not running or its queue is full."""
        if self.status != "running" or self._experience is None:
            self.dropped_batches += 1
            return False
        try:
            self._experience.put_nowait(dict(vars(batch)))
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
