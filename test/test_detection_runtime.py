"""PerceptionRuntime and its parts without ROS: commands, fallback, pacing, shadow agreement, energy."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from agra_ros.granularity.levels import (
    LEVELS,
    GranularityCommandError,
    GranularityConfig,
    GranularityError,
    fallback_configuration,
)
from agra_ros.perception.agreement import box_iou, detection_agreement
from agra_ros.perception.energy import EnergyMeter
from agra_ros.perception.pacing import RatePacer, ShadowScheduler, SlidingRate
from agra_ros.perception.runtime import PerceptionRuntime
from agra_ros.perception.watchdog import CommandWatchdog

N = 4


@dataclass
class Dets:
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def dets(boxes, labels=None, scores=None) -> Dets:
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(b)
    return Dets(
        b,
        np.asarray(scores if scores is not None else [0.9] * n, dtype=np.float32),
        np.asarray(labels if labels is not None else [0] * n, dtype=np.int64),
    )


class FakeDetector:
    """Returns one box per frame whose position depends on the active configuration (to test the shadow)."""

    class_names = ("a", "b")

    def __init__(self) -> None:
        self.config: GranularityConfig | None = None
        self.set_calls = 0
        self.detect_calls: list[GranularityConfig] = []

    def switchable_layer_names(self) -> list[str]:
        return [f"l{i}" for i in range(N)]

    def set_config(self, config: GranularityConfig) -> None:
        self.config = config
        self.set_calls += 1

    def detect(self, images, score_threshold=0.3):
        assert self.config is not None
        self.detect_calls.append(self.config)
        shift = 0.0 if self.config.levels[0] == "full" else 30.0 * (self.config.levels[0] == "neuron-25")
        return [dets([[10 + shift, 10, 50 + shift, 50]], [1], [0.8]) for _ in images]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class LinearPower:
    """E = 2 J per busy second + 1e-9 J per MAC; P = 1 W + E * fps."""

    def detector_energy_per_frame_j(self, busy_s, macs=0.0, bytes=0.0):
        return 2.0 * busy_s + 1e-9 * macs

    def power_w(self, detector_energy_j, fps):
        return 1.0 + detector_energy_j * fps


def make_runtime(**kw) -> tuple[PerceptionRuntime, FakeDetector, Clock]:
    det, clock = FakeDetector(), Clock()
    busy = iter(np.arange(0.0, 1000.0, 0.01))  # every busy-clock read advances 10 ms
    rt = PerceptionRuntime(
        det,
        GranularityConfig.uniform("neuron-50", N),
        clock=clock,
        busy_clock=lambda: float(next(busy)),
        **kw,
    )
    return rt, det, clock


IMG = np.zeros((48, 64, 3), np.uint8)


# ---------------------------------------------------------------------- commands
def test_decode_roundtrip_and_each_kind_of_malformed_command():
    cfg = GranularityConfig(("full", "partitioned", "neuron-25", "neuron-75"), 0.75, "remote")
    assert GranularityConfig.from_indices(cfg.to_indices(), N) == cfg
    cases = {
        "wrong_length": [0, 0, 0, 0, 0],
        "unknown_level": [0, len(LEVELS), 0, 0, 0, 0],
        "unknown_scale": [0, 0, 0, 0, 9, 0],
        "unknown_target": [0, 0, 0, 0, 0, 2],
    }
    for kind, data in cases.items():
        with pytest.raises(GranularityCommandError) as info:
            GranularityConfig.from_indices(data, N)
        assert info.value.kind == kind
        assert isinstance(info.value, ValueError) and str(info.value)


def test_fallback_configuration_parsing():
    assert fallback_configuration("", N) == GranularityConfig.uniform("neuron-50", N)
    assert fallback_configuration("FF22/0.5/local", N) == GranularityConfig(("full",) * 2 + ("neuron-25",) * 2, 0.5)
    with pytest.raises(GranularityError):
        fallback_configuration("FFF", N)
    with pytest.raises(GranularityError):
        fallback_configuration("FFXF", N)


# ---------------------------------------------------------------------- watchdog
def test_watchdog_enters_once_and_recovers_once():
    w = CommandWatchdog(2.0, now=0.0)
    assert w.check(1.9) is None and not w.in_fallback
    assert w.check(2.0) == CommandWatchdog.ENTERED
    assert w.check(5.0) is None  # reported once
    assert w.in_fallback and w.fallbacks == 1
    assert w.command(6.0) == CommandWatchdog.RECOVERED
    assert w.command(6.5) is None
    assert w.check(8.4) is None
    assert w.check(8.5) == CommandWatchdog.ENTERED and w.fallbacks == 2
    with pytest.raises(ValueError):
        CommandWatchdog(0.0, now=0.0)


def test_runtime_fallback_and_remote_runs_locally():
    rt, det, clock = make_runtime(fallback_timeout_s=1.0, shadow_share=0.0)
    assert rt.active_config() == rt.fallback_config  # nothing commanded yet
    cmd = GranularityConfig(("neuron-25",) * N, 1.0, "remote")
    cfg, transition = rt.command(cmd.to_indices())
    assert cfg == cmd and transition is None and rt.wants_remote()
    res = rt.process(IMG)  # a remote frame that runs here runs the fallback (safe) configuration
    assert res.config == rt.fallback_config and res.config.execution_target == "local"
    assert det.config == res.config
    assert rt.stats.remote_run_locally == 1
    clock.t += 1.5
    assert rt.check_fallback() == CommandWatchdog.ENTERED
    assert rt.process(IMG).config == rt.fallback_config
    _, transition = rt.command(GranularityConfig.uniform("full", N).to_indices())
    assert transition == CommandWatchdog.RECOVERED
    assert rt.process(IMG).config == GranularityConfig.uniform("full", N)
    assert rt.stats.switches == 1  # fallback (the remote frame ran it here), fallback, full


def test_malformed_command_keeps_previous_configuration():
    rt, _, _ = make_runtime(shadow_share=0.0)
    good = GranularityConfig.uniform("neuron-75", N)
    rt.command(good.to_indices())
    with pytest.raises(GranularityCommandError):
        rt.command([0, 1])
    assert rt.active_config() == good
    assert rt.watchdog.commands == 1


# ---------------------------------------------------------------------- pacing and rates
def test_pacer_holds_the_target_rate():
    p = RatePacer(None)
    assert p.delay(0.0) == 0.0
    p.set_rate(10.0)
    t, starts = 0.0, []
    while t < 10.0:  # frames offered at 100 Hz
        if p.delay(t) == 0.0:
            p.started(t)
            starts.append(t)
        t += 0.01
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 9.5 <= rate <= 10.5
    assert 0.08 < p.delay(starts[-1]) <= 0.1 + 1e-9
    with pytest.raises(ValueError):
        p.set_rate(0.0)
    with pytest.raises(ValueError):
        p.set_rate(math.nan)


def test_pacer_catches_up_at_most_half_a_period():
    p = RatePacer(10.0)
    p.started(0.0)
    p.started(0.35)  # late by 0.25 s: the next start may come half a period later, not immediately
    assert p.delay(0.35) == pytest.approx(0.05)


def test_sliding_rate_and_shadow_schedule():
    r = SlidingRate(window_s=1.0)
    for i in range(21):
        r.tick(i * 0.05)
    assert r.rate() == pytest.approx(20.0)
    assert r.rate(now=5.0) == 0.0  # stale: nothing in the window
    s = ShadowScheduler(0.25)
    picks = [s.next() for _ in range(100)]
    assert sum(picks) == 25 and picks[3] and not picks[0]
    assert not any(ShadowScheduler(0.0).next() for _ in range(50))
    assert all(ShadowScheduler(1.0).next() for _ in range(50))
    with pytest.raises(ValueError):
        ShadowScheduler(1.5)


# ---------------------------------------------------------------------- shadow agreement
def test_box_iou_values():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_detection_agreement_is_f1_of_class_aware_matches():
    ref = dets([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [0, 1, 2])
    assert detection_agreement(ref, ref) == 1.0
    assert detection_agreement(dets([]), dets([])) == 1.0
    assert detection_agreement(dets([]), ref) == 0.0
    assert detection_agreement(ref, dets([])) == 0.0
    # two of three found, one false positive: P = 2/3, R = 2/3
    act = dets([[0, 0, 10, 10], [21, 21, 40, 40], [100, 100, 110, 110]], [0, 1, 0])
    assert detection_agreement(act, ref) == pytest.approx(2 / 3)
    # right place, wrong class: no match
    assert detection_agreement(dets([[0, 0, 10, 10]], [1]), dets([[0, 0, 10, 10]], [0])) == 0.0
    # one reference box cannot be matched twice
    assert detection_agreement(dets([[0, 0, 10, 10], [0, 0, 10, 10]]), dets([[0, 0, 10, 10]])) == pytest.approx(2 / 3)


def test_shadow_runs_full_configuration_on_its_share_of_frames():
    rt, det, _ = make_runtime(shadow_share=0.5)
    rt.command(GranularityConfig.uniform("neuron-25", N).to_indices())
    results = [rt.process(IMG) for _ in range(4)]
    measured = [r.accuracy_proxy for r in results if not math.isnan(r.accuracy_proxy)]
    assert len(measured) == 2 and rt.stats.shadow_frames == 2
    # the fake shifts neuron-25 boxes by 30 px: no IoU>=0.5 overlap with the full run
    assert measured == [0.0, 0.0]
    assert GranularityConfig.uniform("full", N) in det.detect_calls
    rt.command(GranularityConfig.uniform("neuron-50", N).to_indices())
    assert [rt.process(IMG).accuracy_proxy for _ in range(2)][1] == 1.0  # same boxes as full
    # the reference itself is not run twice
    rt.command(GranularityConfig.uniform("full", N).to_indices())
    n_calls = len(det.detect_calls)
    out = [rt.process(IMG).accuracy_proxy for _ in range(2)]
    assert out[1] == 1.0 and len(det.detect_calls) == n_calls + 2


# ---------------------------------------------------------------------- energy, feedback, catalogue
def test_energy_from_busy_time_and_cost_and_feedback_vector():
    meter = EnergyMeter(LinearPower(), "model:test", cost_of=lambda cfg: (1e8, 0.0))
    rt, _, clock = make_runtime(shadow_share=0.0, energy=meter)
    r1 = rt.process(IMG)
    clock.t += 0.1
    r2 = rt.process(IMG)
    assert r2.busy_s == pytest.approx(0.01)
    assert r2.detector_energy_per_frame_j == pytest.approx(2.0 * 0.01 + 0.1)
    assert r2.fps == pytest.approx(10.0)
    assert r2.power_w == pytest.approx(1.0 + r2.detector_energy_per_frame_j * 10.0)
    assert r1.fps == 0.0
    assert math.isnan(r2.accuracy_proxy) and r2.objects == 1
    assert r2.mean_confidence == pytest.approx(0.8)
    no_energy, _, _ = make_runtime(shadow_share=0.0)
    assert math.isnan(no_energy.process(IMG).detector_energy_per_frame_j)


def test_catalogue_names_layers_levels_and_fallback_configuration():
    rt, _, _ = make_runtime(detector_name="fake")
    cat = rt.catalogue()
    assert cat["layers"] == ["l0", "l1", "l2", "l3"]
    assert cat["levels"] == list(LEVELS)
    assert cat["fallback_configuration"] == "5555/1/local" and cat["detector"] == "fake"
    assert set(cat) >= {"resolution_scales", "execution_targets"}


def test_runtime_rejects_bad_settings():
    rt, _, _ = make_runtime()
    with pytest.raises(ValueError):
        rt.set_score_threshold(1.5)
    with pytest.raises(ValueError):
        rt.set_fallback_timeout(0.0)
    with pytest.raises(GranularityError):
        rt.set_fallback_config(GranularityConfig.uniform("full", N + 1))


def test_annotate_draws_boxes_and_lines_on_a_copy():
    from agra_ros.perception.annotate import annotate

    img = np.full((120, 160, 3), 128, np.uint8)
    out = annotate(img, np.array([[40, 50, 100, 110]]), np.array([0.9]), np.array([1]), ["a", "b"], ["12.0 FPS"])
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 128).all()  # the input frame is not drawn on
    assert (out[108:112, 60:80] != 128).any()  # bottom edge of the box
    assert (out[0:10, 0:40] != 128).any()  # status line band
    assert (out[70:90, 60:80] == 128).all()  # inside the box stays clear


def test_energy_source_names_the_profile_actually_used():
    """``auto`` is resolved: a figure's source label names the profile whose numbers it used."""
    from agra_ros.device.profiles import default_profile_name
    from agra_ros.perception.energy import make_energy_meter

    assert make_energy_meter("auto").source == f"model:{default_profile_name()}"
    assert make_energy_meter("jetson_orin_nano").source == "model:jetson_orin_nano"


