"""Drawing a scene's frame: the background (a textured surface with distractor clutter), compositing the objects'
sprites with exact ground truth, and the camera's effects (blur, lighting, sensor noise). Apart from the generator,
which decides what is in the scene and owns the random stream these functions draw from in its order.

Ground truth is exact: objects are drawn without anti-aliasing into a label map (one id per pixel, later objects on
top), and every box is the bounding box of the object's *visible* pixels in that map. Objects hidden by more than
``SceneParams.max_hidden`` of their area (by other objects or by the image border) are dropped before anything is
painted, so no unlabelled sliver of an object is ever left in the image. Boxes are ``[x0, y0, x1, y1]`` in pixels with
exclusive ``x1, y1`` (``x1 - x0`` is the width in pixels): the visible pixels are ``image[y0:y1, x0:x1]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from agra_ros.workload.scene_sprites import SceneObject
from agra_ros.workload.scene_types import SceneParams

_MIN_VISIBLE_PX = 12  # an object with fewer visible pixels is not a detectable object: dropped
_MIN_SPRITE_PX = 3
_GAIN_ONE = 100.0  # lighting gain map in fixed point (uint8, 100 = unchanged, so gains up to 2.55)


def make_background(p: SceneParams, rng: np.random.Generator) -> np.ndarray:
    """A desaturated textured surface with distractor lines and blobs: clutter the detector must ignore."""
    w, h = p.width, p.height
    base = rng.uniform(70, 170)
    tint = rng.uniform(-12, 12, 3)
    coarse = rng.uniform(-1, 1, (max(2, h // 48), max(2, w // 48), 3))
    coarse = (coarse * 0.35 + coarse.mean(axis=2, keepdims=True) * 0.65) * 38.0 + base + tint  # mostly grey
    # all full-size work in uint8 through OpenCV: a fresh background per data-set frame must stay cheap
    # smooth (cubic) at quarter size, then bilinear: a direct cubic upscale by ~50x costs ~8 ms at 640x480
    coarse_u8 = np.clip(coarse, 0, 255).astype(np.uint8)
    quarter = cv2.resize(coarse_u8, (max(2, w // 4), max(2, h // 4)), interpolation=cv2.INTER_CUBIC)
    image = cv2.resize(quarter, (w, h), interpolation=cv2.INTER_LINEAR)
    kind = int(rng.integers(3))
    if kind == 0:  # floor tiles
        step = int(rng.integers(24, 64))
        image[::step] = cv2.subtract(image[::step], (35, 35, 35, 0))
        image[:, ::step] = cv2.subtract(image[:, ::step], (35, 35, 35, 0))
    elif kind == 1:  # wood-like grain: noise stretched along the rows
        grain = rng.integers(0, 28, (h, max(2, w // 32)), dtype=np.uint8)
        grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)
        image = cv2.add(image, cv2.merge([grain, grain, grain]))
    n_lines = int(rng.poisson(10 * p.clutter))
    n_blobs = int(rng.poisson(6 * p.clutter))
    for _ in range(n_lines):
        grey = rng.uniform(20, 235)
        colour = tuple(float(v) for v in np.clip(grey + rng.uniform(-15, 15, 3), 0, 255))
        a = (int(rng.integers(-w // 4, w + w // 4)), int(rng.integers(-h // 4, h + h // 4)))
        b = (int(rng.integers(-w // 4, w + w // 4)), int(rng.integers(-h // 4, h + h // 4)))
        cv2.line(image, a, b, colour, int(rng.integers(1, 5)), cv2.LINE_AA)
    short = min(w, h)
    for _ in range(n_blobs):
        grey = rng.uniform(30, 225)
        colour = tuple(float(v) for v in np.clip(grey + rng.uniform(-20, 20, 3), 0, 255))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.uniform(0.02, 0.12) * short) + 1, int(rng.uniform(0.01, 0.05) * short) + 1)
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
    return image


def compose(
    background: np.ndarray, objects: list[SceneObject], p: SceneParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paint the objects' sprites onto (a copy of) ``background`` in drawing order, later on top, dropping objects
    hidden by more than ``p.max_hidden``; returns the image (before camera effects), the boxes of the visible pixels,
    labels, track ids and the label map ((H, W) int16: index of the box covering each pixel, -1 for background)."""
    w, h = p.width, p.height
    short = min(w, h)
    sprites: list[tuple[SceneObject, np.ndarray, np.ndarray, int, int]] = []  # object, mask, texture, top, left
    for o in objects:
        side = int(round(o.size * o.scale * short))
        if side < _MIN_SPRITE_PX:
            continue
        mask, texture = o.sprite_for(side)
        top = int(round(o.cy * h - side / 2))
        left = int(round(o.cx * w - side / 2))
        sprites.append((o, mask, texture, top, left))

    # pass 1: who is visible enough; pass 2 (only if some were dropped): label map of the kept objects
    label_map, visible = _label_map(sprites, h, w)
    keep = [
        i
        for i, (_, mask, _, _, _) in enumerate(sprites)
        if visible[i] >= _MIN_VISIBLE_PX and visible[i] >= (1.0 - p.max_hidden) * int(mask.sum())
    ]
    if len(keep) < len(sprites):
        sprites = [sprites[i] for i in keep]
        label_map, visible = _label_map(sprites, h, w)

    image = background.copy()
    boxes = np.zeros((len(sprites), 4), np.float32)
    for k, (_, mask, texture, top, left) in enumerate(sprites):
        y0, y1, x0, x1, my0, mx0 = _clip(top, left, mask.shape[0], h, w)
        own = (label_map[y0:y1, x0:x1] == k).view(np.uint8)
        window = texture[my0 : my0 + (y1 - y0), mx0 : mx0 + (x1 - x0)]
        # OpenCV's masked copy is ~10x faster than numpy's copyto(where=) with a broadcast mask
        image[y0:y1, x0:x1] = cv2.copyTo(np.ascontiguousarray(window), own, image[y0:y1, x0:x1].copy())
        bx, by, bw, bh = cv2.boundingRect(own)  # bounding box of the nonzero (visible) pixels
        boxes[k] = (x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh)
    labels = np.array([o.label for o, *_ in sprites], np.int64)
    track_ids = np.array([o.track_id for o, *_ in sprites], np.int64)
    return image, boxes, labels, track_ids, label_map


