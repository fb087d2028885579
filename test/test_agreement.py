"""The confident agreement of one frame (perception's shadow accuracy proxy) is torchmetrics' mAP@0.5 of that frame."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agra_ros.detectors.pseudo_eval import above, confident_agreement, map50
from agra_ros.perception.agreement import (
    CONFIDENT_CANDIDATE_SCORE,
    CONFIDENT_REFERENCE_SCORE,
    RECALL_POINTS,
    confident_frame_agreement,
    cut,
    frame_ap,
)


def _dets(boxes, scores, labels) -> SimpleNamespace:
    return SimpleNamespace(
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        scores=np.asarray(scores, np.float32),
        labels=np.asarray(labels, np.int64),
    )


def _random_frame(rng, n_ref: int) -> tuple[SimpleNamespace, SimpleNamespace]:
    """A reference and a candidate that finds some of it (jittered, sometimes with the wrong class) plus clutter."""
    xy = rng.uniform(0, 200, (n_ref, 2))
    ref = _dets(np.c_[xy, xy + rng.uniform(10, 60, (n_ref, 2))], np.ones(n_ref), rng.integers(0, 3, n_ref))
    k = int(rng.integers(0, n_ref + 1))
    found = ref.boxes[:k] + rng.normal(0, 6, (k, 4)).astype(np.float32)
    found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 1)
    m = int(rng.integers(0, 6))
    xy = rng.uniform(0, 200, (m, 2))
    clutter = np.c_[xy, xy + rng.uniform(10, 60, (m, 2))]
    labels = np.r_[ref.labels[:k] if rng.random() < 0.8 else rng.integers(0, 3, k), rng.integers(0, 3, m)]
    scores = np.round(rng.uniform(0.1, 1.0, k + m), 1)  # coarse: ties in the ranking happen
    return ref, _dets(np.r_[found, clutter], scores, labels)


def test_recall_points_are_torchmetrics_float32_ones():
    assert RECALL_POINTS.tolist() == torch.linspace(0.0, 1.0, 101).tolist()


def test_frame_ap_equals_torchmetrics_on_one_frame():
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(120):
        ref, cand = _random_frame(rng, int(rng.integers(1, 8)))
        worst = max(worst, abs(frame_ap(cand, ref) - map50([cand], [ref])))
    assert worst < 1e-6


def test_frame_ap_cases():
    ref = _dets([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.9], [0, 1])
    assert frame_ap(ref, ref) == 1.0
    assert math.isnan(frame_ap(ref, _dets([], [], [])))  # nothing to agree with
    assert frame_ap(_dets([], [], []), ref) == 0.0
    # one class found, the other missed: mean over the reference's classes
    assert frame_ap(_dets([[0, 0, 10, 10]], [0.9], [0]), ref) == pytest.approx(0.5)
    # a false positive ranked *after* the hit costs nothing; ranked before it, AP drops
    hit, miss = [0, 0, 10, 10], [100, 100, 110, 110]
    one = _dets([[0, 0, 10, 10]], [0.9], [0])
    assert frame_ap(_dets([hit, miss], [0.9, 0.2], [0, 0]), one) == 1.0
    assert frame_ap(_dets([hit, miss], [0.2, 0.9], [0, 0]), one) == pytest.approx(0.5, abs=1e-6)
    # a box of a class the reference does not have counts nowhere
    assert frame_ap(_dets([hit, miss], [0.9, 0.95], [0, 2]), one) == 1.0


def test_confident_frame_agreement_cuts_both_sides():
    full = _dets([[0, 0, 10, 10], [50, 50, 60, 60]], [0.8, 0.4], [0, 0])  # the 0.4 box is not in the reference
    assert confident_frame_agreement(full, full) == 1.0
    weak = _dets([[0, 0, 10, 10]], [CONFIDENT_CANDIDATE_SCORE], [0])  # found, at the lowest ranked score
    assert confident_frame_agreement(weak, full) == 1.0
    too_weak = _dets([[0, 0, 10, 10]], [CONFIDENT_CANDIDATE_SCORE - 0.01], [0])
    assert confident_frame_agreement(too_weak, full) == 0.0
    unsure = _dets([[0, 0, 10, 10]], [CONFIDENT_REFERENCE_SCORE - 0.01], [0])
    assert math.isnan(confident_frame_agreement(full, unsure))


def test_one_frame_matches_the_set_form():
    rng = np.random.default_rng(3)
    ref, cand = _random_frame(rng, 5)
    full = _dets(np.r_[ref.boxes, cand.boxes[:2]], np.r_[np.full(5, 0.9), [0.3, 0.2]], np.r_[ref.labels, [0, 1]])
    assert confident_frame_agreement(cand, full) == pytest.approx(confident_agreement([cand], [full]), abs=1e-6)


def test_cut_keeps_the_embedding_and_the_order():
    d = SimpleNamespace(
        boxes=np.arange(12, dtype=np.float32).reshape(3, 4), scores=np.array([0.2, 0.5, 0.1], np.float32),
        labels=np.array([1, 2, 3]), embedding=np.ones(4, np.float32),
    )  # fmt: skip
    c = cut(d, 0.2)
    assert c.labels.tolist() == [1, 2] and c.embedding is d.embedding and len(c) == 2
    assert c.boxes.tolist() == above(d, 0.2).boxes.tolist()


def test_equals_torchmetrics_on_real_frames():
    """The SSD's own detections on held-out photos and clip frames: the per-frame form and torchmetrics agree within
    0.02 (in fact to float precision)."""
    from agra_ros.detectors import registry
    from agra_ros.detectors.ssd.distill import read_image_folder, read_video_frames
    from agra_ros.granularity.levels import GranularityConfig
    from agra_ros.workload.real_media import CLIPS, media_available, photos_dir, video_path

    if not media_available():
        pytest.skip("real media not fetched (agra-ros fetch-media)")
    torch.set_num_threads(1)
    model = registry.load("ssd")
    frames = list(read_image_folder(photos_dir())[:4]) + list(
        read_video_frames(video_path(next(iter(CLIPS))), step=20)[-4:]
    )
    n = len(model.switchable_layer_names())
    model.set_config(GranularityConfig.uniform("full", n))
    full = model.detect(frames, CONFIDENT_CANDIDATE_SCORE)
    compared = 0
    for level in ("neuron-75", "neuron-50"):
        model.set_config(GranularityConfig.uniform(level, n))
        cand = model.detect(frames, CONFIDENT_CANDIDATE_SCORE)
        for c, f in zip(cand, full):
            ref = above(f, CONFIDENT_REFERENCE_SCORE)
            if len(ref):
                assert confident_frame_agreement(c, f) == pytest.approx(map50([c], [ref]), abs=0.02)
                compared += 1
    assert compared >= 6


class ThresholdDetector:
    """Three boxes per frame at scores 0.9, 0.4 and 0.15, cut at the threshold it is asked for (as the SSD does);
    a slim configuration loses the 0.9 box's confidence (it finds it at 0.2)."""

    class_names = ("a",)
    BOXES = np.array([[10, 10, 50, 50], [60, 10, 90, 40], [5, 60, 30, 90]], np.float32)

    def __init__(self) -> None:
        self.config = None
        self.calls: list[tuple[str, float]] = []

    def switchable_layer_names(self) -> list[str]:
        return ["l0", "l1"]

    def set_config(self, config) -> None:
        self.config = config

    def detect(self, images, score_threshold=0.3):
        full = self.config.levels[0] == "full"
        self.calls.append((self.config.levels[0], score_threshold))
        scores = np.array([0.9 if full else 0.2, 0.4, 0.15], np.float32)
        keep = scores >= score_threshold
        return [SimpleNamespace(boxes=self.BOXES[keep], scores=scores[keep], labels=np.zeros(int(keep.sum()), np.int64))
                for _ in images]  # fmt: skip


