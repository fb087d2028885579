"""The slim levels' training data: seeded augmentation and the held-out photos kept out of the training pool."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agra_ros.detectors.ssd.augment import (
    AugmentConfig,
    augment_batch,
    gather_image_paths,
    held_out_names,
    load_images,
    mosaic,
    training_pool,
)


def _pool(n: int = 5, side: int = 300, seed: int = 7) -> np.ndarray:
    """Smooth random pictures (upsampled 8x8 noise): photo-like, each with its own thumbnail."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(b, (side, side), interpolation=cv2.INTER_CUBIC) for b in base])


def test_augment_is_deterministic_per_seed_with_the_asked_shape():
    pool = _pool()
    a = augment_batch(pool, 6, 225, np.random.default_rng(3))
    b = augment_batch(pool, 6, 225, np.random.default_rng(3))
    c = augment_batch(pool, 6, 225, np.random.default_rng(4))
    assert a.shape == (6, 225, 225, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    for side in (300, 150):
        assert augment_batch(pool, 2, side, np.random.default_rng(0)).shape == (2, side, side, 3)


def test_mosaic_fills_four_cells_from_four_images():
    flat = np.stack([np.full((300, 300, 3), v, np.uint8) for v in (10, 80, 160, 240)])
    m = mosaic(list(flat), 200, np.random.default_rng(1), AugmentConfig())
    assert m.shape == (200, 200, 3) and m.dtype == np.uint8
    corners = {int(m[0, 0, 0]), int(m[0, -1, 0]), int(m[-1, 0, 0]), int(m[-1, -1, 0])}
    assert corners == {10, 80, 160, 240}


def test_every_batch_item_differs_from_a_plain_resize():
    pool = _pool(1)
    out = augment_batch(pool, 4, 300, np.random.default_rng(0))
    assert all(not np.array_equal(o, pool[0]) for o in out)


def test_empty_pool_is_refused():
    with pytest.raises(ValueError, match="no training images"):
        augment_batch(np.zeros((0, 300, 300, 3), np.uint8), 2, 300, np.random.default_rng(0))


def _photo(path, seed: int, side: int = 320) -> None:
    img = _pool(1, side, seed)[0]
    cv2.imwrite(str(path), img)


def test_held_out_photos_never_reach_the_training_pool(tmp_path):
    photos = tmp_path / "photos"
    docs = tmp_path / "docs" / "data"
    photos.mkdir()
    docs.mkdir(parents=True)
    _photo(photos / "messi5.jpg", 0)
    _photo(photos / "mine.jpg", 11)
    # copies of held-out photos under the same name or stem, one the package's 14 (dog.jpg) but not in photos/
    _photo(docs / "messi5.jpg", 0)
    _photo(docs / "mine.png", 11)
    _photo(docs / "dog.jpg", 12)
    _photo(docs / "renamed_copy.jpg", 0)  # the same picture as messi5 under another name
    _photo(docs / "street.jpg", 13)
    _photo(docs / "tiny.jpg", 14, side=64)  # too small
    cv2.imwrite(str(docs / "flat.png"), np.full((300, 300, 3), 200, np.uint8))  # a flat doc figure
    held = held_out_names([photos])
    assert {"messi5", "mine", "dog", "baboon"} <= held
    paths = gather_image_paths([tmp_path], held, [photos])
    names = {p.name for p in paths}
    assert not names & {"messi5.jpg", "mine.jpg", "mine.png", "dog.jpg"}
    assert all(photos not in p.parents for p in paths)
    pool, about = training_pool(np.zeros((3, 300, 300, 3), np.uint8), [tmp_path], [photos])
    images, kept = load_images(paths, 300)
    assert "renamed_copy.jpg" in {p.name for p in kept}  # only the thumbnail check below catches it
    assert about["images_kept"] == 1 and pool.shape == (4, 300, 300, 3)
