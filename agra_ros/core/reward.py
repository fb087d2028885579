"""The AGRA reward: its terms, computed by one function that the simulator and the robot both call, and its
Lagrange multipliers.

The three terms (:func:`reward_terms`) are defined from the same quantities on both sides:

- energy per frame is the *system* energy per frame, idle share included: power / achieved FPS, with the power
  model's P = min(P_idle + E_dyn * FPS, P_max) in simulation and perception's reported power (the same model, or
  a sensor) on the robot (:func:`system_energy_per_frame_j`). Not perception's *detector* energy per frame E_dyn
  (``detector_energy_per_frame_j``: the detector's dynamic joules alone, from
  :meth:`agra_ros.device.power_model.PowerModel.detector_energy_per_frame_j`). Normalised by the full
  configuration's system energy per frame on the same device at the same target (``e_ref``), so one price fits a
  5 W Nano and a 45 W laptop;
- FPS shortfall is (target - achieved) / target, at least 0;
- accuracy loss is max(0, floor - accuracy ratio), where the accuracy ratio is agreement with the full
  configuration as a share of the full configuration's own (1.0): the simulator reads it from the accuracy table
  (the confident agreement: mAP@0.5 against the full configuration's confident detections over held-out frames),
  the robot from its shadow runs (the same measure per frame), mapped onto the table's scale by
  :func:`calibrated_accuracy_ratio` (a line fitted on both measured on the same frames: ``agra-ros
  calibrate-agreement``).

A fourth term prices steadiness: the churn (:func:`switch_churn`), charged when the configuration that ran differs
from the one that ran at the previous decision (the simulator's previous step, the robot's previous scored decision;
never on an episode's first step or after a gap), at a fixed price ``delta`` (:attr:`RewardWeights.delta`).

The reward (docs/architecture.md): ``r = -alpha * energy/frame (normalised) - beta * FPS shortfall - gamma * accuracy loss
- delta * churn``,
bounded on both sides: the energy term is capped at :data:`ENERGY_NORM_MAX` and the reward clipped to
[:data:`REWARD_MIN`, :data:`REWARD_MAX`], so one interval with almost no frames (power over an FPS near 0) cannot
outweigh everything else the learner has seen. An interval without any measured frame is not scored at all (the
acting agent skips and counts it). ``alpha`` is a fixed price of energy; ``beta`` and ``gamma`` are the Lagrange multipliers of the two constraints

    P[FPS shortfall > fps_miss_threshold] <= fps_miss_rate          E[accuracy loss] <= accuracy_tolerance

learned by dual ascent: after every batch of experience the learner raises a multiplier in proportion to how far
its constraint was violated on that batch and lowers it (never below zero) when the constraint holds with slack.
That is what "alpha and beta are learned" means in the paper: the weights settle where the constraints just hold.

Design: the multipliers live in the learner (:class:`LagrangeMultipliers`), not in the environment. The environment
reports the three cost terms per step in ``info`` (``energy_norm``, ``fps_shortfall``, ``accuracy_loss``) and its
own reward with fixed weights (so any gymnasium learner, e.g. stable-baselines3, sees a well-defined MDP); the AGRA
learner recomputes the reward from the terms with its current multipliers (:func:`agra_reward`) and updates them
from the same terms (:meth:`LagrangeMultipliers.update`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from agra_ros.detectors.registry import DEFAULT_DETECTOR, shipped_agreement_calibration
from agra_ros.perception.agreement import SHADOW_METRIC


@dataclass
class RewardWeights:
    """Weights of the three cost terms."""

    alpha: float = 1.0
    """Price of one unit of normalised energy per frame (1.0 = the full configuration on the nominal device)."""
    beta: float = 4.0
    """Weight of the FPS shortfall, (target - achieved) / target in [0, 1]."""
    gamma: float = 8.0
    """Weight of the accuracy loss below the floor, as a share of the full configuration's accuracy."""
    delta: float = 0.1
    """Price of a switch of configuration: the weight of the churn term (:func:`switch_churn`, in [0, 1]).

    Why 0.1: a switch should cost about what a modest energy saving earns. Measured in the simulator (the shipped
    policy on heldout_rel, x86, 240 decisions), the energy term is 0.66 per decision on average (p10-p90 0.51-0.83)
    when the policy samples and 0.63 when it acts greedily. At 0.1 a full switch costs 15 % of one decision's
    energy term: a new configuration pays for its switch when it saves 0.1 of the full configuration's energy per
    frame for one decision, or 0.01 for ten, so a lasting saving still switches while a change that earns nothing
    (a sampled head that moves and moves back) costs 0.05-0.1 each time. The sampling policy switched at every
    decision, changing 37 % of its heads (churn 0.69, i.e. 0.069 per decision, 5 % of its mean reward of -1.49);
    the greedy one switched at 65 % of decisions, changing 1.3 heads each (churn 0.55)."""

    def as_array(self) -> np.ndarray:
        return np.array([self.alpha, self.beta, self.gamma, self.delta], dtype=np.float64)


