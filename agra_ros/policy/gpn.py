"""GPN, the granularity policy network: an MLP from (W, D, P) to one categorical distribution per switchable layer
plus one per global knob (resolution scale, execution target), with a separate value head for PPO.

Actor and critic are separate MLPs (as in CleanRL's ``Agent``), so EWC can consolidate the policy's parameters
without freezing the critic, which must keep tracking a changing reward. The input is standardised by fixed
buffers (``obs_mean``, ``obs_std``) measured once on simulator states and saved with the weights, so the policy
node feeds the raw (W, D, P) vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


@dataclass(frozen=True)
class GPNSpec:
    """Shape of a GPN: everything needed to rebuild it before loading weights."""

    obs_dim: int
    """Length of the flat (W, D, P) observation."""
    nvec: tuple[int, ...]
    """Number of choices of every categorical head: one per layer, then scale, then target."""
    hidden: int = 128
    """Width of both hidden layers of actor and critic."""

    def to_dict(self) -> dict:
        return {**asdict(self), "nvec": list(self.nvec)}


def _layer(n_in: int, n_out: int, std: float = float(np.sqrt(2))) -> nn.Linear:
    """Linear layer with orthogonal weights and zero bias (the PPO implementation detail that matters)."""
    lin = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.zeros_(lin.bias)
    return lin


class GPN(nn.Module):
    """Granularity policy network with a value head."""

    def __init__(self, spec: GPNSpec) -> None:
        super().__init__()
        self.spec = spec
        self.nvec = tuple(int(n) for n in spec.nvec)
        h = spec.hidden
        self.actor = nn.Sequential(
            _layer(spec.obs_dim, h), nn.Tanh(), _layer(h, h), nn.Tanh(), _layer(h, sum(self.nvec), std=0.01)
        )
        self.critic = nn.Sequential(_layer(spec.obs_dim, h), nn.Tanh(), _layer(h, h), nn.Tanh(), _layer(h, 1, 1.0))
        self.register_buffer("obs_mean", torch.zeros(spec.obs_dim))
        self.register_buffer("obs_std", torch.ones(spec.obs_dim))

    # ----------------------------------------------------------------- normaliser
    def set_normaliser(self, observations: np.ndarray | torch.Tensor, min_std: float = 0.1) -> None:
        """Fix the input standardisation from a sample of observations (rows).

        ``min_std`` keeps near-constant entries (most single embedding dimensions vary by ~0.01) from being blown
        up into noise that would drown the few entries that matter (targets, feedback, device state).
        """
        x = torch.as_tensor(np.asarray(observations), dtype=torch.float32).reshape(-1, self.spec.obs_dim)
        self.obs_mean.copy_(x.mean(0))
        self.obs_std.copy_(x.std(0).clamp_min(min_std))

    def _norm(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.obs_mean) / self.obs_std).clamp(-10.0, 10.0)

    # ----------------------------------------------------------------- heads
    def policy_parameters(self) -> list[nn.Parameter]:
        """Parameters of the action distribution (what EWC consolidates)."""
        return list(self.actor.parameters())

    def logits(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """One logit tensor (batch, n_i) per categorical head."""
        return list(torch.split(self.actor(self._norm(obs)), self.nvec, dim=-1))

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._norm(obs)).squeeze(-1)

    def distributions(self, obs: torch.Tensor) -> list[Categorical]:
        return [Categorical(logits=lg, validate_args=False) for lg in self.logits(obs)]

    def get_action_and_value(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action, log-prob of the joint action, entropy of the joint distribution, value): CleanRL's signature."""
        dists = self.distributions(obs)
        if action is None:
            action = torch.stack([d.sample() for d in dists], dim=-1)
        logprob = torch.stack([d.log_prob(a) for d, a in zip(dists, action.unbind(-1))], dim=-1).sum(-1)
        entropy = torch.stack([d.entropy() for d in dists], dim=-1).sum(-1)
        return action, logprob, entropy, self.get_value(obs)

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Decide for one observation (or a batch): the mode of every head, or a sample."""
        x = torch.as_tensor(obs, dtype=torch.float32)
        single = x.ndim == 1
        if single:
            x = x.unsqueeze(0)
        if deterministic:
            a = torch.stack([lg.argmax(-1) for lg in self.logits(x)], dim=-1)
        else:
            a = torch.stack([torch.multinomial(torch.softmax(lg, -1), 1).squeeze(-1) for lg in self.logits(x)], -1)
        out = a.numpy().astype(np.int64)
        return out[0] if single else out


def build_gpn(obs_dim: int, nvec: Sequence[int], hidden: int = 128, seed: int | None = None) -> GPN:
    """A fresh GPN (seeded for reproducible initial weights)."""
    if seed is not None:
        torch.manual_seed(seed)
    return GPN(GPNSpec(int(obs_dim), tuple(int(n) for n in nvec), int(hidden)))
