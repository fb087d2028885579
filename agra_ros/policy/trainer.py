"""The simulator trainer of the GPN: PPO (:mod:`agra_ros.policy.ppo`) on a batch of gymnasium environments.

Works with any gymnasium environment with a flat Box observation and a MultiDiscrete action. Environments are
stepped in a small synchronous batch (:class:`EnvBatch`) that autoresets in the same step and bootstraps truncated
episodes from the value of their final observation. Kept apart from the update so that the on-robot learner, which
shares :func:`agra_ros.policy.ppo.ppo_epochs` and :class:`agra_ros.policy.ppo.PPOSettings`, never imports gymnasium.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from agra_ros.core.reward import LagrangeMultipliers
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.gpn import GPN, build_gpn
from agra_ros.policy.memory import PrioritisedMemory
from agra_ros.policy.ppo import PPOSettings, compute_gae, ppo_epochs


# --------------------------------------------------------------------------------------------- environments
class EnvBatch:
    """A few gymnasium environments stepped in turn, autoreset in the same step.

    ``step`` returns (next_obs, reward, terminated, truncated, infos, final_obs) where ``final_obs[i]`` is the last
    observation of an episode that just ended (None otherwise) and ``next_obs[i]`` is already the reset one.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], seed: int = 0) -> None:
        self.envs = [fn() for fn in env_fns]
        self.seed = seed
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.episode_returns = np.zeros(len(self.envs))
        self.episode_lengths = np.zeros(len(self.envs), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self) -> np.ndarray:
        return np.stack([env.reset(seed=self.seed + i)[0] for i, env in enumerate(self.envs)])

    def step(self, actions: np.ndarray):
        obs, rews, terms, truncs, infos, finals = [], [], [], [], [], []
        for i, (env, a) in enumerate(zip(self.envs, actions)):
            o, r, te, tr, info = env.step(a)
            self.episode_returns[i] += r
            self.episode_lengths[i] += 1
            final = None
            if te or tr:
                final = o
                info = dict(info, episode_return=self.episode_returns[i], episode_length=self.episode_lengths[i])
                self.episode_returns[i] = 0.0
                self.episode_lengths[i] = 0
                o, _ = env.reset()
            obs.append(o)
            rews.append(r)
            terms.append(te)
            truncs.append(tr)
            infos.append(info)
            finals.append(final)
        return np.stack(obs), np.array(rews), np.array(terms), np.array(truncs), infos, finals

    def close(self) -> None:
        for env in self.envs:
            env.close()


# --------------------------------------------------------------------------------------------- trainer
@dataclass
class TrainResult:
    """What a run leaves behind: the policy, the learned multipliers and the logged metrics."""

    gpn: GPN
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    multipliers: LagrangeMultipliers | None = None


