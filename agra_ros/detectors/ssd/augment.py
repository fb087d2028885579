"""Training data of the slim levels: every real image the package can reach, and heavy, seeded augmentation.

Why this module exists: distilling on the clips' first halves alone made slim levels that hold in domain and fail on
any other camera (issue 21). The pool here adds the photo-like images of the opencv-doc samples, the darknet photos
and any folder the user names, always *minus* the held-out data (the 14 photos, by file name wherever a copy of them
lies, and the clips' second halves, which :func:`agra_ros.detectors.ssd.distill.split_frames` never hands out), and
every training batch is augmented: random crops and scales (zoom in and out), horizontal flips, colour jitter
(brightness, contrast, saturation, hue), blur and mosaic (4 images in a 2x2 grid). Everything draws from one
``numpy.random.Generator``: the same seed gives the same batches.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("agra_ros.distill")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
HELD_OUT_CLIP_STEMS = ("vtest", "megamind", "megamind_bugy", "tree")
"""Clips whose second halves are held out (Megamind_bugy.avi is a copy of Megamind)."""

OPENCV_DOC_EXAMPLES = "usr/share/doc/opencv-doc/examples"
DARKNET_DATA = "usr/share/darknet/data"


# ---------------------------------------------------------------------- gathering
def held_out_names(photo_dirs: Iterable[str | Path] = ()) -> set[str]:
    """Lower-case file stems of the held-out photos (the package's 14 and any in ``photo_dirs``): a file of that
    stem (any suffix: opencv-doc has ``butterfly.png`` beside ``butterfly.jpg``) is never trained on, wherever it lies
    (opencv-doc and darknet hold copies of them)."""
    from agra_ros.workload.real_media import PHOTOS

    names: set[str] = {Path(n).stem.lower() for _, files in PHOTOS.values() for n in files}
    for d in photo_dirs:
        p = Path(d)
        if p.is_dir():
            names.update(f.stem.lower() for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    return names


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """16x16 grey thumbnail, zero mean (a copy of a photo in another format or size has nearly the same one)."""
    g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    t = cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    return t - t.mean()


def held_out_thumbnails(photo_dirs: Iterable[str | Path]) -> list[np.ndarray]:
    out = []
    for d in photo_dirs:
        p = Path(d)
        for f in sorted(p.iterdir()) if p.is_dir() else []:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR) if f.suffix.lower() in IMAGE_SUFFIXES else None
            if bgr is not None:
                out.append(thumbnail(bgr))
    return out


def near_copy(bgr: np.ndarray, thumbs: Sequence[np.ndarray], tol: float = 6.0) -> bool:
    """Whether ``bgr`` looks like one of the held-out photos (mean absolute thumbnail difference under ``tol``)."""
    t = thumbnail(bgr)
    return any(float(np.abs(t - h).mean()) < tol for h in thumbs)


def default_image_dirs() -> list[Path]:
    """The opencv-doc examples and the darknet data folder of the package's cache, those that exist."""
    from agra_ros.assets import cache_dir

    root = cache_dir("deb")
    dirs = [root / "opencv-doc" / OPENCV_DOC_EXAMPLES, root / "darknet" / DARKNET_DATA]
    return [d for d in dirs if d.is_dir()]


def gather_image_paths(
    dirs: Sequence[str | Path], held_out: set[str], held_out_dirs: Sequence[str | Path] = ()
) -> list[Path]:
    """Image files under ``dirs`` (recursive, sorted, de-duplicated by content) minus held-out names and folders."""
    skip_dirs = [Path(d).resolve() for d in held_out_dirs]
    seen: set[str] = set()
    out: list[Path] = []
    for d in dirs:
        for p in sorted(Path(d).rglob("*")):
            if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file() or p.stem.lower() in held_out:
                continue
            rp = p.resolve()
            if any(rp.is_relative_to(s) for s in skip_dirs):
                continue
            digest = hashlib.sha1(p.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            out.append(p)
    return out


def photo_like(bgr: np.ndarray | None, min_side: int = 200, min_std: float = 20.0, max_flat: float = 0.4) -> bool:
    """Big enough, with enough contrast, and not mostly one flat value (doc figures, masks, charts)."""
    if bgr is None or bgr.ndim < 2 or min(bgr.shape[:2]) < min_side:
        return False
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    if gray.dtype != np.uint8 or float(gray.std()) < min_std:
        return False
    hist = np.bincount(gray.ravel(), minlength=256)
    return hist.max() / gray.size <= max_flat and int((hist > 0).sum()) >= 64


def load_images(paths: Sequence[Path], side: int, held_out: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[Path]]:
    """The photo-like images among ``paths`` (none a near copy of a ``held_out`` thumbnail) as (N, side, side, 3)
    RGB uint8, and the paths kept."""
    frames, kept = [], []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if not photo_like(bgr) or near_copy(bgr, held_out):
            continue
        frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (side, side), interpolation=cv2.INTER_AREA))
        kept.append(p)
    if not frames:
        return np.zeros((0, side, side, 3), np.uint8), []
    return np.stack(frames), kept