def _label_map(
    sprites: list[tuple[SceneObject, np.ndarray, np.ndarray, int, int]], h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Paint object ids in drawing order (later on top); count each object's visible pixels."""
    label_map = np.full((h, w), -1, np.int16)
    placed = []
    for k, (_, mask, _, top, left) in enumerate(sprites):
        y0, y1, x0, x1, my0, mx0 = _clip(top, left, mask.shape[0], h, w)
        if y1 <= y0 or x1 <= x0:
            placed.append(None)
            continue
        sub = mask[my0 : my0 + (y1 - y0), mx0 : mx0 + (x1 - x0)]
        np.copyto(label_map[y0:y1, x0:x1], np.int16(k), where=sub)
        placed.append((y0, y1, x0, x1))
    visible = np.zeros(len(sprites), np.int64)
    for k, box in enumerate(placed):
        if box is not None:
            y0, y1, x0, x1 = box
            visible[k] = int(np.count_nonzero(label_map[y0:y1, x0:x1] == k))
    return label_map, visible


class NoiseField:
    """A fixed standard-normal noise field a little larger than the image; each frame adds a random window of it
    (fresh-looking noise without drawing H*W normals per frame)."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, pad: int = 32) -> None:
        self._unit = rng.standard_normal((height + pad, width + pad, 3), dtype=np.float32)
        self._parts: tuple[float, np.ndarray, np.ndarray] | None = None  # (sigma, positive part, negative part)

    def parts(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """The noise field at ``sigma``, split into uint8 positive and negative parts (cached)."""
        if self._parts is None or self._parts[0] != sigma:
            scaled = self._unit * np.float32(sigma)
            positive = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
            negative = np.clip(np.rint(-scaled), 0, 255).astype(np.uint8)
            self._parts = (sigma, positive, negative)
        return self._parts[1], self._parts[2]


def apply_effects(
    image: np.ndarray,
    p: SceneParams,
    blur_sigma: float,
    light: np.ndarray,
    noise: NoiseField,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blur (optics), lighting (brightness + gradient), then sensor noise. Geometry is unchanged."""
    h, w = image.shape[:2]
    if blur_sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    bright, gx, gy = (float(v) for v in light)
    if p.lighting > 0:
        # gain 1 + 0.6 b +- 0.4 gx +- 0.4 gy at the corners: at most 1 +- 1.4 * lighting, bilinear in between
        b, x, y = 1.0 + 0.6 * bright, 0.4 * gx, 0.4 * gy
        corners = np.array([[b - x - y, b + x - y], [b - x + y, b + x + y]], np.float32)
        gain = np.repeat(np.clip(corners * _GAIN_ONE, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
        image = cv2.multiply(image, gain, scale=1.0 / _GAIN_ONE)  # saturating uint8, as a sensor clips
    if p.noise > 0:
        positive, negative = noise.parts(p.noise)
        # a random window of a fixed noise field each frame: fresh-looking noise without drawing H*W normals
        oy = int(rng.integers(0, positive.shape[0] - h + 1))
        ox = int(rng.integers(0, positive.shape[1] - w + 1))
        image = cv2.add(image, positive[oy : oy + h, ox : ox + w])  # saturating uint8 adds: SIMD-fast
        image = cv2.subtract(image, negative[oy : oy + h, ox : ox + w])
    return np.ascontiguousarray(image)


def _clip(top: int, left: int, side: int, h: int, w: int) -> tuple[int, int, int, int, int, int]:
    """Image rows/cols a (side x side) sprite at (top, left) covers, and the sprite offset of that window."""
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + side), min(w, left + side)
    return y0, y1, x0, x1, y0 - top, x0 - left
