"""What the on-robot learner is told and what it hands back: :class:`LearnerSettings` and :class:`LearnerState`.

Apart from the learner itself because both sides use them: the policy node (agent, supervisor, checkpoints) builds
the settings and keeps the last state, the learner process starts from them and returns new states. Both cross the
process boundary, so they are plain picklable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agra_ros.policy.ppo import PPOSettings


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
    cpu_budget: float = 0.10
    """Share of one core the learner process uses on average (:class:`agra_ros.online.budget.UpdateGate`)."""
    max_defer_s: float = 30.0
    """Longest an update waits while perception misses its target; then it runs, within the budget."""

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
