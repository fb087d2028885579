"""PPO for the GPN, in CleanRL's order (seed, preallocated buffers, rollout under no_grad, GAE as a reverse loop,
flatten, shuffled minibatches with clipped policy and value losses, grad-norm clip, KL early stop), with GAE and
the losses as importable pure functions, and the AGRA extras switchable: Lagrangian reward with dual ascent
(:mod:`agra_ros.core.reward`), online EWC (:mod:`agra_ros.policy.ewc`) and the prioritised memory
(:mod:`agra_ros.policy.memory`).

This module holds the settings and the update only, without gymnasium: the on-robot learner imports it, and the
robot process must not load the simulator's gym stack. The simulator trainer (environments stepped in a batch,
rollouts) is :mod:`agra_ros.policy.trainer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.gpn import GPN


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
    """Decay the step size linearly over ``total_timesteps`` (counted from the trainer's first step, across calls)."""
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

    Needed, not cosmetic: entries of W can be nearly constant across states (measured with the earlier 512-d W:
    mean 0.04, spread 0.005), and Adam
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