def training_pool(
    video_frames: np.ndarray, image_dirs: Sequence[str | Path], photo_dirs: Sequence[str | Path]
) -> tuple[np.ndarray, dict]:
    """The clips' training frames plus the photo-like images of ``image_dirs`` (held-out names and folders skipped),
    and a summary of what went in."""
    held = held_out_names(photo_dirs)
    paths = gather_image_paths(image_dirs, held, photo_dirs)
    side = video_frames.shape[1] if video_frames.ndim == 4 else 300
    images, kept = load_images(paths, side, held_out_thumbnails(photo_dirs))
    about = {
        "video_frames": len(video_frames),
        "image_files_found": len(paths),
        "images_kept": len(kept),
        "image_dirs": [str(d) for d in image_dirs],
        "held_out_names": sorted(held),
    }
    log.info(
        "training pool: %d video frames + %d images (%d image files found, %d not photo-like)",
        len(video_frames),
        len(kept),
        len(paths),
        len(paths) - len(kept),
    )
    pool = np.concatenate([video_frames, images]) if len(images) else video_frames
    return pool, about


# ---------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class AugmentConfig:
    mosaic: float = 0.3
    """Share of batch items that are a 2x2 mosaic of four pool images."""
    zoom_out: float = 0.2
    """Share of (non-mosaic) items shrunk onto a grey canvas (small objects)."""
    min_area: float = 0.25
    """Smallest crop, as a share of the source image's area."""
    flip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.04
    """Hue shift as a share of the full circle."""
    blur: float = 0.25
    """Probability of a Gaussian blur (kernel 3 or 5)."""


def random_crop(img: np.ndarray, out: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """A random crop (area share in [min_area, 1], aspect 3/4..4/3) resized to ``out`` x ``out``."""
    h, w = img.shape[:2]
    area = rng.uniform(cfg.min_area, 1.0) * h * w
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    ch = int(min(h, max(8, round(np.sqrt(area / aspect)))))
    cw = int(min(w, max(8, round(np.sqrt(area * aspect)))))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = img[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if ch > out else cv2.INTER_LINEAR
    return cv2.resize(crop, (out, out), interpolation=interp)


def zoom_out(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` shrunk to 50-90 % of its side at a random place on a grey canvas of the same size."""
    s = img.shape[0]
    k = max(8, int(round(s * rng.uniform(0.5, 0.9))))
    small = cv2.resize(img, (k, k), interpolation=cv2.INTER_AREA)
    canvas = np.full_like(img, 114)
    y0, x0 = int(rng.integers(0, s - k + 1)), int(rng.integers(0, s - k + 1))
    canvas[y0 : y0 + k, x0 : x0 + k] = small
    return canvas


def mosaic(images: Sequence[np.ndarray], out: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Four images in a 2x2 grid split at a random point (30-70 % of the side), each a random crop of its cell."""
    cy = int(round(out * rng.uniform(0.3, 0.7)))
    cx = int(round(out * rng.uniform(0.3, 0.7)))
    canvas = np.empty((out, out, 3), np.uint8)
    cells = ((0, cy, 0, cx), (0, cy, cx, out), (cy, out, 0, cx), (cy, out, cx, out))
    for img, (y0, y1, x0, x1) in zip(images, cells):
        h, w = y1 - y0, x1 - x0
        side = max(h, w)
        tile = random_crop(img, side, rng, cfg)
        canvas[y0:y1, x0:x1] = tile[:h, :w]
    return canvas


def colour_jitter(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue, each by a random factor/shift (RGB uint8 in and out)."""
    x = img.astype(np.float32)
    x *= 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue, cfg.hue) * 180.0) % 180.0
    hsv[..., 1] *= 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def augment_one(pool: np.ndarray, out: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """One training image of ``out`` x ``out`` RGB uint8 drawn from ``pool`` (N, H, W, 3)."""
    if rng.random() < cfg.mosaic:
        idx = rng.integers(0, len(pool), size=4)
        img = mosaic([pool[i] for i in idx], out, rng, cfg)
    else:
        img = random_crop(pool[int(rng.integers(0, len(pool)))], out, rng, cfg)
        if rng.random() < cfg.zoom_out:
            img = zoom_out(img, rng)
    if rng.random() < cfg.flip:
        img = img[:, ::-1]
    img = colour_jitter(np.ascontiguousarray(img), rng, cfg)
    if rng.random() < cfg.blur:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    return img


def augment_batch(
    pool: np.ndarray, batch: int, out: int, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """``batch`` augmented images (batch, out, out, 3) RGB uint8; the same ``rng`` state gives the same batch."""
    if len(pool) == 0:
        raise ValueError("no training images to augment")
    return np.stack([augment_one(pool, out, rng, cfg) for _ in range(batch)])


__all__ = [
    "HELD_OUT_CLIP_STEMS",
    "AugmentConfig",
    "augment_batch",
    "colour_jitter",
    "default_image_dirs",
    "gather_image_paths",
    "held_out_names",
    "load_images",
    "mosaic",
    "photo_like",
    "random_crop",
    "training_pool",
]
