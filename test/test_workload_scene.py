"""The synthetic scene generator: determinism, exact ground truth, classes, counts, video coherence, speed knobs."""

from __future__ import annotations

import numpy as np
import pytest

from agra_ros.workload.scene import SceneGenerator, make_dataset, render_frame
from agra_ros.workload.scene_types import CLASS_NAMES, CLASS_STYLES, Frame, SceneParams

SMALL = SceneParams(width=160, height=120)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def test_classes_differ_in_shape_colour_and_texture() -> None:
    assert len(CLASS_NAMES) >= 5
    assert set(CLASS_STYLES) == set(CLASS_NAMES)
    colours = [np.array(CLASS_STYLES[c][0], float) for c in CLASS_NAMES]
    textures = [CLASS_STYLES[c][1] for c in CLASS_NAMES]
    assert len(set(textures)) == len(CLASS_NAMES)
    for i in range(len(colours)):
        for j in range(i + 1, len(colours)):
            assert np.linalg.norm(colours[i] - colours[j]) > 100, (CLASS_NAMES[i], CLASS_NAMES[j])


def test_frame_types_and_shapes() -> None:
    frame = SceneGenerator(3, SMALL).next_frame()
    assert isinstance(frame, Frame)
    assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
    assert frame.boxes.dtype == np.float32 and frame.boxes.shape == (len(frame.labels), 4)
    assert frame.labels.dtype == np.int64
    assert frame.index == 0
    assert np.all(frame.boxes[:, 2] > frame.boxes[:, 0]) and np.all(frame.boxes[:, 3] > frame.boxes[:, 1])
    assert np.all(frame.boxes >= 0)
    assert np.all(frame.boxes[:, 2] <= 160) and np.all(frame.boxes[:, 3] <= 120)


@pytest.mark.parametrize("video", [True, False])
def test_same_seed_same_bytes_other_seed_differs(video: bool) -> None:
    a = [SceneGenerator(11, SMALL, video=video).next_frame() for _ in range(1)]
    gen_a, gen_b, gen_c = (SceneGenerator(s, SMALL, video=video) for s in (11, 11, 12))
    for _ in range(5):
        fa, fb, fc = gen_a.next_frame(), gen_b.next_frame(), gen_c.next_frame()
        assert fa.image.tobytes() == fb.image.tobytes()
        assert np.array_equal(fa.boxes, fb.boxes) and np.array_equal(fa.labels, fb.labels)
        assert fa.image.tobytes() != fc.image.tobytes()
    assert a[0].image.tobytes() == SceneGenerator(11, SMALL, video=video).next_frame().image.tobytes()


def test_make_dataset_is_deterministic_and_independent_of_global_rng() -> None:
    np.random.seed(1)
    first = make_dataset(5, 4, SMALL)
    np.random.seed(2)
    second = make_dataset(5, 4, SMALL)
    assert [f.image.tobytes() for f in first] == [f.image.tobytes() for f in second]
    assert [f.index for f in first] == [0, 1, 2, 3]
    assert render_frame(5, SMALL).image.tobytes() == first[0].image.tobytes()
    with pytest.raises(ValueError):
        make_dataset(0, -1)


@pytest.mark.parametrize("video", [True, False])
def test_ground_truth_is_the_visible_extent_of_what_was_drawn(video: bool) -> None:
    """Boxes equal the bbox of each object's pixels; object pixels are exactly the pixels that changed."""
    params = SceneParams(width=200, height=150, min_objects=10, max_objects=30, noise=0, blur=0, lighting=0)
    gen = SceneGenerator(7, params, video=video)
    checked = 0
    for _ in range(6):
        frame = gen.next_frame()
        label_map, background = gen.last_label_map, gen.last_background
        assert label_map is not None and background is not None
        assert set(np.unique(label_map)) <= set(range(-1, len(frame.boxes)))
        for k, box in enumerate(frame.boxes):
            mask = label_map == k
            assert mask.sum() >= 12
            assert _bbox(mask) == tuple(int(v) for v in box)
            checked += 1
        # with effects off, every pixel outside the objects is the untouched background ...
        outside = label_map < 0
        assert np.array_equal(frame.image[outside], background[outside])
        # ... and the objects' pixels were painted over it (allow rare exact colour coincidences)
        changed = np.any(frame.image != background, axis=2)
        assert changed[~outside].mean() > 0.97
    assert checked > 50