def test_runtime_publishes_at_its_threshold_and_shadows_down_to_the_confident_score():
    from agra_ros.granularity.levels import GranularityConfig
    from agra_ros.perception.runtime import PerceptionRuntime

    det = ThresholdDetector()
    slim = GranularityConfig.uniform("neuron-50", 2)
    rt = PerceptionRuntime(det, slim, score_threshold=0.3, shadow_share=0.5, busy_clock=None)
    rt.command(slim.to_indices())
    img = np.zeros((100, 100, 3), np.uint8)
    plain, shadow = rt.process(img), rt.process(img)
    # a frame without a shadow run detects at the published threshold and is not scored
    assert det.calls[0] == ("neuron-50", 0.3) and math.isnan(plain.accuracy_proxy)
    # a shadow frame detects down to 0.1, the full run at the reference score, and publishes only what clears 0.3
    assert det.calls[1:] == [("neuron-50", CONFIDENT_CANDIDATE_SCORE), ("full", CONFIDENT_REFERENCE_SCORE)]
    assert plain.detections.scores.tolist() == shadow.detections.scores.tolist() == pytest.approx([0.4])
    # the slim configuration still finds full's one confident box, at 0.2, ranked after its 0.4 box (not in the
    # reference): AP 0.5 with the weak boxes ranked; 0 had only the published boxes been scored
    assert shadow.accuracy_proxy == pytest.approx(0.5) and rt.stats.last_accuracy_proxy == shadow.accuracy_proxy
    # a higher published threshold than the reference changes nothing in the shadow's measure
    rt.set_score_threshold(0.95)
    rt.process(img)
    res = rt.process(img)
    assert det.calls[-2:] == [("neuron-50", CONFIDENT_CANDIDATE_SCORE), ("full", CONFIDENT_REFERENCE_SCORE)]
    assert len(res.detections.scores) == 0 and res.accuracy_proxy == pytest.approx(0.5)


