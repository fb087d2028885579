"""Checkpoints: atomic under SIGKILL at any moment, strict on load, corrupt files moved aside and never deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ros_harness import read_only_dir

from agra_ros.online.checkpoint import (
    CheckpointSpec,
    CorruptCheckpointError,
    IncompatibleCheckpointError,
    load_checkpoint,
    load_or_quarantine,
    remove_stale_temporaries,
    save_checkpoint,
    set_aside,
    temporary_path,
)

SPEC = CheckpointSpec("agra", obs_dim=8, action_nvec=(5, 5, 3, 2))


def _payload(value: float = 1.0) -> dict:
    return {"policy": {"w": torch.full((4, 8), value), "b": torch.zeros(4)}, "lagrange": {"beta": 2.0}, "updates": 3}


def test_roundtrip_and_header(tmp_path):
    p = save_checkpoint(tmp_path / "policy.pt", _payload(0.5), SPEC)
    data = load_checkpoint(p, SPEC)
    assert torch.equal(data["policy"]["w"], torch.full((4, 8), 0.5))
    assert data["updates"] == 3 and data["algorithm"] == "agra" and data["action_nvec"] == [5, 5, 3, 2]
    assert not temporary_path(p).exists()


@pytest.mark.parametrize(
    "other",
    [
        CheckpointSpec("a2c", 8, (5, 5, 3, 2)),
        CheckpointSpec("agra", 9, (5, 5, 3, 2)),
        CheckpointSpec("agra", 8, (5, 5, 5, 3, 2)),
    ],
)
def test_incompatible_checkpoint_is_refused(tmp_path, other):
    p = save_checkpoint(tmp_path / "policy.pt", _payload(), SPEC)
    with pytest.raises(IncompatibleCheckpointError):
        load_checkpoint(p, other)


def test_non_finite_weights_are_corrupt(tmp_path):
    bad = _payload()
    bad["policy"]["w"][0, 0] = float("nan")
    p = save_checkpoint(tmp_path / "policy.pt", bad, SPEC)
    with pytest.raises(CorruptCheckpointError, match="NaN"):
        load_checkpoint(p, SPEC)


def test_pickled_code_is_refused_by_weights_only(tmp_path):
    p = tmp_path / "policy.pt"
    torch.save({"format": "agra_ros/policy-checkpoint", "payload": Path("/etc")}, p)  # a non-tensor global
    with pytest.raises(CorruptCheckpointError, match="does not load"):
        load_checkpoint(p, SPEC)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_moved_aside_and_reported(tmp_path, damage):
    p = save_checkpoint(tmp_path / "policy.pt", _payload(), SPEC)
    raw = p.read_bytes()
    if damage == "truncate":
        p.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        p.write_bytes(b"not a checkpoint at all" * 10)
    else:
        p.write_bytes(b"")
    damaged = p.read_bytes()
    out = load_or_quarantine(p, SPEC)
    assert out.status == "quarantined" and out.payload is None
    assert "moved aside" in out.message and str(p) in out.message
    assert not p.exists()
    assert out.moved_to is not None and out.moved_to.name.startswith("policy.pt.corrupt-")
    assert out.moved_to.read_bytes() == damaged  # kept byte for byte, never deleted
    # a second corrupt file in the same second gets its own name
    p.write_bytes(b"again")
    second = load_or_quarantine(p, SPEC)
    assert second.moved_to != out.moved_to and out.moved_to.exists() and second.moved_to.exists()


def test_missing_checkpoint(tmp_path):
    out = load_or_quarantine(tmp_path / "none.pt", SPEC)
    assert out.status == "missing" and out.payload is None


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    p = tmp_path / "policy.pt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = p.with_name(f".{p.name}.tmp-{dead.pid}")
    stale.write_bytes(b"partial")
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = p.with_name(f".{p.name}.tmp-{writer.pid}")
        live.write_bytes(b"in progress")  # another process that is alive may still be writing it
        own = temporary_path(p)
        own.write_bytes(b"left by an earlier process with our pid")
        removed = remove_stale_temporaries(p)
        assert stale in removed and not stale.exists()
        assert own in removed and not own.exists()
        assert live.exists()
    finally:
        writer.kill()
        writer.wait()


WRITER = r"""
import sys, torch
from agra_ros.online.checkpoint import CheckpointSpec, save_checkpoint
spec = CheckpointSpec("agra", obs_dim=8, action_nvec=(5, 5, 3, 2))
i = 0
while True:
    i += 1
    save_checkpoint(sys.argv[1], {"policy": {"w": torch.full((2_000_000,), float(i))}, "step": i}, spec)
    print(i, flush=True)
"""


def test_sigkill_during_writes_always_leaves_a_loadable_checkpoint(tmp_path):
    """A child rewrites an 8 MB checkpoint in a loop; we SIGKILL it at varied moments, mostly mid-write."""
    target = tmp_path / "policy.pt"
    killed_mid_write = 0
    for trial in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # at least one complete checkpoint exists now
        assert first.strip(), "writer produced nothing"
        time.sleep(0.01 + 0.037 * trial)
        tmp = target.with_name(f".{target.name}.tmp-{proc.pid}")
        mid_write = tmp.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_mid_write += mid_write
        data = load_checkpoint(target, SPEC)
        step = data["step"]
        assert step >= 1
        assert torch.all(data["policy"]["w"] == float(step)), "checkpoint mixes two writes"
        remove_stale_temporaries(target)
        assert not tmp.exists()
    assert killed_mid_write >= 1, "no kill landed during a write; the test did not test anything"


def test_read_only_folder_never_raises_it_warns_and_leaves_files_in_place(tmp_path):
    """Issue 11: in a read-only folder, moving a corrupt file aside or removing a stale temporary raised
    PermissionError on every start. Now both are warnings and the caller starts from the shipped policy."""
    folder = tmp_path / "ro"
    folder.mkdir()
    p = folder / "policy.pt"
    p.write_bytes(b"not a checkpoint at all" * 10)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = p.with_name(f".{p.name}.tmp-{dead.pid}")
    stale.write_bytes(b"partial")
    with read_only_dir(folder):
        out = load_or_quarantine(p, SPEC)
        assert out.status == "unusable" and out.payload is None and out.moved_to is None
        assert "could not be moved aside" in out.message and "shipped policy" in out.message
        assert any(str(stale) in w for w in out.warnings), out.warnings
        assert p.exists() and stale.exists()
        with pytest.raises(OSError):
            save_checkpoint(p, _payload(), SPEC)  # a failed save raises for the caller to count and report
        assert not temporary_path(p).exists()
    assert p.read_bytes().startswith(b"not a checkpoint")  # untouched


def test_set_aside_moves_a_checkpoint_whose_fields_do_not_restore(tmp_path):
    p = save_checkpoint(tmp_path / "policy.pt", _payload(), SPEC)
    out = set_aside(p, "lagrange is a list")
    assert out.status == "quarantined" and "lagrange is a list" in out.message and out.moved_to.exists()
    assert not p.exists()
