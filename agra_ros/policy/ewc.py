"""Online elastic weight consolidation for the GPN's policy (docs/architecture.md: EWC).

After the policy has learned one workload it is *consolidated*: the diagonal Fisher information of its action
distribution is estimated and the current parameters become the anchor. Later training pays

    penalty = (lambda / 2) * sum_i F_i * (theta_i - theta*_i)^2

so parameters that the old behaviour depends on stay near the anchor while the others are free to learn the new
workload. Done as in van de Ven's continual-learning code:

- the *true* Fisher: actions are sampled from the policy itself (not taken from the buffer), and the squared
  gradient of log pi(a|s) is averaged over states s drawn from the memory buffer (the states the old workload
  produced), one state at a time;
- *online*: at each consolidation the running Fisher decays by ``gamma`` and the new estimate is added, and the
  anchor moves to the current parameters, so memory does not grow with the number of workloads.

The Fisher of a trained policy is tiny in absolute terms and its scale depends on how confident the policy is
(measured: mean 4e-3 over the GPN, 1e-9 in saturated layers), so a fixed ``strength`` means a different pull for
every policy. By default each new estimate is divided by its mean over all parameters before it is folded in
(``normalise_fisher``): the Fisher then only says which parameters matter *relative to the others*, and
``strength`` is the pull of an average parameter, comparable across policies and consolidations.

:class:`WorkloadShift` decides *when* to consolidate on a robot where nobody announces a new workload: it tracks a
slow moving average of the workload profile W and fires when a fast average moves away from it.
"""

from __future__ import annotations

import numpy as np
import torch

from agra_ros.policy.gpn import GPN


def normalise_by_mean(fisher: list[torch.Tensor]) -> list[torch.Tensor]:
    """The Fisher divided by its mean over all parameters (unchanged when it is all zero)."""
    total = sum(float(f.sum()) for f in fisher)
    count = sum(f.numel() for f in fisher)
    if total <= 0.0 or count == 0:
        return fisher
    mean = total / count
    return [f / mean for f in fisher]


class OnlineEWC:
    """Running diagonal Fisher and anchor over the GPN's policy parameters."""

    def __init__(
        self,
        strength: float = 10.0,
        decay: float = 0.9,
        fisher_samples: int = 256,
        normalise_fisher: bool = True,
    ) -> None:
        if strength < 0 or not 0.0 <= decay <= 1.0 or fisher_samples <= 0:
            raise ValueError("EWC needs strength >= 0, 0 <= decay <= 1 and fisher_samples > 0")
        self.strength = float(strength)
        self.decay = float(decay)
        self.fisher_samples = int(fisher_samples)
        self.normalise_fisher = bool(normalise_fisher)
        self.fisher: list[torch.Tensor] | None = None
        self.anchor: list[torch.Tensor] | None = None
        self.consolidations = 0

    @property
    def ready(self) -> bool:
        """True once there is an anchor to stay near."""
        return self.anchor is not None

    def estimate_fisher(
        self, gpn: GPN, states: np.ndarray, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Diagonal true Fisher of pi(.|s): E_s E_{a~pi(.|s)} [(d log pi(a|s) / d theta)^2], one state at a time."""
        params = gpn.policy_parameters()
        fisher = [torch.zeros_like(p) for p in params]
        x = torch.as_tensor(np.asarray(states), dtype=torch.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError("estimate_fisher needs a non-empty (N, obs_dim) batch of states")
        for row in x:
            logits = gpn.logits(row.unsqueeze(0))
            logp = 0.0
            for lg in logits:
                probs = torch.softmax(lg.detach(), -1)
                a = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                logp = logp + torch.log_softmax(lg, -1).gather(-1, a.unsqueeze(-1)).sum()
            grads = torch.autograd.grad(logp, params)
            for f, g in zip(fisher, grads):
                f += g.detach() ** 2
        return [f / len(x) for f in fisher]

    def consolidate(self, gpn: GPN, states: np.ndarray, seed: int = 0) -> None:
        """Fold the Fisher at ``states`` into the running Fisher and move the anchor to the current parameters."""
        gen = torch.Generator().manual_seed(seed)
        new = self.estimate_fisher(gpn, states, gen)
        if self.normalise_fisher:
            new = normalise_by_mean(new)
        if self.fisher is None:
            self.fisher = new
        else:
            self.fisher = [self.decay * f + n for f, n in zip(self.fisher, new)]
        self.anchor = [p.detach().clone() for p in gpn.policy_parameters()]
        self.consolidations += 1

    def penalty(self, gpn: GPN) -> torch.Tensor:
        """(strength / 2) * sum F (theta - theta*)^2; zero before the first consolidation."""
        if self.fisher is None or self.anchor is None:
            return torch.zeros(())
        total = torch.zeros(())
        for p, f, a in zip(gpn.policy_parameters(), self.fisher, self.anchor):
            total = total + (f * (p - a) ** 2).sum()
        return 0.5 * self.strength * total

    def state_dict(self) -> dict:
        return {
            "strength": self.strength,
            "decay": self.decay,
            "normalise_fisher": self.normalise_fisher,
            "consolidations": self.consolidations,
            "fisher": self.fisher,
            "anchor": self.anchor,
        }

    def load_state_dict(self, state: dict) -> None:
        self.strength = float(state["strength"])
        self.decay = float(state["decay"])
        self.normalise_fisher = bool(state.get("normalise_fisher", self.normalise_fisher))
        self.consolidations = int(state["consolidations"])
        self.fisher = state["fisher"]
        self.anchor = state["anchor"]


class WorkloadShift:
    """Detects a workload shift from the stream of W vectors: fast vs slow exponential moving averages."""

    def __init__(self, threshold: float = 0.5, fast: float = 0.2, slow: float = 0.01, warmup: int = 50) -> None:
        self.threshold = float(threshold)
        self.fast_rate = float(fast)
        self.slow_rate = float(slow)
        self.warmup = int(warmup)
        self.fast: np.ndarray | None = None
        self.slow: np.ndarray | None = None
        self.seen = 0

    def update(self, w: np.ndarray) -> bool:
        """Feed one W; True when the recent workload has drifted away from the long-run one (then re-baselines)."""
        w = np.asarray(w, dtype=np.float64).ravel()
        if self.fast is None or self.slow is None:
            self.fast, self.slow = w.copy(), w.copy()
        self.fast += self.fast_rate * (w - self.fast)
        self.slow += self.slow_rate * (w - self.slow)
        self.seen += 1
        scale = np.linalg.norm(self.slow) + 1e-6
        if self.seen > self.warmup and np.linalg.norm(self.fast - self.slow) / scale > self.threshold:
            self.slow = self.fast.copy()
            self.seen = 0
            return True
        return False
