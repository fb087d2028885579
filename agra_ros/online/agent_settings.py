"""What the on-robot agent is set up with: the algorithms, :class:`AgentSettings` and the learner's settings per
algorithm (apart from :mod:`agra_ros.online.agent`, which acts on them)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from agra_ros.limits import CRITICAL_TEMP_C, RECOVER_MARGIN_C
from agra_ros.online.learner_settings import LearnerSettings, online_ppo_settings

ALGORITHMS: tuple[str, ...] = ("agra", "a2c", "bandit", "rule", "static")
LEARNER_ALGORITHMS = ("agra", "a2c")
"""Algorithms whose learning runs in the background learner process."""


@dataclass
class AgentSettings:
    algorithm: str = "agra"
    device_profile: str = "x86_generic"
    """Device profile of the energy reference (the same profile perception's energy model uses)."""
    accuracy_floor: float | None = None
    """Accuracy floor of P (share of the full configuration's accuracy); None: the simulator's."""
    link_rtt_s: float | None = None
    """Round-trip time to a remote perception node for P; None: the simulator's mean."""
    allow_remote: bool = False
    """Let the policy choose remote execution (only where a remote perception node exists)."""
    batch_steps: int = 16
    """Transitions per experience batch handed to the learner."""
    feedback_max_age_s: float = 2.0
    """An interval without feedback is scored from the last feedback this young; older: not scored."""
    critical_temp_c: float = CRITICAL_TEMP_C
    recover_margin_c: float = RECOVER_MARGIN_C
    seed: int = 0
    start_from_shipped: bool = True
    """Start from the policy pretrained in the simulator that ships with the package (when there is one)."""
    live_accuracy: str = "table"
    """Mask decisions by the live accuracy model (the shipped table corrected by this scene's shadow measurements,
    :class:`~agra_ros.online.live_accuracy.LiveAccuracy`): ``table`` keeps the accuracy the table promised for
    the decision (capped at the floor), ``floor`` keeps the floor itself, ``none`` masks nothing."""
    explore_share: float = 1.0
    """While learning, the share of decisions that sample the policy (exploration: the learner's experience); the
    others take its mode with ``stick_margin`` (:func:`agra_ros.online.hold.sticky_mode`). 1 (default): every
    decision samples, plain on-policy PPO. Lower: fewer configurations, less to learn from; measured live (one
    120 s run each, `bench paper live`): 1.0 gave 0.771x static's energy per frame with 55 configurations, 0.05
    gave 0.868x with 41 (the mode keeps keyframe interval 1 where samples try 2 and 3)."""
    stick_margin: float = 1.0
    """Nats within which a head keeps its current choice over the mode's (0: the plain mode)."""
    calibrate_speed: bool = True
    """The state's slowdown (P) is this robot's calibrated estimate (:class:`~agra_ros.online.live_latency.
    LiveLatency`, from every decision's measured latency) instead of the last decision's one measurement."""


def learner_settings_for(algorithm: str, w_dim: int, rollout_steps: int = 64, seed: int = 0) -> LearnerSettings:
    """PPO + EWC + dual ascent for agra; the A2C special case of the same update for a2c (no EWC, no dual
    ascent, no workload-shift detection)."""
    if algorithm == "a2c":
        from agra_ros.policy.baselines import a2c_settings

        a2c = replace(a2c_settings(1, seed=seed, num_envs=1), num_steps=rollout_steps, normalise_obs=False)
        return LearnerSettings(ppo=a2c, ewc=False, w_dim=0)
    return LearnerSettings(ppo=online_ppo_settings(num_steps=rollout_steps, seed=seed), w_dim=w_dim)
