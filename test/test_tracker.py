"""The keyframe tracker (temporal granularity): boxes follow the image, a scene cut or lost points ask for a
keyframe, and a tracked box is never NaN, empty or outside the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agra_ros.perception.tracker import KeyframeTracker, frame_motion


def _texture(h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)


def test_boxes_follow_a_moving_image():
    frame = _texture()
    boxes = np.array([[100, 100, 200, 220], [300, 250, 420, 330]], np.float32)
    tr = KeyframeTracker()
    tr.keyframe(frame, boxes, np.array([0.9, 0.6]), np.array([1, 2]))
    moved = boxes.copy()
    for step in range(1, 4):
        res = tr.track(_shift(frame, 6.0 * step, -4.0 * step))
        moved = boxes + np.array([6, -4, 6, -4], np.float32) * step
        assert res.ok and len(res) == 2, res.reason
        assert np.abs(res.boxes - moved).max() < 3.0, (res.boxes, moved)
        assert res.scores.tolist() == pytest.approx([0.9, 0.6]) and res.labels.tolist() == [1, 2]
        assert res.motion > 0 and res.seconds > 0


def test_a_scene_cut_or_no_keyframe_asks_for_a_keyframe():
    tr = KeyframeTracker()
    assert not tr.track(_texture()).ok  # no keyframe yet
    tr.keyframe(_texture(seed=1), np.array([[10, 10, 50, 50]]), np.array([0.5]), np.array([0]))
    res = tr.track(np.zeros_like(_texture(seed=1)))  # the lights go out: a new scene
    assert not res.ok and res.reason == "scene cut" and len(res) == 0
    assert frame_motion(_texture(seed=1), _texture(seed=1)) == 0.0


def test_tracked_boxes_are_finite_non_empty_and_inside_the_frame():
    rng = np.random.default_rng(5)
    frame = _texture()
    h, w = frame.shape[:2]
    for _trial in range(20):
        n = int(rng.integers(0, 6))
        x0, y0 = rng.uniform(-50, w, n), rng.uniform(-50, h, n)
        boxes = np.stack([x0, y0, x0 + rng.uniform(0, 200, n), y0 + rng.uniform(0, 200, n)], axis=1)
        tr = KeyframeTracker()
        tr.keyframe(frame, boxes, rng.uniform(0.3, 1, n), rng.integers(0, 5, n))
        res = tr.track(_shift(frame, float(rng.uniform(-20, 20)), float(rng.uniform(-20, 20))))
        if res.ok and len(res):
            b = res.boxes
            assert np.isfinite(b).all()
            assert (b[:, 2] - b[:, 0] >= 1).all() and (b[:, 3] - b[:, 1] >= 1).all()
            assert (b[:, [0, 2]] >= 0).all() and (b[:, [0, 2]] <= w).all()
            assert (b[:, [1, 3]] >= 0).all() and (b[:, [1, 3]] <= h).all()
        elif not res.ok:
            assert len(res) == 0 and res.reason


def test_a_box_whose_content_is_replaced_is_dropped_not_moved_at_random():
    """The forward-backward check: points over an occluder (new content, not the keyframe's moved) do not come
    back to where they started, so the box they follow is dropped instead of drifting; without the check the
    flow still "finds" a box there."""
    frame = _texture()
    boxes = np.array([[100, 100, 200, 220], [300, 250, 420, 330]], np.float32)
    nxt = _shift(frame, 5.0, 3.0)
    nxt[90:240, 90:215] = np.random.default_rng(7).integers(0, 255, (150, 125, 3), dtype=np.uint8)  # occluder
    checked, unchecked = KeyframeTracker(), KeyframeTracker(fb_error=None)
    for tr in (checked, unchecked):
        tr.keyframe(frame, boxes, np.array([0.9, 0.6]), np.array([1, 2]))
    res = checked.track(nxt)
    assert res.ok and len(res) == 1 and res.labels.tolist() == [2]
    assert np.abs(res.boxes[0] - (boxes[1] + [5, 3, 5, 3])).max() < 3.0
    assert len(unchecked.track(nxt)) == 2  # what the check removes
    with pytest.raises(ValueError):
        KeyframeTracker(fb_error=0.0)
