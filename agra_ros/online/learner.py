"""The learning itself: :class:`OnlineLearner`, PPO (+ online EWC, + dual ascent) on on-robot experience.

Kept apart from the process that runs it (:mod:`agra_ros.online.learner_process`) so that a test or a benchmark
(``agra-ros bench policy online``) can drive the very same updates in-process, without queues or a child.
"""

from __future__ import annotations

import numpy as np
import torch

from agra_ros.core.reward import DualAscentSettings, LagrangeMultipliers, RewardWeights
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.learner_settings import LearnerSettings, LearnerState
from agra_ros.online.serialise import ewc_from_numpy, ewc_to_numpy, gpn_state_to_numpy, load_numpy_state
from agra_ros.policy.ewc import OnlineEWC, WorkloadShift
from agra_ros.policy.gpn import GPN, GPNSpec
from agra_ros.policy.memory import PrioritisedMemory
from agra_ros.policy.ppo import compute_gae, ppo_epochs


class OnlineLearner:
    """PPO (+ online EWC, + dual ascent) on batches of on-robot experience; runs inside the learner process.

    Kept free of any process machinery so a test can drive it directly.
    """

    MAX_PENDING_ROLLOUTS = 4
    """Rollouts of experience kept waiting for an update; older experience is dropped (it is stale for PPO)."""

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
            ewc_from_numpy(self.ewc, state.ewc)
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
        self.dropped_steps = 0
        """Decisions of experience dropped unlearned because too many rollouts waited."""
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
        self.push(batch)
        done = 0
        while self.step():
            done += 1
        return done

    def push(self, batch: ExperienceBatch) -> None:
        """Queue experience without updating; beyond :attr:`MAX_PENDING_ROLLOUTS` rollouts waiting (a learner held
        back by its budget), the oldest batches are dropped and counted in :attr:`dropped_steps`."""
        batch.validate(self.gpn.spec.obs_dim, len(self.gpn.nvec))
        if self.shift is not None:
            for w in batch.obs[:, : self.s.w_dim]:
                self._shift_seen |= self.shift.update(w)
        self._pending.append(batch)
        self._pending_steps += len(batch)
        while len(self._pending) > 1 and self._pending_steps > self.MAX_PENDING_ROLLOUTS * self.s.rollout_steps:
            old = self._pending.pop(0)
            self._pending_steps -= len(old)
            self.dropped_steps += len(old)

    @property
    def due(self) -> bool:
        """A full rollout waits: :meth:`step` would update."""
        return self._pending_steps >= self.s.rollout_steps

    def step(self) -> bool:
        """One PPO update on the oldest full rollout waiting; False when none waits."""
        if not self.due:
            return False
        rollout = ExperienceBatch.concatenate(self._pending)
        n = self.s.rollout_steps
        head, rest = rollout.split(n)
        self._pending = [rest] if rest is not None else []
        self._pending_steps = len(rollout) - n
        self.update(head)
        return True

    def update(self, b: ExperienceBatch) -> dict[str, float]:
        """One PPO update on one rollout: consolidation first if the workload shifted, then dual ascent."""
        s, ppo = self.s, self.s.ppo
        if s.ewc and self._shift_seen and self.memory is not None and len(self.memory) >= 32:
            states, _, _ = self.memory.sample(s.fisher_samples)
            self.ewc.consolidate(self.gpn, states, seed=ppo.seed + self.updates)
        self._shift_seen = False
        rewards = self.multipliers.reward_of(b).astype(np.float64)
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
