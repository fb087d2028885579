"""The workload profile W: encoder shape, determinism and sensitivity; tracker scalars and motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agra_ros.workload.features import (
    EMBEDDING_DIM,
    OBJECTS_SCALE,
    WORKLOAD_DIM,
    WorkloadEncoder,
    WorkloadFeatures,
    WorkloadTracker,
)
from agra_ros.workload.scene import SceneGenerator, make_dataset
from agra_ros.workload.scene_types import SceneParams

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.image for f in make_dataset(0, 4, SceneParams(width=320, height=240))]


def test_embedding_shape_norm_and_determinism(frames: list[np.ndarray]) -> None:
    a, b = WorkloadEncoder(seed=0), WorkloadEncoder(seed=0)
    for image in frames:
        e = a.embed(image)
        assert e.shape == (EMBEDDING_DIM,) == (512,) and e.dtype == np.float32
        assert np.isfinite(e).all() and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
        assert np.array_equal(e, b.embed(image))
    other = WorkloadEncoder(seed=1).embed(frames[0])
    assert not np.allclose(other, a.embed(frames[0]))


def test_embedding_depends_on_content_not_on_global_rng(frames: list[np.ndarray]) -> None:
    torch.manual_seed(123)
    np.random.seed(5)
    enc = WorkloadEncoder(seed=0)
    same = enc.embed(frames[0])
    torch.manual_seed(999)
    assert np.array_equal(same, WorkloadEncoder(seed=0).embed(frames[0]))
    embeddings = np.stack([enc.embed(f) for f in frames])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    assert distances[np.triu_indices(len(frames), 1)].min() > 1e-3  # different scenes, different embeddings
    # works at any resolution, including the 1280x720 of the dense workload
    big = make_dataset(1, 1, SceneParams(width=1280, height=720))[0].image
    assert enc.embed(big).shape == (512,)


def test_sparse_and_dense_scenes_separate() -> None:
    """W must tell workloads apart: nearest-centroid on embeddings separates sparse from dense scenes."""
    enc = WorkloadEncoder(seed=0)
    sparse = np.stack([enc.embed(f.image) for f in make_dataset(1, 12, SceneParams(160, 120, 0, 2))])
    dense = np.stack([enc.embed(f.image) for f in make_dataset(2, 12, SceneParams(160, 120, 35, 40))])
    test_sparse = np.stack([enc.embed(f.image) for f in make_dataset(3, 12, SceneParams(160, 120, 0, 2))])
    test_dense = np.stack([enc.embed(f.image) for f in make_dataset(4, 12, SceneParams(160, 120, 35, 40))])
    cs, cd = sparse.mean(0), dense.mean(0)

    def is_dense(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x - cd, axis=1) < np.linalg.norm(x - cs, axis=1)

    correct = (~is_dense(test_sparse)).sum() + is_dense(test_dense).sum()
    assert correct >= 20  # of 24 (chance: 12)


def test_bad_images_are_rejected() -> None:
    enc = WorkloadEncoder()
    with pytest.raises(ValueError, match="uint8"):
        enc.embed(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        enc.embed(np.zeros((10, 10), np.uint8))


def test_tracker_scalars_motion_and_vector() -> None:
    gen = SceneGenerator(0, SceneParams(width=320, height=240, min_objects=10, max_objects=20, speed=0.02))
    tracker = WorkloadTracker(WorkloadEncoder(seed=0))
    first = tracker.update(gen.next_frame().image, objects=7, mean_conf=0.6)
    assert isinstance(first, WorkloadFeatures)
    assert first.motion == 0.0  # no previous frame
    assert first.resolution_mpix == pytest.approx(320 * 240 / 1e6)
    moving = [tracker.update(gen.next_frame().image, 7, 0.6).motion for _ in range(5)]
    assert all(0.0 < m < 0.5 for m in moving)
    image = gen.next_frame().image
    tracker.update(image, 3, 0.2)
    still = tracker.update(image, 3, 0.2)
    assert still.motion == 0.0
    cut = tracker.update(255 - image, 3, 0.2)
    assert cut.motion > max(moving)  # a scene cut is more motion than objects drifting
    vec = still.vector()
    assert vec.shape == (WORKLOAD_DIM,) and vec.dtype == np.float32
    assert vec[-4:] == pytest.approx([320 * 240 / 1e6, 3 / OBJECTS_SCALE, 0.2, 0.0])
    tracker.reset()
    assert tracker.update(image, 0, 0.0).motion == 0.0
    with pytest.raises(ValueError):
        tracker.update(image, -1, 0.5)
    with pytest.raises(ValueError):
        tracker.update(image, 1, 1.5)
