"""The policy node's bookkeeping without ROS: the learned policy's checkpoint lifecycle and who owns the target FPS.

Both are decisions, not message plumbing, so they live here where a test can drive them without spinning a node;
the node (agra_ros/nodes/policy.py) calls them from its callbacks and reports their state on /diagnostics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agra_ros.online.agent import OnlineAgent
from agra_ros.online.checkpoint import (
    CheckpointError,
    CheckpointSpec,
    LoadOutcome,
    load_or_quarantine,
    save_checkpoint,
    set_aside,
)

CHECKPOINT_ERROR_LOG_PERIOD_S = 60.0
"""A checkpoint that keeps failing (read-only folder, full disk) is logged at most this often; all are counted."""


@dataclass
class CheckpointKeeper:
    """Loads the learned policy at start-up (setting an unusable file aside) and writes it periodically and at the
    end; counts saves and failures, and says what to log, so a failing disk is visible but never fatal."""

    path: Path | None
    """policy_<algorithm>.pt in the checkpoint folder; None: checkpoints are off."""
    spec: CheckpointSpec
    status: str = "disabled"
    """disabled | missing | loaded | quarantined | unusable (:class:`agra_ros.online.checkpoint.LoadOutcome`)."""
    saves: int = 0
    failures: int = 0
    error: str = ""
    """Why the last save failed; empty after a successful one."""
    last_ms: float = math.nan
    _error_logged: float = field(default=-math.inf, repr=False)

    def load(self, agent: OnlineAgent) -> tuple[OnlineAgent, LoadOutcome]:
        """Restore ``agent`` from the checkpoint when it is usable; an agent that refuses the payload's fields is
        replaced by a fresh one and the file set aside. Returns the agent to act with and what happened."""
        assert self.path is not None
        out = load_or_quarantine(self.path, self.spec)
        if out.status == "loaded":
            assert out.payload is not None
            try:
                agent.restore(out.payload)
            except CheckpointError as exc:  # the header fits, a field does not: as corrupt as a broken file
                agent = OnlineAgent(agent.s, agent.ref)
                out = set_aside(self.path, f"{self.path}: {exc}", out.warnings)
        self.status = out.status
        return agent, out

    def save(self, agent: OnlineAgent, log_error: Callable[[str], None]) -> bool:
        """Write the checkpoint; False (counted, logged at most every CHECKPOINT_ERROR_LOG_PERIOD_S) on failure."""
        if self.path is None:
            return False
        t0 = time.perf_counter()
        try:
            save_checkpoint(self.path, agent.checkpoint_payload(), self.spec)
        except (OSError, RuntimeError, CheckpointError) as exc:
            self.failures += 1
            self.error = f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            if now - self._error_logged >= CHECKPOINT_ERROR_LOG_PERIOD_S:  # periodic saves: not every period
                self._error_logged = now
                log_error(f"checkpoint {self.path} not written ({self.failures} failed so far): {exc}")
            return False
        self.saves += 1
        self.error = ""
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return True


@dataclass
class TargetArbiter:
    """Precedence of the target FPS's two inputs: the ``target_fps`` parameter, set by anyone, wins and sticks
    (setting it turns ``follow_trace`` off); a camera trace's target is written into the parameter only while
    ``follow_trace`` is on."""

    source: str = "parameter"
    """Who set the target in force: ``parameter`` or ``trace``."""
    trace_target: float | None = None
    """The latest trace target heard (kept to resume following it)."""
    setting_from_trace: bool = False
    """True while the node writes a trace target into the parameter (so the write is not taken as an outside one)."""

    def outside_set_stops_following(self, names: set[str]) -> bool:
        """Whether a parameter change naming ``names`` must also turn ``follow_trace`` off: a target set by anyone
        but the trace input, unless the same request sets ``follow_trace`` itself."""
        return "target_fps" in names and "follow_trace" not in names and not self.setting_from_trace

    def trace_heard(self, fps: float, following: bool, current: float) -> bool:
        """Remember a trace target; True when it should be written into the parameter now."""
        self.trace_target = fps
        return following and fps != current

    def applied(self) -> str:
        """A new target is in force: record and return who set it."""
        self.source = "trace" if self.setting_from_trace else "parameter"
        return self.source