def test_runtime_shadow_without_a_confident_reference_is_not_measured():
    from agra_ros.granularity.levels import GranularityConfig
    from agra_ros.perception.runtime import PerceptionRuntime

    det = ThresholdDetector()
    full = GranularityConfig.uniform("full", 2)
    rt = PerceptionRuntime(det, full, shadow_share=1.0, busy_clock=None)
    rt.command(full.to_indices())
    assert rt.process(np.zeros((100, 100, 3), np.uint8)).accuracy_proxy == 1.0  # the reference itself
    det.detect = lambda images, score_threshold=0.3: [
        SimpleNamespace(
            boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32), labels=np.zeros(0, np.int64)
        )
    ]
    res = rt.process(np.zeros((100, 100, 3), np.uint8))
    assert math.isnan(res.accuracy_proxy) and rt.stats.shadow_frames == 2
    assert rt.stats.last_accuracy_proxy == 1.0  # the last measured figure stays


def test_agreement_table_round_trip_and_the_earlier_metric_is_refused(tmp_path):
    from agra_ros.detectors.ssd.evaluate import COLUMNS, read_table, write_table
    from agra_ros.granularity.levels import GranularityConfig

    rows = [
        {"config": GranularityConfig.uniform("neuron-50", 9), "kind": "uniform", "split": "train", "in_domain": 0.8,
         "out_domain": 0.6, "strict_in": 0.55, "strict_out": 0.1},
        {"config": GranularityConfig.uniform("full", 9, 0.5), "kind": "random", "split": "heldout", "in_domain": 0.7,
         "out_domain": math.nan, "strict_in": 0.4, "strict_out": math.nan},
    ]  # fmt: skip
    path = write_table(rows, tmp_path / "accuracy_ssd.csv")
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    back = read_table(path)
    assert [r["config"] for r in back] == [r["config"] for r in rows]
    assert back[0]["in_domain"] == 0.8 and back[0]["strict_out"] == 0.1 and math.isnan(back[1]["out_domain"])
    old = tmp_path / "old.csv"
    old.write_text(
        "config,scale,kind,split,map50_in_domain,map50_out_of_domain\nFFFFFFFFF/1/local,1.0,uniform,train,1,1\n"
    )
    with pytest.raises(SystemExit, match="earlier metric"):
        read_table(old)


def test_a_calibration_of_another_shadow_proxy_is_not_applied(tmp_path, monkeypatch):
    import json

    from agra_ros.core import reward
    from agra_ros.perception.agreement import SHADOW_METRIC

    path = tmp_path / "cal.json"
    monkeypatch.setattr(reward, "shipped_agreement_calibration", lambda name: path)
    for data, expect in (
        ({"intercept": -0.2, "slope": 1.2}, (0.0, 1.0)),  # before issue 21: an F1, not this proxy
        ({"intercept": -0.2, "slope": 1.2, "shadow_metric": SHADOW_METRIC}, (-0.2, 1.2)),
    ):
        path.write_text(json.dumps(data))
        reward.agreement_calibration.cache_clear()
        try:
            assert reward.agreement_calibration() == expect
        finally:
            reward.agreement_calibration.cache_clear()
