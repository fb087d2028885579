"""GPN weights and EWC state as plain numpy data, and back.

Numpy rather than tensors because this is what crosses the learner's process boundary (a queue of pickled data)
and what :class:`agra_ros.online.learner_settings.LearnerState` and the checkpoints hold; the acting agent, the
learner and the online benchmark convert with these same functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from agra_ros.policy.ewc import OnlineEWC


def gpn_state_to_numpy(gpn: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in gpn.state_dict().items()}


def load_numpy_state(gpn: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    gpn.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})


def ewc_to_numpy(ewc: OnlineEWC) -> dict[str, Any] | None:
    """The EWC state as plain numpy data (what crosses the process boundary and goes into checkpoints)."""
    if not ewc.ready:
        return None
    st = ewc.state_dict()
    st["fisher"] = [t.numpy().copy() for t in st["fisher"]]
    st["anchor"] = [t.numpy().copy() for t in st["anchor"]]
    return st


def ewc_from_numpy(ewc: OnlineEWC, st: Mapping[str, Any]) -> None:
    """Load into ``ewc`` a state written by :func:`ewc_to_numpy`."""
    ewc.load_state_dict(
        {
            **st,
            "fisher": [torch.as_tensor(np.asarray(f)) for f in st["fisher"]],
            "anchor": [torch.as_tensor(np.asarray(a)) for a in st["anchor"]],
        }
    )
