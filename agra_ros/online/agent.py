"""The acting half of on-robot AGRA: observation from live data, one decision per period, reward from feedback.

The policy node is a thin adapter around :class:`OnlineAgent`: it hands over frames, device readings, perception
feedback and the target FPS as they arrive, calls :meth:`OnlineAgent.decide` at the decision rate and publishes
what comes back. Each decision closes the interval of the previous one: the feedback that arrived since is turned
into the reward terms by the function the simulator uses (:func:`agra_ros.core.reward.reward_terms`: system energy
per frame from perception's power and FPS, the shadow agreement calibrated onto the accuracy table's scale), into
the own-speed state by the simulator's builder (:meth:`agra_ros.core.contract.Contract.own_speed`) and, when
learning, into a transition for the background learner.

Learning algorithms: ``agra`` (PPO + online EWC + Lagrange multipliers, in the learner process), ``a2c`` (the
same learner with A2C settings), ``bandit`` (one-step Q-learning, cheap enough to run in place). ``rule`` and
``static`` do not learn. The safety guard overrides every algorithm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agra_ros.core.contract import Contract
from agra_ros.core.observation import LinkObservation, OwnSpeed
from agra_ros.core.reward import (
    LagrangeMultipliers,
    RewardWeights,
    calibrated_accuracy_ratio,
    reward_terms,
    switch_churn,
    system_energy_per_frame_j,
)
from agra_ros.granularity.levels import EXECUTION_TARGETS, GranularityConfig, action_nvec
from agra_ros.online.agent_settings import (  # noqa: F401  (re-exported: nodes and tests import them here)
    ALGORITHMS,
    LEARNER_ALGORITHMS,
    AgentSettings,
    learner_settings_for,
)
from agra_ros.online.checkpoint import CorruptCheckpointError
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.hold import sticky_mode
from agra_ros.online.inputs import Feedback, parse_link
from agra_ros.online.learner_settings import LearnerState
from agra_ros.online.live_accuracy import LiveAccuracy
from agra_ros.online.live_latency import LiveLatency
from agra_ros.online.safety import SafetyGuard, SafetyTransition, safety_override_configuration
from agra_ros.online.serialise import ewc_to_numpy, gpn_state_to_numpy, load_numpy_state
from agra_ros.workload.features import WorkloadFeatures


@dataclass
class Decision:
    """What :meth:`OnlineAgent.decide` returns for the node to publish."""

    config: GranularityConfig
    source: str
    """``policy``, ``accuracy_mask`` (the policy's choice replaced to keep the live accuracy floor) or ``safety``."""
    reward: float | None = None
    """Reward of the previous decision's interval (None when it could not be scored)."""
    terms: dict[str, float] = field(default_factory=dict)
    """energy_norm, fps_shortfall, accuracy_loss, switch, fps of the previous interval."""
    safety: SafetyTransition | None = None
    compute_s: float = 0.0
    """Time spent deciding (observation, policy, bookkeeping)."""


@dataclass
class _Pending:
    obs: np.ndarray
    action: np.ndarray
    logprob: float
    target_fps: float
    learnable: bool
    bandit: tuple[int, int] | None = None
    ran: np.ndarray | None = None
    """The configuration that ran instead of ``action`` (the node held the one in force: min hold time)."""


class OnlineAgent:
    """Builds (W, D, P) from live inputs, decides, scores decisions and collects experience."""

    def __init__(self, settings: AgentSettings, reference: Contract | None = None) -> None:
        from agra_ros.policy.registry import GPNPolicy, make_policy, shipped_policy_path

        if settings.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {settings.algorithm!r}; known: {', '.join(ALGORITHMS)}")
        self.s = settings
        self.ref = reference or Contract.load(settings.device_profile)
        self.n_layers = self.ref.n_layers
        self.layer_names = self.ref.layer_names
        self.layout = self.ref.layout
        torch.manual_seed(settings.seed)
        self.rng = np.random.default_rng(settings.seed)
        self._mode_base: np.ndarray | None = None
        """The last mode decision's action: the choices sticky_mode keeps near a tie."""
        self.shipped = ""
        name = settings.algorithm
        shipped = shipped_policy_path(name)
        self.policy = make_policy(name, self.layout, self.n_layers)
        if settings.start_from_shipped and shipped.is_file() and hasattr(self.policy, "load"):
            self.policy.load(shipped)  # raises a clear ValueError when it does not fit this detector/layout
            self.shipped = str(shipped)
        self.gpn = self.policy.gpn if isinstance(self.policy, GPNPolicy) else None
        weights = getattr(self.policy, "multipliers", None)
        self.multipliers = LagrangeMultipliers(RewardWeights(**weights.state_dict()) if weights else None)
        self.updates = 0
        policy_ewc = getattr(self.policy, "ewc", None)
        self.ewc_state: dict[str, Any] | None = ewc_to_numpy(policy_ewc) if policy_ewc is not None else None
        """EWC anchor of the learner: the shipped policy's consolidation on simulator states, so that learning on
        the robot starts anchored to what was learned across devices."""
        self.guard = SafetyGuard(settings.critical_temp_c, settings.recover_margin_c)
        self.live = LiveAccuracy(self.ref.model)
        self.live_latency = LiveLatency()
        """This robot's latency against the cost table, per configuration and pooled (the state's slowdown)."""
        self.masked = 0
        """Decisions the live accuracy mask replaced."""
        self.unmeasured = 0
        """Decisions whose interval held no measured frame (no feedback, or FPS 0 only): not scored or learned from."""
        self.learning = False
        # live inputs
        self.target_fps = 30.0
        self._w: np.ndarray | None = None
        self._d = self.ref.default_device_vector()
        self._temp_c: float | None = None
        self._throttling = False
        self._device_critical_c: float | None = None
        self._interval: list[Feedback] = []
        self._last_fb: Feedback | None = None
        self._last_fb_t = -math.inf
        self._last_accuracy = 1.0
        """Accuracy ratio of the latest shadow run, on the simulator's scale."""
        self._own_speed = OwnSpeed()
        """What the robot measured of its own speed over the last scored decision (the simulator's builder)."""
        self._link: LinkObservation | None = None
        """The link to a perception server as perception last measured it (None: no link stats heard yet)."""
        self._ran_before: tuple[int, ...] | None = None
        """The configuration that ran over the last scored decision: the churn term's previous (None after a gap)."""
        # bookkeeping
        self._pending: _Pending | None = None
        self._segment: list[tuple[_Pending, dict[str, float]]] = []
        self._segment_start = True
        self._batches: list[ExperienceBatch] = []
        self.decisions = 0
        self.last_reward: float | None = None

    # ------------------------------------------------------------------ inputs
    @property
    def nvec(self) -> tuple[int, ...]:
        """Sizes of the action heads (one per layer, then scale, then target)."""
        return tuple(action_nvec(self.n_layers))

    def set_workload(self, features: WorkloadFeatures) -> None:
        """W from perception's feedback (its backbone's embedding, motion, frame size and detections)."""
        w = features.vector()
        if w.shape != (self.layout.w_dim,) or not np.all(np.isfinite(w)):
            raise ValueError(f"workload vector must be {self.layout.w_dim} finite numbers, got {w.shape}")
        self._w = w

    def set_device(
        self, d_vector: np.ndarray, temp_c: float | None, throttling: bool, critical_temp_c: float | None = None
    ) -> None:
        d = np.asarray(d_vector, dtype=np.float32).ravel()
        if d.shape != (self.layout.d_dim,) or not np.all(np.isfinite(d)):
            raise ValueError(f"device vector must be {self.layout.d_dim} finite numbers, got {d}")
        self._d = d
        self._temp_c = temp_c
        self._throttling = bool(throttling)
        self._device_critical_c = critical_temp_c

    def set_target(self, fps: float) -> None:
        self.target_fps = float(fps)

    def set_link(self, rtt_ms: float, uplink_mbps: float, loss: float) -> None:
        """P's link entries from the latest feedback's link stats (:func:`~agra_ros.online.inputs.parse_link`)."""
        self._link = parse_link(rtt_ms, uplink_mbps, loss, self._default_rtt_s)

    @property
    def _default_rtt_s(self) -> float:
        """RTT P shows while nothing was measured: the setting, else the simulator's default."""
        return self.ref.link_rtt_s if self.s.link_rtt_s is None else self.s.link_rtt_s

    def _link_observation(self) -> LinkObservation:
        """The measured link, or "no server" when none was heard or remote execution is off (as the simulator's
        episodes without a server, where remote is masked to local too)."""
        if self._link is None or not self.s.allow_remote:
            return LinkObservation(rtt_s=self._default_rtt_s)
        return self._link

    def add_feedback(
        self, fb: Feedback, now: float, config: GranularityConfig | None = None, tracked: bool | None = None
    ) -> None:
        """One frame's feedback; ``config`` (the configuration that produced it) teaches the live accuracy model
        when the frame had a shadow measurement of the detector alone: interval 1, or a keyframe (``tracked``
        False) of a longer interval."""
        self._interval.append(fb)
        self._last_fb, self._last_fb_t = fb, now
        if fb.has_accuracy:
            self._last_accuracy = calibrated_accuracy_ratio(fb.accuracy_proxy)
            # the live model learns the detector's agreement: a tracked frame's mixes in the tracker's
            detector_only = config is not None and (config.keyframe_interval == 1 or tracked is False)
            if detector_only and config.n_layers == self.n_layers:
                self.live.observe(config, self._last_accuracy)

    def set_learning(self, on: bool) -> None:
        """Start or stop collecting experience (the decision in flight is still filed under the old setting)."""
        self.learning = on
        if self.s.algorithm == "bandit":
            self.policy.explore = on

    # ------------------------------------------------------------------ deciding
    def _score(self, now: float) -> dict[str, float] | None:
        """Reward terms of the interval that ends now (env definitions), or None without a measured frame."""
        fbs = self._interval
        self._interval = []
        if not fbs and self._last_fb is not None and now - self._last_fb_t <= self.s.feedback_max_age_s:
            fbs = [self._last_fb]
        fbs = [f for f in fbs if f.fps > 0]  # FPS 0: perception has measured no rate yet (its first frames)
        if not fbs:  # energy per frame would be power over nothing: no reward, experience, bandit or dual ascent
            self.unmeasured += self._pending is not None
            self._ran_before = None  # a gap, as an episode's start: the next decision pays no churn
            return None
        target = self._pending.target_fps if self._pending is not None else self.target_fps
        fps = float(np.mean([f.fps for f in fbs]))
        energy = float(system_energy_per_frame_j(float(np.mean([f.power_w for f in fbs])), fps))
        acc = [f.accuracy_proxy for f in fbs if f.has_accuracy]
        acc_ratio = calibrated_accuracy_ratio(float(np.mean(acc))) if acc else self._last_accuracy
        floor = self.ref.accuracy_floor if self.s.accuracy_floor is None else self.s.accuracy_floor
        switch = 0.0
        if self._pending is not None:
            latency_s = float(np.mean([f.latency_ms for f in fbs])) / 1e3
            ran = self._pending.action if self._pending.ran is None else self._pending.ran
            key = tuple(int(x) for x in np.asarray(ran).ravel())
            switch, self._ran_before = switch_churn(self._ran_before, key), key  # the simulator's churn
            tracker_s = float(self.ref.tracker_latency_s(float(np.mean([f.objects for f in fbs]))))
            self.live_latency.observe(key, latency_s, self.ref.table_latency_s(ran, tracker_s))
            slowdown = self.live_latency.slowdown_log2(key) if self.s.calibrate_speed else None
            self._own_speed = self.ref.own_speed(latency_s, fps, target, ran, slowdown, tracker_s)
        t = reward_terms(energy, self.ref.reference_energy_j(target), fps, target, acc_ratio, floor)
        return {
            "fps": fps,
            "energy_norm": float(t.energy_norm),
            "fps_shortfall": float(t.fps_shortfall),
            "accuracy_loss": float(t.accuracy_loss),
            "switch": switch,
        }

    def _observation(self) -> np.ndarray:
        assert self._w is not None
        return self.ref.observation(
            self._w,
            self._d,
            self.target_fps,
            self._own_speed,
            self._last_accuracy,
            self.s.accuracy_floor,
            self._link_observation(),
        )

    @property
    def ready(self) -> bool:
        """True once perception has reported a W (a feedback with its workload embedding)."""
        return self._w is not None

    def decide(self, now: float | None = None) -> Decision:
        """Score the previous decision, build the observation, apply safety or the policy; the next config."""
        t0 = time.perf_counter()
        now = time.monotonic() if now is None else now
        if not self.ready:
            raise RuntimeError("no workload profile yet: W comes with perception's first feedback (no frame yet)")
        terms = self._score(now)
        reward = None
        if terms is not None and self._pending is not None:
            reward = float(self.multipliers.reward_of(terms))
            self.last_reward = reward
        obs = self._observation()
        self._record(terms, reward, obs)
        transition = self.guard.update(self._temp_c, self._throttling, self._device_critical_c)
        if self.guard.engaged:
            config = safety_override_configuration(self.n_layers)
            self._pending = _Pending(obs, np.asarray(config.to_action()), 0.0, self.target_fps, learnable=False)
            source = "safety"
        else:
            action, logprob, bandit = self._act(obs)
            config = GranularityConfig.from_action(action, self.n_layers)
            learnable, source = self.learning and not math.isnan(logprob), "policy"  # NaN: the mode
            if self.s.live_accuracy != "none":
                floor = self.ref.accuracy_floor if self.s.accuracy_floor is None else self.s.accuracy_floor
                config, replaced = self.live.guard(config, floor, self.s.live_accuracy)
                if replaced:  # not the policy's sample: not learned from, as the safety override is not
                    action, learnable, bandit, source = np.asarray(config.to_action()), False, None, "accuracy_mask"
                    self.masked += 1
            self._pending = _Pending(obs, action, logprob, self.target_fps, learnable=learnable, bandit=bandit)
        self.decisions += 1
        return Decision(config, source, reward, terms or {}, transition, time.perf_counter() - t0)

    def ran_instead(self, config: GranularityConfig) -> None:
        """The node commanded ``config`` instead of this decision's (:mod:`agra_ros.online.hold`): the own-speed
        state then measures what ran; experience keeps the decision (the hold is the environment's delay)."""
        if self._pending is not None:
            self._pending.ran = np.asarray(config.to_action())

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int] | None]:
        local = EXECUTION_TARGETS.index("local")
        if self.gpn is not None:
            x = torch.as_tensor(obs, dtype=torch.float32)[None]
            explore = self.learning and self.rng.random() < self.s.explore_share  # else the sticky mode (hold.py)
            with torch.no_grad():
                if explore:
                    a, _, _, _ = self.gpn.get_action_and_value(x)
                else:
                    logits = [lg[0].numpy() for lg in self.gpn.logits(x)]
                    a = torch.as_tensor(sticky_mode(logits, self._mode_base, self.s.stick_margin))[None]
                if not self._link_observation().server:  # as the simulator masks it
                    a[..., self.n_layers + 1] = local  # the target head (the interval head follows it)
                logprob = math.nan  # NaN: not a sample, not experience
                if explore:  # log-prob of the action that actually runs (PPO's old log-prob)
                    _, lp, _, _ = self.gpn.get_action_and_value(x, a)
                    logprob = float(lp[0])
                else:
                    self._mode_base = a[0].numpy().copy()
            return a[0].numpy().astype(np.int64), logprob, None
        if self.s.algorithm == "bandit" and self.learning:
            ctx, arm = self.policy.select(obs)
            action = self.policy.arm_action(arm)
            bandit = (ctx, arm)
        else:
            action, bandit = np.asarray(self.policy.act(obs), dtype=np.int64), None
        if not self._link_observation().server:  # as the simulator masks it
            action = action.copy()
            action[self.n_layers + 1] = local
        return action, 0.0, bandit

    # ------------------------------------------------------------------ experience
    def _record(self, terms: dict[str, float] | None, reward: float | None, obs: np.ndarray) -> None:
        """File the closed interval of the previous decision as experience (or as a gap)."""
        prev = self._pending
        if prev is None:
            return
        if prev.bandit is not None and reward is not None:
            self.policy.update(prev.bandit[0], prev.bandit[1], reward)
        if not (prev.learnable and terms is not None and self.s.algorithm in LEARNER_ALGORITHMS):
            self._close_segment(obs)
            return
        self._segment.append((prev, terms))
        if len(self._segment) >= self.s.batch_steps:
            self._close_segment(obs)

    def _close_segment(self, next_obs: np.ndarray | None) -> None:
        seg, self._segment = self._segment, []
        if seg and next_obs is not None:
            n = len(seg)
            starts = np.zeros(n)
            starts[0] = 1.0 if self._segment_start else 0.0
            self._batches.append(
                ExperienceBatch(
                    obs=np.stack([p.obs for p, _ in seg]).astype(np.float32),
                    actions=np.stack([p.action for p, _ in seg]).astype(np.int64),
                    logprobs=np.array([p.logprob for p, _ in seg], dtype=np.float32),
                    energy_norm=np.array([t["energy_norm"] for _, t in seg]),
                    fps_shortfall=np.array([t["fps_shortfall"] for _, t in seg]),
                    accuracy_loss=np.array([t["accuracy_loss"] for _, t in seg]),
                    switch=np.array([t["switch"] for _, t in seg]),
                    next_obs=np.asarray(next_obs, dtype=np.float32),
                    starts=starts,
                )
            )
            self._segment_start = False
        elif not seg:
            self._segment_start = True

    def take_experience(self) -> list[ExperienceBatch]:
        out, self._batches = self._batches, []
        return out

    # ------------------------------------------------------------------ weights and checkpoints
    def learner_state(self) -> LearnerState:
        """Where a (re)started learner begins: the acting weights, multipliers, EWC state and counters."""
        if self.gpn is None:
            raise RuntimeError(f"{self.s.algorithm} has no learner")
        return LearnerState(gpn_state_to_numpy(self.gpn), self.multipliers.state_dict(), self.ewc_state, self.updates)

    def apply_learner_state(self, state: LearnerState) -> None:
        """Act with the learner's new weights from the next decision on."""
        if self.gpn is None:
            return
        load_numpy_state(self.gpn, state.policy)
        self.multipliers.load_state_dict(state.lagrange)
        self.ewc_state = state.ewc
        self.updates = state.updates

    def checkpoint_payload(self) -> dict[str, Any]:
        """Plain data for :func:`agra_ros.online.checkpoint.save_checkpoint`."""
        payload: dict[str, Any] = {
            "lagrange": self.multipliers.state_dict(),
            "updates": self.updates,
            "decisions": self.decisions,
        }
        if self.gpn is not None:
            payload["policy"] = {k: v.detach().clone() for k, v in self.gpn.state_dict().items()}
            if self.ewc_state is not None:
                payload["ewc"] = {
                    **self.ewc_state,
                    "fisher": [torch.as_tensor(f) for f in self.ewc_state["fisher"]],
                    "anchor": [torch.as_tensor(a) for a in self.ewc_state["anchor"]],
                }
        elif self.s.algorithm == "bandit":
            payload["policy"] = {
                "q": torch.from_numpy(self.policy.q.copy()),
                "counts": torch.from_numpy(self.policy.counts.copy()),
            }
        return payload

    def restore(self, payload: dict[str, Any]) -> None:
        """Resume from a checkpoint payload (already validated against this agent's spec).

        Raises :class:`CorruptCheckpointError` when a field does not restore (wrong type or shape under a header
        that fits); the agent may then be half restored, so the caller starts a fresh one."""
        try:
            self._restore(payload)
        except Exception as exc:  # noqa: BLE001 - the payload is data from disk: whatever it breaks, it is unusable
            raise CorruptCheckpointError(f"a field does not restore ({type(exc).__name__}: {exc})") from None

    def _restore(self, payload: dict[str, Any]) -> None:
        if self.gpn is not None:
            self.gpn.load_state_dict(payload["policy"])
            ewc = payload.get("ewc")
            if ewc is not None:
                self.ewc_state = {
                    **ewc,
                    "fisher": [f.numpy() for f in ewc["fisher"]],
                    "anchor": [a.numpy() for a in ewc["anchor"]],
                }
        elif self.s.algorithm == "bandit" and "policy" in payload:
            q, counts = payload["policy"]["q"].numpy(), payload["policy"]["counts"].numpy()
            if q.shape != self.policy.q.shape:
                raise ValueError(f"bandit table of shape {q.shape}, expected {self.policy.q.shape}")
            self.policy.q, self.policy.counts = q.copy(), counts.copy()
        self.multipliers.load_state_dict(payload["lagrange"])
        self.updates = int(payload.get("updates", 0))

    @property
    def learns(self) -> bool:
        """Whether this algorithm can learn online at all."""
        return self.s.algorithm in (*LEARNER_ALGORITHMS, "bandit")
