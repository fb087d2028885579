"""Bad start-up settings of every node end in one clear line and exit code 2, never a traceback (real processes)."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack

import pytest
from ros_harness import node_process, read_log

pytestmark = pytest.mark.ros

SYNTHETIC = {"detector": "synthetic"}  # fast to load; the check happens before any detector is built anyway
BAD_SETTINGS = [
    ("perception", {**SYNTHETIC, "device": "tpu"}, "device='tpu' is not one of cpu, cuda"),
    ("perception", {**SYNTHETIC, "reliability": "sometimes"}, "reliability='sometimes' is not one of"),
    ("perception", {**SYNTHETIC, "threads": 0}, "threads=0 is outside [1, 64]"),
    ("perception", {**SYNTHETIC, "threads": "abc"}, "threads='abc' is not an integer"),
    ("perception", {**SYNTHETIC, "score_threshold": 2.0}, "score_threshold=2.0 is outside [0.0, 1.0]"),
    ("perception", {**SYNTHETIC, "fallback_timeout_s": 0.0}, "fallback_timeout_s=0.0 is outside"),
    ("policy", {"algorithm": "foo"}, "algorithm='foo' is not one of"),
    ("policy", {"device_profile": "nope"}, "unknown device profile 'nope'"),
    ("policy", {"image_reliability": "sometimes"}, "image_reliability='sometimes' is not one of"),
    ("policy", {"target_fps": 1000.0}, "target_fps=1000.0 is outside [0.5, 240.0]"),
    ("policy", {"target_fps": "fast"}, "target_fps='fast' is not a number"),
    ("policy", {"decision_rate_hz": 0.0}, "decision_rate_hz=0.0 is outside"),
    ("policy", {"rollout_steps": 1}, "rollout_steps=1 is outside [8, 4096]"),
    ("camera_source", {"reliability": "sometimes"}, "reliability='sometimes' is not one of"),
    ("camera_source", {"trace": "nonexistent"}, "trace 'nonexistent' not found"),
    ("camera_source", {"width": 0}, "width=0 is outside [32, 3840]"),
    ("device_monitor", {"rate_hz": 0.0}, "rate_hz=0.0 is outside"),
]


def test_bad_startup_settings_of_every_node_exit_2_with_one_line(tmp_path):
    """All at once (each exits by itself within seconds), so the list costs one start-up, not seventeen."""
    with ExitStack() as stack:
        procs = [
            (stack.enter_context(node_process(mod, params, tmp_path, f"{mod}-{i}")), mod, params, text)
            for i, (mod, params, text) in enumerate(BAD_SETTINGS)
        ]
        for proc, _, _, _ in procs:
            proc.wait(timeout=240)
    for proc, mod, params, text in procs:
        log = read_log(proc)
        assert proc.returncode == 2, f"{mod} {params}: exit {proc.returncode}\n{log}"
        assert "Traceback" not in log and f"cannot start: {text}" in log, f"{mod} {params}:\n{log}"
        assert log.count("cannot start") == 1, log


def test_a_trace_with_a_target_outside_the_bounds_is_a_startup_error(tmp_path):
    trace = tmp_path / "fast.yaml"
    trace.write_text(
        "name: fast\nphases:\n  - {name: blur, duration_s: 5, density: 2, resolution: [320, 240], target_fps: 500}\n"
    )
    with node_process("camera_source", {"trace": str(trace)}, tmp_path) as proc:
        assert proc.wait(timeout=120) == 2
    log = read_log(proc)
    assert "phase 'blur'" in log and "outside [0.5, 240]" in log and "Traceback" not in log, log


@pytest.mark.parametrize("argv", [["demo", "--duration", "0"], ["launch", "--duration", "-1"]])
def test_cli_durations_must_be_positive(argv):
    out = subprocess.run([sys.executable, "-m", "agra_ros.cli", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "must be a positive number of seconds" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