def test_mostly_hidden_objects_are_dropped() -> None:
    """The same crowded scene keeps fewer objects the less hiding is allowed; no kept object overlaps at 0."""
    counts = []
    for max_hidden in (0.0, 0.4, 0.7, 0.99):
        params = SceneParams(160, 120, min_objects=40, max_objects=40, occlusion=1.0, max_hidden=max_hidden)
        gen = SceneGenerator(2, params, video=False)
        frame = gen.next_frame()
        label_map = gen.last_label_map
        assert label_map is not None
        for k in range(len(frame.boxes)):
            assert (label_map == k).sum() >= 12
        counts.append(len(frame.boxes))
    assert counts == sorted(counts) and counts[0] < counts[-1] <= 40
    assert counts[2] < 40  # 40 objects on a small image: some are mostly hidden and dropped at the default


def test_object_counts_follow_the_range() -> None:
    for lo, hi in [(0, 0), (3, 3), (5, 12)]:
        params = SceneParams(width=320, height=240, min_objects=lo, max_objects=hi, max_size_frac=0.12)
        counts = [len(f.boxes) for f in make_dataset(1, 12, params)]
        assert max(counts) <= hi
        if hi == 0:
            assert counts == [0] * 12
        else:
            assert min(counts) >= max(0, lo - 3)  # a few may be hidden and dropped
    dense = [len(f.boxes) for f in make_dataset(4, 6, SceneParams(min_objects=30, max_objects=40))]
    assert np.mean(dense) > 20


def test_all_classes_appear() -> None:
    labels = np.concatenate([f.labels for f in make_dataset(0, 10, SMALL)])
    assert set(labels.tolist()) == set(range(len(CLASS_NAMES)))


def test_video_is_temporally_coherent() -> None:
    params = SceneParams(width=320, height=240, min_objects=8, max_objects=16)
    gen = SceneGenerator(9, params, video=True)
    prev = gen.next_frame()
    moved, matched = [], 0
    for _ in range(30):
        cur = gen.next_frame()
        assert cur.index == prev.index + 1
        common = np.intersect1d(prev.track_ids, cur.track_ids)
        assert len(common) >= min(len(prev.track_ids), len(cur.track_ids)) - 3  # at most 2 enter + 1 leaves
        for tid in common:
            a = prev.boxes[prev.track_ids == tid][0]
            b = cur.boxes[cur.track_ids == tid][0]
            assert prev.labels[prev.track_ids == tid][0] == cur.labels[cur.track_ids == tid][0]
            centre_shift = np.abs((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2).max()
            moved.append(centre_shift)
            matched += 1
        prev = cur
    moved_arr = np.array(moved)
    assert matched > 100
    assert np.median(moved_arr) < 6.0  # small steps between frames (occlusion can jump a visible box further)
    assert (moved_arr > 0).mean() > 0.5  # but things do move
    # the object count drifts, it does not jump
    counts = [len(gen.next_frame().boxes) for _ in range(40)]
    assert max(abs(a - b) for a, b in zip(counts, counts[1:])) <= 6


def test_independent_frames_are_not_coherent() -> None:
    frames = make_dataset(3, 2, SMALL)
    assert frames[0].image.tobytes() != frames[1].image.tobytes()
    assert not np.array_equal(frames[0].track_ids, frames[1].track_ids)


def test_set_params_changes_density_and_resolution_mid_stream() -> None:
    gen = SceneGenerator(0, SceneParams(width=320, height=240, min_objects=2, max_objects=4), video=True)
    for _ in range(3):
        assert len(gen.next_frame().boxes) <= 4
    gen.set_params(width=200, height=100, min_objects=20, max_objects=25)
    frame = gen.next_frame()
    assert frame.image.shape == (100, 200, 3)
    counts = [len(gen.next_frame().boxes) for _ in range(40)]
    assert max(counts) > 12  # objects fade in over a few frames
    with pytest.raises(ValueError, match="max_objects"):
        gen.set_params(max_objects=1)  # below min_objects
    with pytest.raises(ValueError, match="unknown"):
        gen.set_params(colour="red")
    assert gen.params.max_objects == 25  # a rejected change leaves the settings alone


@pytest.mark.parametrize(
    "bad",
    [
        {"width": 8},
        {"height": 100000},
        {"min_objects": -1},
        {"min_objects": 5, "max_objects": 2},
        {"min_size_frac": 0.0},
        {"min_size_frac": 0.3, "max_size_frac": 0.2},
        {"noise": -1.0},
        {"blur": -0.1},
        {"lighting": 2.0},
        {"occlusion": 1.5},
        {"max_hidden": 1.0},
    ],
)
def test_invalid_params_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        SceneParams(**bad)


def test_effects_change_pixels_but_not_geometry() -> None:
    clean = SceneParams(width=160, height=120, noise=0, blur=0, lighting=0)
    noisy = SceneParams(width=160, height=120, noise=10, blur=1.5, lighting=0.5)
    a = make_dataset(8, 1, clean)[0]
    b = make_dataset(8, 1, noisy)[0]
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 3