def test_keyframe_interval_detects_every_kth_frame_and_tracks_in_between():
    """Temporal granularity: at k=3 the detector runs on frames 0, 3, 6 and the tracker on the others; the
    tracked frames say so, cost the detector nothing, and an interval outside the catalogue is a bad command."""
    rng = np.random.default_rng(0)
    texture = np.repeat(np.repeat(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), 4, 0), 4, 1)
    rt, det, clock = make_runtime(shadow_share=0.0)
    cmd = GranularityConfig.uniform("full", N).to_indices()
    config, _ = rt.command(cmd, keyframe_interval=3)
    assert config.keyframe_interval == 3 and config.short().endswith("/k3")
    results = []
    for _ in range(7):
        clock.t += 0.1
        results.append(rt.process(texture))
    assert [r.tracked for r in results] == [False, True, True, False, True, True, False]
    assert len(det.detect_calls) == 3 and rt.stats.tracked_frames == 4
    assert all(len(r.detections.boxes) == 1 for r in results)  # the box follows the (still) image
    assert det.set_calls == 1, "a keyframe interval is not a detector switch"
    assert results[0].motion == 0.0 and all(r.motion == 0.0 for r in results)  # a still camera
    with pytest.raises(GranularityCommandError) as exc:
        rt.command(cmd, keyframe_interval=5)
    assert exc.value.kind == "unknown_interval"
    assert rt.requested_config().keyframe_interval == 3  # the bad command changed nothing
    rt.command(cmd, keyframe_interval=1)
    clock.t += 0.1
    assert not rt.process(texture).tracked
    rt.command(cmd, keyframe_interval=2)
    clock.t += 0.1
    assert not rt.process(texture).tracked, "after interval 1 the tracker starts from a fresh keyframe"
    assert "keyframe_intervals" in rt.catalogue()


def test_a_scene_cut_forces_a_keyframe():
    rng = np.random.default_rng(1)
    texture = np.repeat(np.repeat(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), 4, 0), 4, 1)
    rt, det, clock = make_runtime(shadow_share=0.0)
    rt.command(GranularityConfig.uniform("full", N).to_indices(), keyframe_interval=6)
    rt.process(texture)
    res = rt.process(np.zeros_like(texture))  # the lights go out
    assert not res.tracked and res.motion > 30
    assert rt.stats.forced_keyframes == {"scene cut": 1} and len(det.detect_calls) == 2
