"""Workload traces: the shipped YAML files load, phases are found by time, bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agra_ros.workload.scene_types import SceneParams
from agra_ros.workload.trace import Phase, Trace, TraceError, available_traces

GOOD = """
name: t
loop: {loop}
phases:
  - name: a
    duration_s: 2
    density: 10
    resolution: [320, 240]
    target_fps: 15
  - name: b
    duration_s: 3
    density: [20, 30]
    resolution: [640, 480]
    target_fps: 25
    scene: {{noise: 2.0}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["default", "trace_a", "trace_b", "heldout", "bench", "video"])
def test_shipped_traces_load_and_make_valid_scenes(name: str) -> None:
    assert name in available_traces()
    trace = Trace.load(name)
    assert trace.total_duration > 0 and trace.phases
    for phase in trace.phases:
        assert isinstance(phase, Phase)
        SceneParams(**phase.scene_changes())  # every phase is a valid scene


def test_default_trace_changes_density_and_fps() -> None:
    trace = Trace.load("default")
    assert 45 <= trace.total_duration <= 90
    assert len({p.target_fps for p in trace.phases}) >= 3
    assert len({p.density for p in trace.phases}) >= 3


def test_trace_a_and_b_are_clearly_different() -> None:
    a, b = Trace.load("trace_a"), Trace.load("trace_b")
    assert max(p.mean_density for p in a.phases) * 3 < min(p.mean_density for p in b.phases)
    assert min(p.target_fps for p in a.phases) > 2 * max(p.target_fps for p in b.phases)


def test_phase_at_loops_or_clamps(tmp_path: Path) -> None:
    looped = Trace.load(_write(tmp_path, GOOD.format(loop="true")))
    assert looped.total_duration == 5.0
    assert [looped.phase_at(t).name for t in (0.0, 1.99, 2.0, 4.9, 5.0, 7.5, -1.0)] == [
        "a",
        "a",
        "b",
        "b",
        "a",
        "b",
        "a",
    ]
    clamped = Trace.load(_write(tmp_path, GOOD.format(loop="false")))
    assert clamped.phase_at(100.0).name == "b"
    phase = looped.phase_at(0.0)
    assert phase.density == (5, 15) and phase.mean_density == 10
    assert looped.phases[1].scene_changes() == {
        "width": 640,
        "height": 480,
        "min_objects": 20,
        "max_objects": 30,
        "noise": 2.0,
    }
    with pytest.raises(ValueError):
        looped.phase_at(float("nan"))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("duration_s: 2", "duration_s: -2", "duration_s must be > 0"),
        ("duration_s: 2", "duration_s: 0", "duration_s must be > 0"),
        ("target_fps: 15", "target_fps: 0", "target_fps"),
        ("target_fps: 15", "target_fps: fast", "target_fps must be a finite number"),
        ("target_fps: 15", "target_fps_rel: 0", "target_fps_rel must be in"),
        ("target_fps: 15", "target_fps: 15\n    target_fps_rel: 1.2", "exactly one of target_fps"),
        ("target_fps: 15", "", "exactly one of target_fps"),
        ("resolution: [320, 240]", "resolution: [320]", "resolution"),
        ("resolution: [320, 240]", "resolution: [10, 240]", "resolution"),
        ("density: 10", "density: [30, 20]", "density"),
        ("density: 10", "density: -4", "density"),
        ("    duration_s: 2\n", "", "missing"),
        ("scene: {{noise: 2.0}}", "scene: {{width: 3}}", "not allowed"),
        ("scene: {{noise: 2.0}}", "scene: {{noise: -1}}", "noise"),
        ("name: a", "name: a\n    colour: red", "unknown"),
    ],
)
def test_invalid_phase_is_rejected_with_reason(tmp_path: Path, replace: str, by: str, message: str) -> None:
    assert replace in GOOD
    text = GOOD.replace(replace, by, 1)
    with pytest.raises(TraceError, match=message):
        Trace.load(_write(tmp_path, text.format(loop="true")))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="not found"):
        Trace.load("no_such_trace")
    with pytest.raises(TraceError, match="not found"):
        Trace.load(tmp_path / "absent.yaml")
    with pytest.raises(TraceError, match="not valid YAML"):
        Trace.load(_write(tmp_path, "phases: [\n  - {duration_s: 1"))
    with pytest.raises(TraceError, match="mapping"):
        Trace.load(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(TraceError, match="phases"):
        Trace.load(_write(tmp_path, "name: empty\nphases: []\n"))
    with pytest.raises(TraceError, match="loop"):
        Trace.load(_write(tmp_path, GOOD.format(loop="'sometimes'")))
    assert issubclass(TraceError, ValueError)


def test_relative_targets_bind_on_every_device_and_refuse_an_unknown_rate() -> None:
    trace = Trace.load("heldout_rel")
    assert trace.relative and not Trace.load("heldout").relative
    assert Trace.load("heldout").resolved(None) == Trace.load("heldout")  # absolute traces need no rate
    for full in (4.7, 38.8):  # a Jetson Nano at 5 W, x86: the same trace asks 1.1-1.8x of each
        targets = [p.target_fps for p in trace.resolved(full).phases]
        assert targets == pytest.approx([1.3 * full, 1.1 * full, 1.8 * full])
        assert not trace.resolved(full).relative
    for unknown in (None, 0.0, float("nan")):
        with pytest.raises(TraceError, match="phase 'medium-1.3x': target_fps_rel 1.3 needs the device's full"):
            trace.resolved(unknown)
