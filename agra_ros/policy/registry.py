"""One interface for every policy, so a node or a benchmark swaps them by name.

``Policy``: ``act(obs) -> action`` (the MultiDiscrete action / ``agra/granularity`` indices), ``save(path)``,
``load(path)``. :func:`make_policy` builds "agra", "a2c", "bandit", "rule", "static" or "oracle". Checkpoints
are written with ``torch.save`` and read with ``torch.load(weights_only=True)``; every observation is validated
(shape, NaN/inf, documented bounds) and a bad one raises :class:`InvalidObservationError` (a ValueError).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from agra_ros.core.observation import InvalidObservationError, ObservationLayout
from agra_ros.core.reward import LagrangeMultipliers
from agra_ros.granularity.levels import action_nvec
from agra_ros.paths import data_dir
from agra_ros.policy.baselines import BanditPolicy, RulePolicy, StaticPolicy, _load_checked
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.gpn import GPN, GPNSpec, build_gpn
from agra_ros.policy.oracle import OraclePolicy

POLICY_NAMES: tuple[str, ...] = ("agra", "a2c", "bandit", "rule", "static", "oracle")


class Policy(Protocol):
    name: str

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def save(self, path: str | Path) -> None: ...

    def load(self, path: str | Path) -> None: ...


def shipped_policy_path(name: str = "agra") -> Path:
    """The policy pretrained in the simulator that ships with the package: ``policy_<name>.pt`` (agra, and the
    learning baselines a2c and bandit, so that each starts on the robot from its own pretraining)."""
    return data_dir() / f"policy_{name}.pt"


class GPNPolicy:
    """A GPN acting greedily (the mode of every head): "agra" (PPO + EWC + Lagrangian reward) or "a2c"."""

    def __init__(
        self,
        name: str,
        layout: ObservationLayout,
        n_layers: int,
        hidden: int = 128,
        gpn: GPN | None = None,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.layout = layout
        self.n_layers = n_layers
        self.gpn = gpn or build_gpn(layout.dim, action_nvec(n_layers), hidden, seed=seed)
        self.multipliers = LagrangeMultipliers()
        self.ewc: OnlineEWC | None = None
        self.meta: dict[str, Any] = {}

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.gpn.act(self.layout.validate(obs), deterministic=True)

    def save(self, path: str | Path) -> None:
        """Atomic write (temporary file + rename) of weights, shape, layout, multipliers and EWC state."""
        p = Path(path)
        state = {
            "policy": self.name,
            "spec": self.gpn.spec.to_dict(),
            "layout": {
                "w_dim": self.layout.w_dim,
                "d_dim": self.layout.d_dim,
                "w_bound": self.layout.w_bound,
                "d_low": [float(v) for v in self.layout.d_low or ()],
                "d_high": [float(v) for v in self.layout.d_high or ()],
            },
            "n_layers": self.n_layers,
            "state_dict": self.gpn.state_dict(),
            "multipliers": self.multipliers.state_dict(),
            "ewc": self.ewc.state_dict() if self.ewc is not None else None,
            "meta": self.meta,
        }
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + f".tmp{os.getpid()}")
        torch.save(state, tmp)
        tmp.replace(p)

    def load(self, path: str | Path) -> None:
        state = _load_checked(path, self.name)
        spec = GPNSpec(int(state["spec"]["obs_dim"]), tuple(state["spec"]["nvec"]), int(state["spec"]["hidden"]))
        if spec.obs_dim != self.layout.dim or list(spec.nvec) != action_nvec(self.n_layers):
            raise ValueError(
                f"{path}: policy for obs_dim {spec.obs_dim} and actions {list(spec.nvec)}, this setup needs "
                f"{self.layout.dim} and {action_nvec(self.n_layers)}"
            )
        gpn = GPN(spec)
        gpn.load_state_dict(state["state_dict"])
        self.gpn = gpn
        self.multipliers.load_state_dict(state["multipliers"])
        if state.get("ewc") is not None:
            self.ewc = OnlineEWC()
            self.ewc.load_state_dict(state["ewc"])
        self.meta = dict(state.get("meta") or {})


def layout_from_state(state: dict) -> tuple[ObservationLayout, int]:
    """The observation layout and layer count a saved GPN policy (its loaded checkpoint) was trained for."""
    lay = state["layout"]
    layout = ObservationLayout(
        int(lay["w_dim"]),
        int(lay["d_dim"]),
        float(lay["w_bound"]),
        tuple(lay["d_low"]) or None,
        tuple(lay["d_high"]) or None,
    )
    return layout, int(state["n_layers"])


def load_policy(path: str | Path, env: Any = None) -> Policy:
    """A saved policy of the kind its file names. A GPN policy carries its observation layout; the others take the
    layout and layer count from ``env``."""
    path = Path(path)
    state = _load_checked(path, None)
    name = state["policy"]
    if name in ("agra", "a2c"):
        layout, n_layers = layout_from_state(state)
        pol: Policy = GPNPolicy(name, layout, n_layers)
    else:
        pol = make_policy(name, env=env)
    pol.load(path)
    return pol


def make_policy(
    name: str, layout: ObservationLayout | None = None, n_layers: int | None = None, env: Any = None, **kwargs: Any
) -> Policy:
    """Build a policy by name. ``layout``/``n_layers`` default to the env's; "oracle" needs ``env``.

    ``make_policy("agra")`` with no arguments loads the shipped pretrained policy.
    """
    if name not in POLICY_NAMES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    if env is not None:
        base = getattr(env, "unwrapped", env)
        layout = layout or base.layout
        n_layers = n_layers or base.n_layers
    if name == "oracle":
        return OraclePolicy(env, kwargs.get("weights"))
    if name == "agra" and layout is None and shipped_policy_path().is_file():
        return load_policy(shipped_policy_path())
    if layout is None or n_layers is None:
        raise ValueError(f"policy {name!r} needs an observation layout and a layer count (or env=)")
    if name in ("agra", "a2c"):
        return GPNPolicy(name, layout, n_layers, **kwargs)
    if name == "bandit":
        return BanditPolicy(n_layers, layout, **kwargs)
    if name == "rule":
        return RulePolicy(n_layers, layout, **kwargs)
    return StaticPolicy(n_layers, layout)


__all__ = [
    "POLICY_NAMES",
    "Policy",
    "GPNPolicy",
    "InvalidObservationError",
    "load_policy",
    "make_policy",
    "shipped_policy_path",
]