ENERGY_NORM_MAX = 50.0
"""Cap of the energy term, system energy per frame over the full configuration's at the same target. At similar power
that ratio is about the full configuration's frame rate over the achieved one, so 50 is an interval that ran at 1/50
of the full configuration's rate or less (under 0.4 FPS where full runs 20): next to no frames. Measured over every
configuration: the simulator's largest is 6.6 on the shipped profiles and traces (a Jetson Nano 5 W configuration far
below its target; x86 stays under 1.3) and 11.4 on training's randomised devices; the worst live reward is -25, so
no live energy term went beyond 25; an interval of power over an FPS near 0 read 5.8e6 (issue 23). Twice the worst
live value and over four times the simulator's leave every real interval as it was."""

REWARD_MIN = -150.0
"""Lowest reward (:func:`agra_reward` clips): the most the terms can cost together with ``alpha`` 1, the energy term
at its cap and both Lagrange multipliers at theirs (50 + 50 x shortfall <= 1 + 50 x accuracy loss <= 1, see
:attr:`DualAscentSettings.max_value`), so with the default price of energy the clip never changes a reward the terms
can make (but for the churn term's at most :attr:`RewardWeights.delta` when all three are at their caps) and only
guarantees the bound for other weights. Six times the worst live reward (-25), nine times the
simulator's with its fixed weights (1, 4, 8: above -16.4 on training's randomised devices)."""

REWARD_MAX = 0.0
"""Highest reward: every term is a cost (>= 0) with a weight >= 0, so no cost at all is the best there is (live
rewards stay below -0.8, simulated ones below -0.15, the cheapest energy term). The clip only acts on a term that
went negative, which no valid input produces."""


def _clip(x, lo: float, hi: float):
    """``x`` clipped to [lo, hi] (scalars stay Python floats on the simulator's hot path); NaN stays NaN, so the
    checks downstream (experience validation, the dual ascent, feedback parsing) still reject it."""
    if isinstance(x, float):
        return lo if x < lo else hi if x > hi else x
    return np.clip(x, lo, hi)


def agra_reward(energy_norm, fps_shortfall, accuracy_loss, weights: RewardWeights, switch=0.0):
    """``-alpha * energy_norm - beta * fps_shortfall - gamma * accuracy_loss - delta * switch`` clipped to
    [:data:`REWARD_MIN`, :data:`REWARD_MAX`] (scalars or numpy arrays; ``switch`` is :func:`switch_churn`)."""
    r = (
        -weights.alpha * energy_norm
        - weights.beta * fps_shortfall
        - weights.gamma * accuracy_loss
        - weights.delta * switch
    )
    return _clip(r, REWARD_MIN, REWARD_MAX)


REWARD_TERMS = ("energy_norm", "fps_shortfall", "accuracy_loss", "switch")
"""Names of the reward's terms in the simulator's ``info``, the agent's scored terms and the experience batch."""


SWITCH_BASE = 0.5
"""Share of the churn term that any switch pays, however little changed; the rest grows with the share of heads
that changed (:func:`switch_churn`)."""


