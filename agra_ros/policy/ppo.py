"""PPO for the GPN, in CleanRL's order (seed, preallocated buffers, rollout under no_grad, GAE as a reverse loop,
flatten, shuffled minibatches with clipped policy and value losses, grad-norm clip, KL early stop), with GAE and
the losses as importable pure functions, and the AGRA extras switchable: Lagrangian reward with dual ascent
(:mod:`agra_ros.policy.reward`), online EWC (:mod:`agra_ros.policy.ewc`) and the prioritised memory
(:mod:`agra_ros.policy.memory`).

Works with any gymnasium environment with a flat Box observation and a MultiDiscrete action. Environments are
stepped in a small synchronous batch (:class:`EnvBatch`) that autoresets in the same step and bootstraps truncated
episodes from the value of their final observation.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.gpn import GPN, build_gpn
from agra_ros.policy.memory import PrioritisedMemory
from agra_ros.policy.reward import LagrangeMultipliers


@dataclass
class PPOSettings:
    """Every setting of one PPO run (CleanRL's names)."""

    total_timesteps: int = 100_000
    """Environment steps to collect, summed over all environments."""
    num_envs: int = 8
    """Environments stepped side by side."""
    num_steps: int = 128
    """Steps per environment per rollout (batch = num_envs * num_steps)."""
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_lr: bool = False
    """Decay the step size linearly to zero over the run."""
    gamma: float = 0.9
    """Discount factor (decisions act within seconds; the thermal state is the only long-term effect)."""
    gae_lambda: float = 0.95
    """Lambda of generalised advantage estimation."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    clip_coef: float = 0.2
    """Clipping range of the probability ratio."""
    clip_vloss: bool = True
    """Clip the value loss around the old values."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus (joint entropy over all heads)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = 0.03
    """Stop the epochs of an update when the approximate KL exceeds this (None: never)."""
    hidden: int = 128
    """Hidden width of the GPN."""
    seed: int = 0
    """Seed of torch, numpy and the environments."""
    dual_ascent: bool = False
    """Learn the FPS and accuracy weights as Lagrange multipliers (reward recomputed from ``info`` terms)."""
    memory_capacity: int = 4096
    """Size of the prioritised memory (0: no memory)."""
    normalise_obs: bool = True
    """Standardise the GPN's input with statistics of a short random walk before the first update.

    Needed, not cosmetic: the 512 embedding entries of W are nearly constant (mean 0.04, spread 0.005), and Adam
    moves every weight by about the step size whatever its gradient's scale, so without centring the first layer
    turns that constant input into a large common offset that saturates the second tanh layer (measured: 100 %
    of units, output spread across states 3e-4): the policy becomes blind to the state, one fixed distribution
    whatever the target FPS or scene. A GPN handed to the trainer keeps the standardisation it was trained with.
    """

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)


# --------------------------------------------------------------------------------------------- pure functions
def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    next_value: np.ndarray,
    next_done: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation, CleanRL's reverse loop.

    ``rewards``, ``values``, ``dones``: (T, N); ``dones[t]`` says the observation at step t *starts* a new episode
    (so the value at t must not be bootstrapped into t-1). ``next_value``/``next_done``: (N,) for the observation
    after the last step. Returns (advantages, returns), both (T, N).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    dones = np.asarray(dones, dtype=np.float64)
    T = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    lastgaelam = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal = 1.0 - np.asarray(next_done, dtype=np.float64)
            nextvalues = np.asarray(next_value, dtype=np.float64)
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


def policy_loss(
    newlogprob: torch.Tensor, oldlogprob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss; returns (loss, approx_kl, old_approx_kl, clipfrac)."""
    logratio = newlogprob - oldlogprob
    ratio = logratio.exp()
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    return torch.max(pg_loss1, pg_loss2).mean(), approx_kl, old_approx_kl, clipfrac


def value_loss(
    newvalue: torch.Tensor, oldvalue: torch.Tensor, returns: torch.Tensor, clip_coef: float, clip_vloss: bool = True
) -> torch.Tensor:
    """0.5 * squared error to the returns, optionally clipped around the old values (CleanRL's form)."""
    if not clip_vloss:
        return 0.5 * ((newvalue - returns) ** 2).mean()
    v_loss_unclipped = (newvalue - returns) ** 2
    v_clipped = oldvalue + torch.clamp(newvalue - oldvalue, -clip_coef, clip_coef)
    v_loss_clipped = (v_clipped - returns) ** 2
    return 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()


def normalise_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def ppo_epochs(
    gpn: GPN,
    optimizer: torch.optim.Optimizer,
    s,
    batch: tuple[torch.Tensor, ...],
    ewc: OnlineEWC | None,
    shuffle: Callable[[np.ndarray], None],
    min_minibatch: int = 1,
) -> dict[str, float]:
    """The PPO update on one batch, shared by the simulator trainer and the on-robot learner.

    ``batch`` = (obs, actions, logprobs, advantages, returns, values); ``s`` has the PPO fields of
    :class:`PPOSettings` (epochs, minibatches, clipping, loss weights, grad clip, KL stop); ``ewc`` adds its
    penalty once consolidated; ``shuffle`` permutes the indices in place (the caller's random stream). Shuffled
    minibatches, clipped policy and value losses, entropy bonus, grad-norm clip, KL early stop. Returns the last
    minibatch's losses and the mean clip fraction.
    """
    b_obs, b_actions, b_logprobs, b_advantages, b_returns, b_values = batch
    n = len(b_obs)
    mb = max(min_minibatch, n // s.num_minibatches)
    inds = np.arange(n)
    clipfracs: list[float] = []
    approx_kl = old_approx_kl = torch.tensor(0.0)
    pg = vl = ent = pen = torch.tensor(0.0)
    for _epoch in range(s.update_epochs):
        shuffle(inds)
        for start in range(0, n, mb):
            idx = torch.as_tensor(inds[start : start + mb])
            _, newlogprob, entropy, newvalue = gpn.get_action_and_value(b_obs[idx], b_actions[idx])
            adv = b_advantages[idx]
            if s.norm_adv and len(idx) > 1:  # one sample has no spread to normalise by
                adv = normalise_advantages(adv)
            pg, approx_kl, old_approx_kl, clipfrac = policy_loss(newlogprob, b_logprobs[idx], adv, s.clip_coef)
            clipfracs.append(float(clipfrac))
            vl = value_loss(newvalue, b_values[idx], b_returns[idx], s.clip_coef, s.clip_vloss)
            ent = entropy.mean()
            loss = pg - s.ent_coef * ent + s.vf_coef * vl
            if ewc is not None and ewc.ready:
                pen = ewc.penalty(gpn)
                loss = loss + pen
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(gpn.parameters(), s.max_grad_norm)
            optimizer.step()
        if s.target_kl is not None and float(approx_kl) > s.target_kl:
            break
    return {
        "losses/policy_loss": float(pg.detach()),
        "losses/value_loss": float(vl.detach()),
        "losses/entropy": float(ent.detach()),
        "losses/old_approx_kl": float(old_approx_kl),
        "losses/approx_kl": float(approx_kl),
        "losses/clipfrac": float(np.mean(clipfracs)) if clipfracs else 0.0,
        "losses/ewc_penalty": float(pen.detach()),
    }


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
        return float(self.multipliers.reward(info["energy_norm"], info["fps_shortfall"], info["accuracy_loss"]))

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
            if s.anneal_lr:
                self.optimizer.param_groups[0]["lr"] = s.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)
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

    def close(self) -> None:
        self.envs.close()
