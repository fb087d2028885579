"""Policy checkpoints on the robot: atomic writes, strict loads, and corrupt files moved aside (never deleted).

A robot is switched off whenever its owner likes, so a checkpoint write can be killed at any byte. The write goes to
a temporary file in the same directory, is flushed and fsync'ed, and only then renamed over the previous checkpoint
with ``os.replace`` (atomic on POSIX), after which the directory itself is fsync'ed so the rename survives a power
cut. A kill before the rename leaves the previous checkpoint whole; a kill after it leaves the new one whole.

Loading uses ``torch.load(..., weights_only=True)`` only: a checkpoint is data, never code. A file that does not
load, is of another format, or does not fit the running policy (algorithm, observation size, action heads) raises a
:class:`CheckpointError` subclass naming the reason; :func:`load_or_quarantine` then moves it aside to
``<name>.corrupt-<timestamp>`` so a person can inspect it, and the caller starts from the shipped policy. A payload
that passes these checks but does not restore (a field of the wrong type) is set aside the same way
(:func:`set_aside`). In a folder the node may not write (read-only, full), moving a file aside or removing a stale
temporary fails with a warning, never an exception: the node runs from the shipped policy either way.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = "agra_ros/policy-checkpoint"
CHECKPOINT_VERSION = 1
_TMP_MARK = ".tmp-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which file and why."""


class CorruptCheckpointError(CheckpointError):
    """The file does not load (truncated, not a torch file, unsafe content) or holds non-finite weights."""


class IncompatibleCheckpointError(CheckpointError):
    """The file loads but belongs to another format, version, algorithm, observation size or action space."""


@dataclass(frozen=True)
class CheckpointSpec:
    """What the running policy expects a checkpoint to match."""

    algorithm: str
    obs_dim: int
    action_nvec: tuple[int, ...]

    def header(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "algorithm": self.algorithm,
            "obs_dim": int(self.obs_dim),
            "action_nvec": [int(n) for n in self.action_nvec],
        }


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """Where :func:`save_checkpoint` writes before the rename (hidden, same directory, per process)."""
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")