def switch_churn(previous, ran) -> float:
    """The churn term of one decision: 0 when the configuration that ran is the one that ran at the previous
    decision, else ``SWITCH_BASE + (1 - SWITCH_BASE) x`` the share of heads that changed (in (0.5, 1]).

    ``previous`` and ``ran`` are action vectors of the configurations that *ran* (one level index per layer, the
    scale, target and keyframe-interval indices; an action without the interval head runs interval index 0).
    ``previous`` None (an episode's first step, the first decision after a gap) is never charged. Any switch pays
    half because the goal counts switches (distinct configurations), not heads: each one re-configures perception,
    starts a frame at a new size, restarts the tracker's keyframe cycle and makes the shadow's agreement
    measurement stale. The other half grows with how much changed, so a policy that must switch prefers a
    neighbour. No switch latency is charged separately: a level switch is O(1) (``SwitchableConv2d.set_level``
    writes three attributes), and on the robot whatever a switch costs in time already shows in the FPS and energy
    measured over the interval."""
    if previous is None:
        return 0.0
    a, b = [int(x) for x in previous], [int(x) for x in ran]
    n = max(len(a), len(b))
    a, b = a + [0] * (n - len(a)), b + [0] * (n - len(b))
    changed = sum(x != y for x, y in zip(a, b))
    return 0.0 if changed == 0 else SWITCH_BASE + (1.0 - SWITCH_BASE) * changed / n


def system_energy_per_frame_j(power_w, fps):
    """*System* energy per frame, idle share included: device power over achieved FPS (scalars or numpy arrays): the
    reward's energy term, the simulator's, the benchmarks' and the run reports' energy per frame. An FPS of 0 counts
    as 1e-6 (a report that wants NaN for a sample without frames masks it)."""
    return power_w / np.maximum(fps, 1e-6)


@dataclass(frozen=True)
class RewardTerms:
    """The three cost terms of one decision (or arrays of them, one per configuration)."""

    energy_norm: Any
    fps_shortfall: Any
    accuracy_loss: Any


def reward_terms(energy_j, e_ref_j, fps, target_fps, accuracy_ratio, accuracy_floor) -> RewardTerms:
    """The reward terms from system energy per frame (:func:`system_energy_per_frame_j`) and its reference
    ``e_ref_j``, achieved and target FPS, and the accuracy ratio against its floor: the one definition the simulator
    and the robot share (scalars or numpy arrays). The energy term is capped at :data:`ENERGY_NORM_MAX`."""
    return RewardTerms(
        energy_norm=_clip(energy_j / e_ref_j, -np.inf, ENERGY_NORM_MAX),
        fps_shortfall=np.maximum(0.0, (target_fps - fps) / target_fps),
        accuracy_loss=np.maximum(0.0, accuracy_floor - accuracy_ratio),
    )


@lru_cache(maxsize=1)
def agreement_calibration() -> tuple[float, float]:
    """(intercept, slope) of the map from the shadow agreement (the mean of per-frame confident agreements with the
    full configuration) to the accuracy table's ratio (the confident agreement over all held-out frames, over the
    full configuration's).

    Both are 1.0 for the full configuration and both are AP@0.5 against full's confident detections; they differ as
    a mean of per-frame APs differs from the AP of the pooled matches. The line is fitted on the same held-out frames
    for every uniform configuration (:mod:`agra_ros.detectors.ssd.calibrate`); the file is the default detector's
    registry entry's. Without one, or when the file calibrates another shadow proxy (``shadow_metric`` other than
    :data:`~agra_ros.perception.agreement.SHADOW_METRIC`: files before issue 21 calibrated an F1), the identity."""
    path = shipped_agreement_calibration(DEFAULT_DETECTOR)
    if path is None or not path.is_file():
        return 0.0, 1.0
    data = json.loads(path.read_text())
    if data.get("shadow_metric") != SHADOW_METRIC:
        return 0.0, 1.0
    return float(data["intercept"]), float(data["slope"])


def calibrated_accuracy_ratio(agreement: float) -> float:
    """The robot's shadow agreement on the simulator's accuracy-ratio scale (:func:`agreement_calibration`)."""
    a, b = agreement_calibration()
    return float(min(1.5, max(0.0, a + b * agreement)))


TARGET_MET_SHARE = 0.95
"""The target FPS is *met* when the achieved FPS is at least this share of it (:func:`target_met`): the one rule of
the simulator's benchmarks ("FPS met", attainment), the policy node's ``agra/target_attainment``, the run reports
and the paper tables."""


def target_met(fps, target_fps):
    """Whether achieved FPS meets the target: ``fps >= TARGET_MET_SHARE * target_fps`` (scalars or numpy arrays)."""
    return np.asarray(fps) >= TARGET_MET_SHARE * np.asarray(target_fps)