class PPOTrainer:
    """Runs PPO on a batch of environments; call :meth:`train` (repeatedly, for continual learning)."""

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        settings: PPOSettings | None = None,
        gpn: GPN | None = None,
        multipliers: LagrangeMultipliers | None = None,
        ewc: OnlineEWC | None = None,
        memory: PrioritisedMemory | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.s = settings or PPOSettings()
        torch.manual_seed(self.s.seed)
        np.random.seed(self.s.seed)
        self.envs = EnvBatch(env_fns, seed=self.s.seed)
        obs_space = self.envs.single_observation_space
        act_space = self.envs.single_action_space
        if not isinstance(act_space, gym.spaces.MultiDiscrete):
            raise ValueError(f"PPOTrainer needs a MultiDiscrete action space, got {act_space}")
        self.obs_dim = int(np.prod(obs_space.shape))
        self.nvec = tuple(int(n) for n in act_space.nvec)
        self.gpn = gpn or build_gpn(self.obs_dim, self.nvec, self.s.hidden, seed=self.s.seed)
        self.multipliers = (
            multipliers if multipliers is not None else (LagrangeMultipliers() if self.s.dual_ascent else None)
        )
        self.ewc = ewc
        self.memory = (
            memory
            if memory is not None
            else (
                PrioritisedMemory(self.s.memory_capacity, self.obs_dim, len(self.nvec), seed=self.s.seed)
                if self.s.memory_capacity > 0
                else None
            )
        )
        self.optimizer = torch.optim.Adam(self.gpn.parameters(), lr=self.s.learning_rate, eps=1e-5)
        self.metrics: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.global_step = 0
        self.log = log
        self._next_obs = self.envs.reset()
        self._next_done = np.zeros(len(self.envs))
        self._normaliser_set = gpn is not None  # a GPN handed in keeps the input standardisation it learned with

    def _record(self, key: str, value: float) -> None:
        self.metrics[key].append((self.global_step, float(value)))

    def _reward(self, env_reward: float, info: dict) -> float:
        if self.multipliers is None:
            return env_reward
        return float(self.multipliers.reward_of(info))

    def train(self, total_timesteps: int | None = None) -> TrainResult:
        """Collect ``total_timesteps`` more steps and update after every rollout."""
        s = self.s
        total = int(total_timesteps or s.total_timesteps)
        num_iterations = max(1, total // s.batch_size)
        N, T = len(self.envs), s.num_steps
        obs = np.zeros((T, N, self.obs_dim), dtype=np.float32)
        actions = np.zeros((T, N, len(self.nvec)), dtype=np.int64)
        logprobs = np.zeros((T, N), dtype=np.float32)
        rewards = np.zeros((T, N), dtype=np.float64)
        env_rewards = np.zeros((T, N), dtype=np.float64)
        dones = np.zeros((T, N), dtype=np.float64)
        values = np.zeros((T, N), dtype=np.float64)
        fps_short = np.zeros((T, N))
        acc_loss = np.zeros((T, N))
        if s.normalise_obs and not self._normaliser_set:  # fix the input standardisation from a short random walk
            sample = [self._next_obs]
            for _ in range(32):
                o, *_ = self.envs.step(np.stack([self.envs.single_action_space.sample() for _ in range(N)]))
                sample.append(o)
            self.gpn.set_normaliser(np.concatenate(sample))
            self._normaliser_set = True
        for iteration in range(1, num_iterations + 1):
            t0 = time.perf_counter()
            if s.anneal_lr:  # by the run's step count, so that a run trained in resumable chunks anneals as one
                left = 1.0 - self.global_step / max(1, s.total_timesteps)
                self.optimizer.param_groups[0]["lr"] = s.learning_rate * max(left, 1.0 / s.num_iterations)
            has_terms = False
            for step in range(T):
                obs[step] = self._next_obs
                dones[step] = self._next_done
                with torch.no_grad():
                    a, logp, _, v = self.gpn.get_action_and_value(torch.as_tensor(self._next_obs))
                actions[step], logprobs[step], values[step] = a.numpy(), logp.numpy(), v.numpy()
                next_obs, r, term, trunc, infos, finals = self.envs.step(actions[step])
                self.global_step += N
                for i, info in enumerate(infos):
                    if "fps_shortfall" in info:
                        has_terms = True
                        fps_short[step, i] = info["fps_shortfall"]
                        acc_loss[step, i] = info["accuracy_loss"]
                    rewards[step, i] = self._reward(r[i], info)
                    env_rewards[step, i] = r[i]
                    if finals[i] is not None:
                        self._record("charts/episodic_return", info["episode_return"])
                        self._record("charts/episodic_length", info["episode_length"])
                        if trunc[i] and not term[i]:  # time limit: bootstrap from the final observation
                            with torch.no_grad():
                                fv = self.gpn.get_value(torch.as_tensor(finals[i], dtype=torch.float32)).item()
                            rewards[step, i] += s.gamma * fv
                self._next_obs = next_obs
                self._next_done = np.logical_or(term, trunc).astype(np.float64)
            if self.memory is not None:
                self.memory.add(
                    obs.reshape(-1, self.obs_dim), actions.reshape(-1, len(self.nvec)), env_rewards.reshape(-1)
                )
            with torch.no_grad():
                next_value = self.gpn.get_value(torch.as_tensor(self._next_obs)).numpy()
            advantages, returns = compute_gae(
                rewards, values, dones, next_value, self._next_done, s.gamma, s.gae_lambda
            )
            self._update(obs, actions, logprobs, advantages, returns, values)
            if self.multipliers is not None and has_terms:
                beta, gamma = self.multipliers.update(fps_short, acc_loss)
                self._record("charts/beta", beta)
                self._record("charts/gamma", gamma)
            self._record("charts/mean_env_reward", env_rewards.mean())
            self._record("charts/fps_shortfall", fps_short.mean())
            self._record("charts/accuracy_loss", acc_loss.mean())
            self._record("charts/learning_rate", self.optimizer.param_groups[0]["lr"])
            self._record("charts/SPS", N * T / max(1e-9, time.perf_counter() - t0))
            if self.log is not None:
                self.log(
                    f"iter {iteration}/{num_iterations} step {self.global_step} "
                    f"reward {env_rewards.mean():.4f} shortfall {fps_short.mean():.4f} "
                    f"acc_loss {acc_loss.mean():.4f}"
                )
        return TrainResult(self.gpn, dict(self.metrics), self.multipliers)

    def _update(self, obs, actions, logprobs, advantages, returns, values) -> None:
        s = self.s
        b_obs = torch.as_tensor(obs.reshape(-1, self.obs_dim))
        b_actions = torch.as_tensor(actions.reshape(-1, len(self.nvec)))
        b_logprobs = torch.as_tensor(logprobs.reshape(-1))
        b_advantages = torch.as_tensor(advantages.reshape(-1), dtype=torch.float32)
        b_returns = torch.as_tensor(returns.reshape(-1), dtype=torch.float32)
        b_values = torch.as_tensor(values.reshape(-1), dtype=torch.float32)
        losses = ppo_epochs(
            self.gpn,
            self.optimizer,
            s,
            (b_obs, b_actions, b_logprobs, b_advantages, b_returns, b_values),
            self.ewc,
            np.random.shuffle,
        )
        y_pred, y_true = b_values.numpy(), b_returns.numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
        for key, value in losses.items():
            self._record(key, value)
        self._record("losses/explained_variance", float(explained_var))

    def state_dict(self) -> dict:
        """What resuming a run needs: weights (with the input standardisation), optimiser, multipliers, step count,
        the prioritised memory and the logged metrics (environments restart from fresh episodes; their draws differ
        after a resume)."""
        return {
            "gpn": self.gpn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "multipliers": self.multipliers.state_dict() if self.multipliers is not None else None,
            "global_step": self.global_step,
            "metrics": {k: [list(p) for p in v] for k, v in self.metrics.items()},
            "normaliser_set": self._normaliser_set,
            "memory": self.memory.state_dict() if self.memory is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.gpn.load_state_dict(state["gpn"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.multipliers is not None and state.get("multipliers") is not None:
            self.multipliers.load_state_dict(state["multipliers"])
        self.global_step = int(state["global_step"])
        self.metrics = defaultdict(list, {k: [tuple(p) for p in v] for k, v in state["metrics"].items()})
        self._normaliser_set = bool(state["normaliser_set"])
        if self.memory is not None and state.get("memory") is not None:
            self.memory.load_state_dict(state["memory"])

    def close(self) -> None:
        self.envs.close()