def save_checkpoint(path: str | Path, payload: Mapping[str, Any], spec: CheckpointSpec) -> Path:
    """Write ``payload`` plus the spec header to ``path`` atomically; returns the path.

    ``payload`` may hold tensors, numbers, strings, lists and dicts of those (what ``weights_only`` loads).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = dict(payload)
    data.update(spec.header())
    data["saved_at"] = time.time()
    tmp = temporary_path(p)
    try:
        with open(tmp, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(p.parent)
    return p


def _check_finite(tree: Any, where: str) -> None:
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            raise CorruptCheckpointError(f"{where} holds NaN or inf values")
    elif isinstance(tree, float):
        if not math.isfinite(tree):
            raise CorruptCheckpointError(f"{where} is {tree}")
    elif isinstance(tree, Mapping):
        for k, v in tree.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _check_finite(v, f"{where}[{i}]")


def load_checkpoint(path: str | Path, spec: CheckpointSpec) -> dict[str, Any]:
    """Load and validate a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`FileNotFoundError` when there is none, :class:`CorruptCheckpointError` when it does not load
    or holds non-finite numbers, :class:`IncompatibleCheckpointError` when it does not fit ``spec``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle error, unsafe global: all mean "not a usable file"
        raise CorruptCheckpointError(f"{p}: does not load ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{p}: holds a {type(data).__name__}, not a checkpoint dictionary")
    if data.get("format") != CHECKPOINT_FORMAT:
        raise IncompatibleCheckpointError(f"{p}: format {data.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if data.get("version") != CHECKPOINT_VERSION:
        raise IncompatibleCheckpointError(
            f"{p}: checkpoint version {data.get('version')!r}, this reader knows {CHECKPOINT_VERSION}"
        )
    want = spec.header()
    for key in ("algorithm", "obs_dim", "action_nvec"):
        got = data.get(key)
        if isinstance(got, tuple):
            got = list(got)
        if got != want[key]:
            raise IncompatibleCheckpointError(f"{p}: {key} is {got!r}, the running policy needs {want[key]!r}")
    _check_finite({k: v for k, v in data.items() if k != "saved_at"}, p.name)
    return data


def quarantine(path: str | Path, now: float | None = None) -> Path:
    """Move ``path`` aside to ``<name>.corrupt-<UTC timestamp>`` (a counter is added if that exists)."""
    p = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = p.with_name(f"{p.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = p.with_name(f"{p.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(p, target)
    _fsync_dir(p.parent)
    return target


def remove_stale_temporaries(path: str | Path, warnings: list[str] | None = None) -> list[Path]:
    """Delete temporaries of ``path`` left by writers that were killed (their pid no longer runs).

    A temporary that cannot be deleted (read-only folder) stays, with a line appended to ``warnings``."""
    p = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(p.parent.glob(f".{p.name}{_TMP_MARK}*")) if p.parent.is_dir() else []
    except OSError as exc:
        candidates = []
        if warnings is not None:
            warnings.append(f"cannot list {p.parent} for stale temporaries: {exc}")
    for tmp in candidates:
        pid_text = tmp.name.rsplit(_TMP_MARK, 1)[-1]
        alive = pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text))
        if not alive:
            try:
                tmp.unlink(missing_ok=True)
            except OSError as exc:
                if warnings is not None:
                    warnings.append(f"cannot remove the stale temporary {tmp}: {exc}")
                continue
            removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LoadOutcome:
    """What :func:`load_or_quarantine` found."""

    status: str
    """``loaded``, ``missing``, ``quarantined`` (unusable, moved aside) or ``unusable`` (could not be moved)."""
    message: str
    payload: dict[str, Any] | None = None
    moved_to: Path | None = None
    warnings: tuple[str, ...] = ()
    """Problems that did not stop the load (a stale temporary that could not be removed)."""


def set_aside(path: str | Path, reason: str, warnings: tuple[str, ...] = ()) -> LoadOutcome:
    """Move an unusable checkpoint aside (:func:`quarantine`); where that fails, leave it and say so.

    Never raises: either way the caller starts from the shipped policy."""
    p = Path(path)
    try:
        moved = quarantine(p)
    except OSError as exc:
        return LoadOutcome(
            "unusable",
            f"unusable checkpoint ({reason}); it could not be moved aside ({exc}) and stays in place, "
            "starting from the shipped policy",
            warnings=warnings,
        )
    return LoadOutcome(
        "quarantined",
        f"unusable checkpoint ({reason}); moved aside to {moved}, starting from the shipped policy",
        moved_to=moved,
        warnings=warnings,
    )


def load_or_quarantine(path: str | Path, spec: CheckpointSpec) -> LoadOutcome:
    """Load the checkpoint if it is usable; set an unusable one aside and say so; report a missing one."""
    p = Path(path)
    warnings: list[str] = []
    remove_stale_temporaries(p, warnings)
    try:
        payload = load_checkpoint(p, spec)
    except FileNotFoundError:
        return LoadOutcome(
            "missing", f"no checkpoint at {p}: starting from the shipped policy", warnings=tuple(warnings)
        )
    except CheckpointError as exc:
        return set_aside(p, str(exc), tuple(warnings))
    return LoadOutcome("loaded", f"resumed from checkpoint {p}", payload=payload, warnings=tuple(warnings))


def to_safe_tree(state: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a nested dict that ``weights_only`` can load: tensors detached on CPU, numpy arrays as tensors."""
    import numpy as np

    out: dict[str, Any] = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().cpu().clone()
        elif isinstance(v, np.ndarray):
            out[k] = torch.from_numpy(np.ascontiguousarray(v)).clone()
        elif isinstance(v, Mapping):
            out[k] = to_safe_tree(v)
        elif isinstance(v, Sequence) and not isinstance(v, (str, bytes)):
            out[k] = [to_safe_tree({"_": x})["_"] for x in v]
        else:
            out[k] = v
    return out