FPS_CONSTRAINT_MISS_SHORTFALL = 0.01
"""The FPS constraint of the dual ascent counts a step as a miss when its shortfall exceeds this share of the target
(1 %). Stricter than the target-met rule (:data:`TARGET_MET_SHARE`: 5 %) on purpose: the learner prices shortfalls
the benchmarks still count as met, which keeps the policy a margin inside the rule. The shipped policy was trained
with it and the online learner keeps it."""


@dataclass
class DualAscentSettings:
    """Settings of the dual ascent on the Lagrange multipliers."""

    lr_beta: float = 2.0
    """Step size of the FPS multiplier per unit of mean constraint violation."""
    lr_gamma: float = 4.0
    """Step size of the accuracy multiplier per unit of mean constraint violation."""
    fps_miss_threshold: float = FPS_CONSTRAINT_MISS_SHORTFALL
    """A step counts as a miss of the FPS constraint when its shortfall exceeds this share of the target."""
    fps_miss_rate: float = 0.03
    """Allowed share of steps that miss the target before beta rises (the goal is <= 5 %; a margin for new traces).

    Why a share of missed steps and not the mean shortfall: with a mean-shortfall tolerance of 1 %, training traces
    looked feasible while 11-21 % of held-out steps missed the target by a little, beta decayed to ~1-2.5 with more
    training and the policy grew cheaper and less punctual. Pricing the miss *rate* ties beta to what is measured."""
    accuracy_tolerance: float = 0.005
    """Allowed mean accuracy loss below the floor before gamma rises."""
    min_value: float = 0.5
    """Lower bound of both multipliers: a constraint never becomes free, which keeps the policy near feasibility."""
    max_value: float = 50.0
    """Upper bound of both multipliers, so a transiently infeasible target cannot blow the reward scale up."""


class LagrangeMultipliers:
    """beta and gamma learned by projected dual ascent; alpha stays fixed."""

    def __init__(self, initial: RewardWeights | None = None, settings: DualAscentSettings | None = None) -> None:
        self.weights = RewardWeights(**asdict(initial or RewardWeights()))
        self.settings = settings or DualAscentSettings()

    @property
    def beta(self) -> float:
        return self.weights.beta

    @property
    def gamma(self) -> float:
        return self.weights.gamma

    def reward(self, energy_norm, fps_shortfall, accuracy_loss, switch=0.0):
        """The Lagrangian reward with the current multipliers."""
        return agra_reward(energy_norm, fps_shortfall, accuracy_loss, self.weights, switch)

    def reward_of(self, terms) -> Any:
        """:meth:`reward` of a mapping (or object) holding :data:`REWARD_TERMS` (a simulator's ``info``, the
        agent's scored terms); a missing ``switch`` (records from before the churn term) counts as 0."""
        get = terms.get if hasattr(terms, "get") else lambda k, d=None: getattr(terms, k, d)
        return self.reward(get("energy_norm"), get("fps_shortfall"), get("accuracy_loss"), get("switch", 0.0))

    def update(self, fps_shortfall: np.ndarray, accuracy_loss: np.ndarray) -> tuple[float, float]:
        """One dual-ascent step from a batch of per-step constraint terms; returns the new (beta, gamma)."""
        s = self.settings
        fps_shortfall, accuracy_loss = np.asarray(fps_shortfall, float), np.asarray(accuracy_loss, float)
        if not (np.all(np.isfinite(fps_shortfall)) and np.all(np.isfinite(accuracy_loss))):
            raise ValueError("constraint terms contain NaN or inf; refusing to update the Lagrange multipliers")
        fps_violation = float(np.mean(fps_shortfall > s.fps_miss_threshold)) - s.fps_miss_rate
        acc_violation = float(np.mean(accuracy_loss)) - s.accuracy_tolerance
        self.weights.beta = float(np.clip(self.weights.beta + s.lr_beta * fps_violation, s.min_value, s.max_value))
        self.weights.gamma = float(np.clip(self.weights.gamma + s.lr_gamma * acc_violation, s.min_value, s.max_value))
        return self.weights.beta, self.weights.gamma

    def state_dict(self) -> dict[str, float]:
        return asdict(self.weights)

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.weights = RewardWeights(**{k: float(v) for k, v in state.items()})
