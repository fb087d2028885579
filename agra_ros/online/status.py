"""What the policy node reports about itself on /diagnostics, built without ROS.

The node copies :class:`PolicyStatus` into its DiagnosticStatus (values in order, then the summaries by severity),
so what it says about the agent, the learner, the safety override, the checkpoint and the inputs it rejected is
decided and tested here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.granularity.levels import LEVELS
from agra_ros.online.agent import OnlineAgent
from agra_ros.online.lifecycle import CheckpointKeeper, TargetArbiter
from agra_ros.online.stats import AttainmentWindow, LatencyWindow

if TYPE_CHECKING:
    from agra_ros.online.hold import DecisionHold
    from agra_ros.online.learner_process import LearnerSupervisor

REJECTED_KINDS: tuple[str, ...] = ("embedding", "diagnostics", "target_fps", "feedback", "catalogue", "observation")
"""The policy's inputs, each with its own count of rejected messages."""


@dataclass
class PolicyStatus:
    values: list[tuple[str, object]] = field(default_factory=list)
    """Key-value pairs, in the order they are published."""
    summaries: list[tuple[str, str]] = field(default_factory=list)
    """(``warn`` | ``error``, message) for what is wrong; none: the node is deciding normally."""


def catalogue_mismatch(layers: tuple[str, ...], levels: tuple[str, ...], policy_layers: tuple[str, ...]) -> str:
    """Why perception's granularity catalogue does not fit the policy's commands; empty when it does."""
    if layers == tuple(policy_layers) and levels == LEVELS:
        return ""
    return (
        f"perception's detector has layers {list(layers)} / levels {list(levels)}, the policy was built for "
        f"{list(policy_layers)} / {list(LEVELS)}: its commands will not fit"
    )


def learner_budget_values(learner: LearnerSupervisor) -> list[tuple[str, object]]:
    """The learner's CPU budget and what it held back (since it last started), from its last report: a throttled
    learner says so here (:class:`agra_ros.online.budget.UpdateGate`)."""
    st = learner.stats
    return [
        ("learner_cpu_budget", learner.settings.cpu_budget),
        ("learner_cpu_share", st.get("cpu_share", math.nan)),
        ("learner_throttled", bool(st.get("throttled", 0.0))),
        ("learner_throttled_s", st.get("throttled_s", 0.0)),
        ("learner_target_missed", bool(learner.control.get("target_missed", False))),
        ("learner_deferred_updates", int(st.get("deferred_updates", 0))),
        ("learner_deferred_s", st.get("deferred_s", 0.0)),
        ("learner_dropped_steps", int(st.get("dropped_steps", 0))),
    ]


def policy_status(
    agent: OnlineAgent,
    *,
    last_config: str,
    latency: LatencyWindow,
    target: TargetArbiter,
    follow_trace: bool,
    attainment: AttainmentWindow,
    rejections: BadInputCounter,
    learner: LearnerSupervisor | None,
    checkpoint: CheckpointKeeper,
    device_seen: bool,
    catalogue_error: str = "",
    hold: DecisionHold | None = None,
) -> PolicyStatus:
    """The policy node's status; ``catalogue_error``: :func:`catalogue_mismatch` of the last catalogue heard;
    ``hold``: the minimum hold time between configuration changes (:mod:`agra_ros.online.hold`)."""
    a, ck = agent, checkpoint
    p50, p99 = latency.percentiles_ms()
    trace = target.trace_target
    values: list[tuple[str, object]] = [
        ("algorithm", a.s.algorithm),
        ("learning", a.learning),
        ("decisions", a.decisions),
        ("configuration", last_config),
        ("decision_latency_ms_p50", p50),
        ("decision_latency_ms_p99", p99),
        ("target_fps", a.target_fps),
        ("target_fps.source", target.source),
        ("target_fps.follow_trace", follow_trace),
        ("trace_target_fps", trace if trace is not None else math.nan),
        ("target_attainment", attainment.share()),
        ("reward", a.last_reward if a.last_reward is not None else math.nan),
        ("lagrange_fps", a.multipliers.beta),
        ("lagrange_accuracy", a.multipliers.gamma),
        ("learner_updates", a.updates),
        ("live_accuracy", a.s.live_accuracy),
        ("live_accuracy.masked", a.masked),
        ("live_accuracy.observations", a.live.observations),
        ("calibrate_speed", a.s.calibrate_speed),
        ("explore_share", a.s.explore_share),
        ("stick_margin", a.s.stick_margin),
        ("live_latency.slowdown", round(2.0**a.live_latency.device_slowdown_log2, 3)),
        ("live_latency.configurations", a.live_latency.configurations),
        ("unmeasured_decisions", a.unmeasured),
    ]
    if hold is not None:
        values += [
            ("min_hold_s", hold.min_hold_s),
            ("hold.held_back", hold.held),
            ("hold.forced", hold.forced),
            ("configuration_changes", hold.changes),
        ]
    counts = rejections.counts()
    values += [(f"rejected.{kind}", counts.get(kind, 0)) for kind in REJECTED_KINDS]
    values.append(("rejected_total", rejections.total()))
    if learner is not None:
        values += [
            ("learner_state", learner.status),
            ("learner_pid", learner.pid or 0),
            ("learner_restarts", learner.restarts),
            ("learner_dropped_batches", learner.dropped_batches),
            ("learner_last_error", learner.last_error),
            *learner_budget_values(learner),
        ]
    else:
        values.append(("learner_state", "in-process" if a.learns else "none"))
    values += [
        ("safety", "engaged" if a.guard.engaged else "normal"),
        ("safety_reason", a.guard.reason),
        ("safety_engagements", a.guard.engagements),
        ("checkpoint", str(ck.path or "")),
        ("checkpoint_status", ck.status),
        ("checkpoint_saves", ck.saves),
        ("checkpoint_write_ms", ck.last_ms),
        ("checkpoint_failures", ck.failures),
        ("checkpoint_last_error", ck.error),
        ("device_state_seen", device_seen),
    ]
    summaries: list[tuple[str, str]] = []
    if not a.ready:
        summaries.append(("warn", "waiting for perception's feedback (W comes with it)"))
    elif a.guard.engaged:
        summaries.append(("warn", f"safety override: {a.guard.reason}"))
    if catalogue_error:
        summaries.append(("error", catalogue_error))
    if ck.error:
        summaries.append(("warn", f"checkpoint not written, learning is not kept: {ck.error}"))
    elif ck.status == "unusable":
        summaries.append(("warn", "unusable checkpoint left in place (could not be moved aside)"))
    if learner is not None and learner.status == "restarting":
        summaries.append(("warn", f"learner restarting after a crash ({learner.restarts} restarts)"))
    return PolicyStatus(values, summaries)
