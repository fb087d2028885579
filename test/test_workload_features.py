"""The workload profile W: the detectors' backbone embedding (shape, determinism, sensitivity), motion, the vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agra_ros.detectors import registry
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.workload.features import (
    EMBEDDING_BOUND,
    EMBEDDING_DIM,
    MOTION_SCALE,
    OBJECTS_SCALE,
    WORKLOAD_DIM,
    WorkloadFeatures,
    check_embedding,
    frame_motion,
    workload_embedding,
)
from agra_ros.workload.scene import SceneGenerator, make_dataset
from agra_ros.workload.scene_types import SceneParams

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.image for f in make_dataset(0, 4, SceneParams(width=320, height=240))]


@pytest.fixture(scope="module", params=["ssd", "synthetic"])
def detector(request):
    model, _ = registry.load_with_fallback(request.param)
    return model


def _embed(detector, image: np.ndarray) -> np.ndarray:
    return detector.detect([image])[0].embedding


def test_every_detection_carries_a_deterministic_embedding(detector, frames: list[np.ndarray]) -> None:
    torch.manual_seed(123)
    for image in frames:
        e = _embed(detector, image)
        assert e.shape == (EMBEDDING_DIM,) and e.dtype == np.float32
        assert np.isfinite(e).all() and np.abs(e).max() <= EMBEDDING_BOUND
        torch.manual_seed(999)  # no global RNG involved
        assert np.array_equal(e, _embed(detector, image))
    embeddings = np.stack([_embed(detector, f) for f in frames])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    assert distances[np.triu_indices(len(frames), 1)].min() > 1e-3  # different scenes, different embeddings
    # every width keeps the embedding's shape (pooled block outputs keep their channels)
    n = len(detector.switchable_layer_names())
    detector.set_config(GranularityConfig(("neuron-25",) * n, 0.5))
    try:
        assert _embed(detector, frames[0]).shape == (EMBEDDING_DIM,)
    finally:
        detector.set_config(GranularityConfig(("full",) * n, 1.0))


def test_sparse_and_dense_scenes_separate() -> None:
    """W must tell workloads apart: nearest-centroid on the real detector's embeddings separates sparse from dense."""
    model, _ = registry.load_with_fallback("ssd")

    def embed(seed: int, lo: int, hi: int) -> np.ndarray:
        return np.stack([_embed(model, f.image) for f in make_dataset(seed, 10, SceneParams(160, 120, lo, hi))])

    sparse, dense, test_sparse, test_dense = embed(1, 0, 2), embed(2, 35, 40), embed(3, 0, 2), embed(4, 35, 40)
    cs, cd = sparse.mean(0), dense.mean(0)

    def is_dense(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x - cd, axis=1) < np.linalg.norm(x - cs, axis=1)

    correct = (~is_dense(test_sparse)).sum() + is_dense(test_dense).sum()
    assert correct >= 16  # of 20 (chance: 10)


def test_projection_is_fixed_and_bad_vectors_are_refused() -> None:
    pooled = np.linspace(-1, 1, 352, dtype=np.float32)
    assert np.array_equal(workload_embedding(pooled), workload_embedding(pooled.copy()))
    with pytest.raises(ValueError, match="finite"):
        workload_embedding(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        workload_embedding(np.zeros(0, np.float32))
    assert check_embedding([0.5] * EMBEDDING_DIM).shape == (EMBEDDING_DIM,)
    for bad, match in (([], "0 values"), ([0.1] * (EMBEDDING_DIM + 1), "values, expected"), ([np.inf] * 32, "NaN")):
        with pytest.raises(ValueError, match=match):
            check_embedding(bad)
    assert check_embedding([100.0] * EMBEDDING_DIM).max() == EMBEDDING_BOUND  # clipped, never unbounded


def test_motion_and_vector() -> None:
    gen = SceneGenerator(0, SceneParams(width=320, height=240, min_objects=10, max_objects=20, speed=0.02))
    images = [gen.next_frame().image for _ in range(6)]
    moving = [frame_motion(a, b) for a, b in zip(images, images[1:])]
    assert all(0.0 < m < 30.0 for m in moving)
    assert frame_motion(images[0], images[0]) == 0.0
    cut = frame_motion(images[0], 255 - images[0])
    assert cut > max(moving)  # a scene cut is more motion than objects drifting
    feats = WorkloadFeatures(np.zeros(EMBEDDING_DIM, np.float32), 320 * 240 / 1e6, 3, 0.2, 8.0)
    vec = feats.vector()
    assert vec.shape == (WORKLOAD_DIM,) and vec.dtype == np.float32
    assert vec[-4:] == pytest.approx([320 * 240 / 1e6, 3 / OBJECTS_SCALE, 0.2, 8.0 / MOTION_SCALE])
