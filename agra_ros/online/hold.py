"""Steady decisions: a configuration, once commanded, is held at least ``min_hold_s`` before the policy may change it.

Every switch costs perception something (a re-configured detector, a first frame at the new size, a shadow
measurement that no longer applies), and a policy that samples a new configuration every decision (live: 228
distinct configurations in 120 s) pays it all the time. :class:`DecisionHold` sits between the agent's decision
and the command the node publishes: a change of configuration goes out only when the one in force has been held
``min_hold_s``; until then the configuration in force is commanded again (so perception never falls silent into
its fallback configuration) and the decision is counted as held back.

Changes the safety logic needs always go through (:func:`force_reason`): the safety override (and its end), a
perception that reports running its fallback configuration (commands lost, rejected as bad, or not yet heard),
and a target missed badly (measured FPS below :data:`MISSED_BADLY_SHARE` of the target).

Decisions that do not sample the policy (all of them without learning; while learning, all but ``explore_share``
of them, default none) take its mode with a margin that keeps near-tied choices where they are
(:func:`sticky_mode`), so flicker between near-equal configurations does not change the configuration; only the
sampled decisions are experience.

The agent still learns from its own decision (a held decision is the environment's delay, not another action);
the state it observes next measures the configuration that ran (:meth:`OnlineAgent.ran_instead`).
"""

from __future__ import annotations

import math

import numpy as np

from agra_ros.granularity.levels import GranularityConfig

MIN_HOLD_RANGE_S = (0.0, 30.0)
"""Accepted minimum hold times (0: every decision goes out)."""
MISSED_BADLY_SHARE = 0.7
"""Measured FPS below this share of the target is a badly missed target: the policy's change goes through."""


def force_reason(
    source: str, safety_changed: bool, perception_fallback: bool, fps: float | None, target_fps: float
) -> str:
    """Why this decision must go out inside the hold time; empty when it may be held back.

    ``source`` is the decision's (``safety`` for the safety override), ``safety_changed`` whether the safety guard
    engaged or released at this decision, ``perception_fallback`` whether perception's latest feedback says it runs
    its fallback configuration, ``fps`` the FPS measured over the last decision (None: none measured).
    """
    if source == "safety" or safety_changed:
        return "safety"
    if perception_fallback:
        return "fallback"
    if fps is not None and math.isfinite(fps) and target_fps > 0 and fps < MISSED_BADLY_SHARE * target_fps:
        return "target missed badly"
    return ""


class DecisionHold:
    """The configuration in force and how long it has been held; :meth:`offer` each decision."""

    def __init__(self, min_hold_s: float = 1.0) -> None:
        self.min_hold_s = min_hold_s
        self.current: GranularityConfig | None = None
        self.since = -math.inf
        """When the configuration in force was first commanded."""
        self.changes = 0
        """Configuration changes commanded (the first command included)."""
        self.held = 0
        """Decisions held back: the policy asked for a change inside the hold time."""
        self.forced = 0
        """Changes let through inside the hold time because :func:`force_reason` said so."""

    @property
    def min_hold_s(self) -> float:
        return self._min_hold_s

    @min_hold_s.setter
    def min_hold_s(self, value: float) -> None:
        lo, hi = MIN_HOLD_RANGE_S
        value = float(value)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"min_hold_s must be in [{lo}, {hi}] s, got {value}")
        self._min_hold_s = value

    def offer(self, config: GranularityConfig, now: float, force: str = "") -> GranularityConfig:
        """The configuration to command now for a decision of ``config``: ``config`` itself when it is the one in
        force, when the hold time is over or when ``force`` (a :func:`force_reason`) is given; else the one in
        force (counted in :attr:`held`)."""
        if config == self.current:
            return config
        if self.current is not None and now - self.since < self.min_hold_s:
            if not force:
                self.held += 1
                return self.current
            self.forced += 1
        self.current, self.since = config, now
        self.changes += 1
        return config


EXPLORE_SHARE_RANGE = (0.0, 1.0)
STICK_MARGIN_RANGE = (0.0, 20.0)


def sticky_mode(logits: list[np.ndarray], base: np.ndarray | None, margin: float) -> np.ndarray:
    """The policy's most likely action, head by head, except that a head keeps ``base``'s choice (the action of
    the last decision that was not an exploration sample) while its logit is within ``margin`` (nats) of the
    head's best: a near-tie does not flip the configuration from one decision to the next.

    Why: the mode of a stochastic policy flickers between near-equal choices as W and D move a little (in the
    simulator, the shipped policy's plain mode used 36 configurations in 240 decisions; with a margin of 1 nat, 13,
    at a slightly better return). ``margin`` 0 is the plain mode.
    """
    out = np.empty(len(logits), dtype=np.int64)
    for h, lg in enumerate(logits):
        lg = np.asarray(lg, dtype=np.float64).ravel()
        best = int(lg.argmax())
        keep = int(base[h]) if base is not None and 0 <= int(base[h]) < lg.size else best
        out[h] = keep if lg[keep] >= lg[best] - margin else best
    return out
