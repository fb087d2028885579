"""Reproduction commands write to a run folder by default, never into the installed package or docs/: training,
profiling, evaluation and benchmarks change shipped artefacts only when asked (``--ship`` or an explicit path)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from agra_ros.training.policy import VALIDATION_TRACES

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [
    "agra_ros/cli.py",
    "agra_ros/bench/detector_bench.py",
    "agra_ros/bench/policy_bench.py",
    "agra_ros/training/policy.py",
    "agra_ros/bench/paper_sim.py",
    "agra_ros/detectors/synthetic/profile.py",
    "agra_ros/detectors/synthetic/evaluate.py",
    "agra_ros/detectors/synthetic/train.py",
]
SHIPPED = ("data_dir", "shipped_policy_path", "default_weights_path", "docs_dir")


def test_no_argument_default_points_at_shipped_files():
    """No ``add_argument(..., default=...)`` and no dataclass default names the package's data or docs/."""
    offenders = []
    for rel in TOOLS:
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                for kw in node.keywords:
                    if kw.arg == "default":
                        text = ast.unparse(kw.value)
                        if any(s in text for s in SHIPPED) or "docs" in text or "data/" in text:
                            offenders.append(f"{rel}:{node.lineno} default={text}")
    assert not offenders, offenders


def test_policy_train_writes_a_run_folder_and_leaves_the_shipped_policy(tmp_path):
    from agra_ros.policy.registry import shipped_policy_path

    shipped = shipped_policy_path()
    before = shipped.stat().st_mtime_ns, shipped.read_bytes()
    docs_before = sorted((ROOT / "docs").iterdir()) if (ROOT / "docs").is_dir() else []
    out = subprocess.run(
        [sys.executable, "-m", "agra_ros.training.policy", "--steps", "64"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "policy_train"
    assert (run / "policy_agra.pt").is_file() and (run / "policy_train_curve.png").is_file(), out.stdout
    assert (shipped.stat().st_mtime_ns, shipped.read_bytes()) == before, "the shipped policy was overwritten"
    assert (sorted((ROOT / "docs").iterdir()) if (ROOT / "docs").is_dir() else []) == docs_before


def test_policy_train_resumes_a_finished_run_and_refuses_one_trained_on_other_inputs(tmp_path):
    def train(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "agra_ros.training.policy", "--steps", "64", "--run", "r", *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = train()
    assert first.returncode == 0, first.stderr[-3000:]
    # resumed at its last step, the run still has the memory its EWC consolidation samples
    again = train()
    assert again.returncode == 0 and "resumed" in again.stdout, again.stderr[-3000:]
    other = train("--dual-ascent")
    assert other.returncode != 0 and "trained on other inputs" in other.stderr and "dual_ascent" in other.stderr
    fresh = train("--dual-ascent", "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "resumed" not in fresh.stdout and len(list((tmp_path / "r").glob("trainer-*.pt.stale"))) == 1


def test_policy_train_ships_the_checkpoint_that_scored_best_on_validation(tmp_path):
    """Three chunks, each scored on validation: the policy written is the best-scoring chunk's weights (not simply
    the last), and its metadata says which step that was and what it scored per profile."""
    import re

    import torch

    out = subprocess.run(
        [sys.executable, "-m", "agra_ros.training.policy", "--steps", "3072", "--chunk", "1024", "--run", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    scores = [(int(s), float(v)) for s, v in re.findall(r"step (\d+)/3072 .*?validation ([0-9.]+)", out.stdout)]
    assert len(scores) == 3, out.stdout
    top = max(v for _, v in scores)  # the log rounds to 3 decimals: chunks may tie there
    shipped = torch.load(tmp_path / "r" / "policy_agra.pt", weights_only=False)
    ckpt = torch.load(tmp_path / "r" / "trainer.pt", weights_only=False)
    best_step = ckpt["best"]["step"]
    assert abs(ckpt["best"]["score"] - top) <= 5e-4 and best_step in {s for s, v in scores if v == top}, scores
    assert shipped["meta"]["selected_step"] == best_step, (scores, shipped["meta"])
    n_cases = 4 * len(VALIDATION_TRACES)  # 4 profiles x the training traces
    assert len(shipped["meta"]["validation"]) == n_cases, shipped["meta"]["validation"]
    for k, v in ckpt["best"]["gpn"].items():
        assert torch.equal(shipped["state_dict"][k], v), k
    if best_step != 3072:  # the last chunk's weights differ from the ones shipped
        assert any(not torch.equal(ckpt["gpn"][k], v) for k, v in shipped["state_dict"].items())
