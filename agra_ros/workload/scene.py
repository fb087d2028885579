"""Synthetic scenes: the project's own detection data set and camera workload.

No pretrained detector can be downloaded here, so the detector is trained, evaluated and driven on scenes drawn by
this module. A scene holds 0-40 objects of five classes that differ in shape, colour *and* texture, on a textured
background with distractor lines and blobs that are not objects; noise, blur and a lighting gradient vary per frame.

Ground truth is exact: objects are drawn without anti-aliasing into a label map (one id per pixel, later objects on
top), and every box is the bounding box of the object's *visible* pixels in that map. Objects hidden by more than
``SceneParams.max_hidden`` of their area (by other objects or by the image border) are dropped before anything is
painted, so no unlabelled sliver of an object is ever left in the image. Boxes are ``[x0, y0, x1, y1]`` in pixels with
exclusive ``x1, y1`` (``x1 - x0`` is the width in pixels): the visible pixels are ``image[y0:y1, x0:x1]``.

Everything is deterministic from the seed (one ``numpy.random.Generator`` per generator, no global RNG state).
Video mode (``SceneGenerator(video=True)``) keeps objects alive across frames: they move with a velocity, bounce at
the borders, spin slowly, and appear or disappear by growing or shrinking over a few frames while the object count
drifts slowly inside ``[min_objects, max_objects]``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = ("disc", "box", "triangle", "star", "ring")
"""Object classes. Each has its own shape, base colour and texture (see ``CLASS_STYLES``)."""

CLASS_STYLES: dict[str, tuple[tuple[int, int, int], str]] = {
    "disc": ((225, 45, 40), "solid"),
    "box": ((40, 90, 225), "stripes"),
    "triangle": ((40, 185, 60), "checker"),
    "star": ((235, 205, 35), "dots"),
    "ring": ((200, 55, 205), "gradient"),
}
"""Class -> (RGB base colour, texture). Colours are jittered per object, but stay far apart in hue."""

_FADE_FRAMES = 8  # frames an object takes to grow in or shrink out in video mode
_MIN_VISIBLE_PX = 12  # an object with fewer visible pixels is not a detectable object: dropped
_MIN_SPRITE_PX = 3
_GAIN_ONE = 100.0  # lighting gain map in fixed point (uint8, 100 = unchanged, so gains up to 2.55)
_ANGLE_STEP = 2 * math.pi / 120  # rotation is drawn in 3 degree steps, so sprites can be cached between frames


@dataclass
class Frame:
    """One camera frame with its ground truth."""

    image: np.ndarray
    """(H, W, 3) uint8, RGB."""
    boxes: np.ndarray
    """(N, 4) float32, [x0, y0, x1, y1] pixels, exclusive x1/y1: exact extent of the object's visible pixels."""
    labels: np.ndarray
    """(N,) int64, index into CLASS_NAMES."""
    index: int
    """Frame number in the stream."""
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    """(N,) int64, identity of each object across frames (video mode); empty for sources without ground truth."""


@dataclass
class SceneParams:
    """Settings of the scene generator (all validated on construction and on ``SceneGenerator.set_params``)."""

    width: int = 640
    """Image width in pixels."""
    height: int = 480
    """Image height in pixels."""
    min_objects: int = 0
    """Fewest objects per frame (before occlusion drops hidden ones)."""
    max_objects: int = 40
    """Most objects per frame."""
    min_size_frac: float = 0.06
    """Smallest object diameter as a share of min(width, height): 0.06 is ~15 px in a 256x256 detector input."""
    max_size_frac: float = 0.26
    """Largest object diameter as a share of min(width, height)."""
    noise: float = 6.0
    """Sensor noise: standard deviation of additive Gaussian noise in 8-bit intensity units."""
    blur: float = 1.0
    """Largest Gaussian blur sigma in pixels (each frame draws a sigma in [0, blur])."""
    lighting: float = 0.35
    """Strength of the lighting variation: brightness change and linear gradient across the image, 0..1."""
    clutter: float = 1.0
    """Background clutter: 1.0 draws ~10 distractor lines and ~6 blobs; 0 gives a plain textured background."""
    occlusion: float = 0.5
    """Share of objects placed freely (may overlap others); the rest are placed to avoid overlap where they can."""
    max_hidden: float = 0.7
    """Objects with a larger share of their area hidden (by other objects or the border) are dropped."""
    speed: float = 0.006
    """Mean object speed in video mode, as a share of the image size per frame."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field out of range."""
        checks: list[tuple[bool, str]] = [
            (
                isinstance(self.width, (int, np.integer)) and 32 <= self.width <= 4096,
                "width must be an int in 32..4096",
            ),
            (
                isinstance(self.height, (int, np.integer)) and 32 <= self.height <= 4096,
                "height must be an int in 32..4096",
            ),
            (
                isinstance(self.min_objects, (int, np.integer)) and 0 <= self.min_objects <= 200,
                "min_objects must be an int in 0..200",
            ),
            (
                isinstance(self.max_objects, (int, np.integer)) and self.min_objects <= self.max_objects <= 200,
                "max_objects must be an int in min_objects..200",
            ),
            (0.01 <= self.min_size_frac <= 1.0, "min_size_frac must be in 0.01..1"),
            (self.min_size_frac <= self.max_size_frac <= 1.0, "max_size_frac must be in min_size_frac..1"),
            (0.0 <= self.noise <= 100.0, "noise must be in 0..100"),
            (0.0 <= self.blur <= 20.0, "blur must be in 0..20"),
            (0.0 <= self.lighting <= 1.0, "lighting must be in 0..1"),
            (0.0 <= self.clutter <= 10.0, "clutter must be in 0..10"),
            (0.0 <= self.occlusion <= 1.0, "occlusion must be in 0..1"),
            (0.0 <= self.max_hidden < 1.0, "max_hidden must be in 0..1 (exclusive)"),
            (0.0 <= self.speed <= 0.2, "speed must be in 0..0.2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SceneParams: {message} (got {self})")


@dataclass
class _SceneObject:
    """One object's state; position and size are resolution independent (shares of the image)."""

    track_id: int
    label: int
    cx: float  # centre, share of width
    cy: float  # centre, share of height
    vx: float  # share of width per frame
    vy: float
    size: float  # diameter of the circumscribed circle, share of min(width, height)
    angle: float  # radians
    spin: float  # radians per frame
    aspect: float  # box: side ratio; star: inner/outer radius; ring: inner/outer radius; triangle: skew
    colour: np.ndarray  # (3,) float32 RGB
    period: float  # texture period, share of the sprite size
    scale: float = 1.0  # appearance ramp in video mode (grows from 0 to 1, shrinks back when leaving)
    leaving: bool = False
    sprite_key: tuple[int, int] = (-1, 0)  # (side, angle step) the cached sprite was drawn for
    sprite: tuple[np.ndarray, np.ndarray] | None = None  # cached (mask, texture): video frames reuse it

    def sprite_for(self, side: int) -> tuple[np.ndarray, np.ndarray]:
        """Mask and texture at this size; the angle is quantised so a slowly spinning object reuses its sprite."""
        step = int(round(self.angle / _ANGLE_STEP))
        if self.sprite is None or self.sprite_key != (side, step):
            angle = step * _ANGLE_STEP
            self.sprite = (
                _shape_mask(self.label, side, angle, self.aspect),
                _texture(self.label, side, angle, self.colour, self.period),
            )
            self.sprite_key = (side, step)
        return self.sprite


def _shape_mask(label: int, side: int, angle: float, aspect: float) -> np.ndarray:
    """Binary (side, side) mask of one class's shape, drawn without anti-aliasing (so ground truth is exact)."""
    mask = np.zeros((side, side), np.uint8)
    c = (side - 1) / 2.0
    r = side / 2.0
    name = CLASS_NAMES[label]
    shift = 4  # sub-pixel vertex precision; LINE_8 keeps the fill binary
    scale = 1 << shift

    def poly(points: np.ndarray) -> None:
        pts = np.round(points * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)

    def rotated(radii: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        t = thetas + angle
        return np.stack([c + radii * np.cos(t), c + radii * np.sin(t)], axis=1)

    if name in ("disc", "ring"):
        # exact discs from the distance to the centre (cv2.circle with sub-pixel shift draws visible polygons)
        d = np.arange(side, dtype=np.float32) - c
        dist2 = d[None, :] ** 2 + d[:, None] ** 2
        inside = dist2 <= r * r
        if name == "ring":
            inside &= dist2 > (r * aspect) ** 2
        return inside
    if name == "box":
        phi = math.atan(aspect)
        thetas = np.array([phi, math.pi - phi, math.pi + phi, 2 * math.pi - phi])
        poly(rotated(np.full(4, r), thetas))
    elif name == "triangle":
        thetas = np.array([-math.pi / 2, math.pi / 6 + aspect, 5 * math.pi / 6 - aspect])
        poly(rotated(np.full(3, r), thetas))
    elif name == "star":
        thetas = -math.pi / 2 + np.arange(10) * (math.pi / 5)
        radii = np.where(np.arange(10) % 2 == 0, r, r * aspect)
        poly(rotated(radii, thetas))
    else:  # pragma: no cover - CLASS_NAMES and this function change together
        raise ValueError(f"no shape for class {name!r}")
    return mask.astype(bool)


def _texture(label: int, side: int, angle: float, colour: np.ndarray, period: float) -> np.ndarray:
    """(side, side, 3) uint8 RGB texture of one class, rotating with the object.

    Built as a per-pixel palette index and a small palette (``palette.take``): numpy's broadcasting of 3-channel
    colours over an image is several times slower than a table look-up.
    """
    style = CLASS_STYLES[CLASS_NAMES[label]][1]
    coords = np.arange(side, dtype=np.float32) - (side - 1) / 2.0
    steps = 32  # palette size of the shaded textures
    if style == "solid":
        # a soft vertical shading so the disc is not perfectly flat; still "solid" next to the other textures
        rows = (np.arange(side) * steps // side).astype(np.uint8)
        palette = colour[None, :] * np.linspace(1.08, 0.9, steps, dtype=np.float32)[:, None]
        return np.clip(palette, 0, 255).astype(np.uint8).take(np.broadcast_to(rows[:, None], (side, side)), axis=0)
    cos, sin = math.cos(angle), math.sin(angle)
    u = coords[None, :] * cos + coords[:, None] * sin
    p = max(3.0, period * side)
    dark = colour * 0.42
    if style == "stripes":
        index = np.floor(u * (2 / p)).astype(np.uint8) & 1
        palette = np.stack([colour, dark])
    elif style == "checker":
        v = coords[:, None] * cos - coords[None, :] * sin
        index = (np.floor(u * (2 / p)).astype(np.int32) + np.floor(v * (2 / p)).astype(np.int32)).astype(np.uint8) & 1
        palette = np.stack([colour, colour * 0.45 + 140.0])
    elif style == "dots":
        v = coords[:, None] * cos - coords[None, :] * sin
        du = u - p * np.floor(u * (1 / p)) - p / 2
        dv = v - p * np.floor(v * (1 / p)) - p / 2
        index = (du * du + dv * dv < (0.3 * p) ** 2).view(np.uint8)
        palette = np.stack([colour, dark])
    elif style == "gradient":
        index = np.clip((u / max(side, 1) + 0.5) * steps, 0, steps - 1).astype(np.uint8)
        palette = colour[None, :] * (1.0 - 0.6 * np.linspace(0.0, 1.0, steps, dtype=np.float32))[:, None]
    else:  # pragma: no cover - CLASS_STYLES and this function change together
        raise ValueError(f"unknown texture {style!r}")
    return np.clip(palette, 0, 255).astype(np.uint8).take(index, axis=0)


class SceneGenerator:
    """A stream of synthetic frames with exact ground truth, deterministic from ``seed``.

    ``video=True``: one continuous scene (static background, moving objects, slowly drifting object count,
    lighting and blur). ``video=False``: every frame is an independent scene (used for data sets).
    """

    def __init__(self, seed: int, params: SceneParams | None = None, video: bool = True) -> None:
        self.seed = int(seed)
        self.video = bool(video)
        self.params = dataclasses.replace(params) if params is not None else SceneParams()
        self._rng = np.random.default_rng(self.seed)
        self._index = 0
        self._next_track_id = 0
        self._objects: list[_SceneObject] = []
        self._target_count = float(self._rng.uniform(self.params.min_objects, self.params.max_objects))
        self._light = self._random_light()
        self._blur_sigma = float(self._rng.uniform(0.0, self.params.blur))
        self._background: np.ndarray | None = None
        self._unit_noise: np.ndarray | None = None  # standard normal, a little larger than the image
        self._noise_banks: tuple[float, np.ndarray, np.ndarray] | None = None  # (sigma, positive part, negative part)
        self.last_label_map: np.ndarray | None = None
        """(H, W) int16 of the last frame: index of the box covering each pixel, -1 for background (for tests)."""
        self.last_background: np.ndarray | None = None
        """The last frame's background before objects and effects were drawn (for tests and debugging)."""
        self._build_resolution_assets()

    # ------------------------------------------------------------------ public API
    def set_params(self, **changes: object) -> None:
        """Change settings mid-stream (e.g. density or resolution from a workload trace); ValueError on bad values."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(SceneParams)}
        if unknown:
            raise ValueError(f"unknown scene parameter(s): {sorted(unknown)}")
        new = dataclasses.replace(self.params, **changes)  # validates in __post_init__
        resized = (new.width, new.height) != (self.params.width, self.params.height)
        self.params = new
        self._target_count = float(np.clip(self._target_count, new.min_objects, new.max_objects))
        self._blur_sigma = min(self._blur_sigma, new.blur)
        if resized:
            self._build_resolution_assets()

    def next_frame(self) -> Frame:
        """Draw the next frame of the stream."""
        p = self.params
        if self.video:
            self._step_video()
            objects = [o for o in self._objects if o.scale > 0]
            background = self._background
            assert background is not None
        else:
            objects = self._sample_independent_objects()
            background = self._make_background()
            self._light = self._random_light()
            self._blur_sigma = float(self._rng.uniform(0.0, p.blur))
        image, boxes, labels, track_ids = self._render(background, objects)
        frame = Frame(image=image, boxes=boxes, labels=labels, index=self._index, track_ids=track_ids)
        self._index += 1
        return frame

    # ------------------------------------------------------------------ objects
    def _new_object(self, cx: float | None = None, cy: float | None = None) -> _SceneObject:
        rng, p = self._rng, self.params
        label = int(rng.integers(len(CLASS_NAMES)))
        base = np.array(CLASS_STYLES[CLASS_NAMES[label]][0], np.float32)
        colour = np.clip(base * rng.uniform(0.8, 1.1) + rng.uniform(-18, 18, 3), 0, 255).astype(np.float32)
        # log-uniform sizes: small objects are as common as large ones on a log scale, as in real footage
        size = float(math.exp(rng.uniform(math.log(p.min_size_frac), math.log(p.max_size_frac))))
        name = CLASS_NAMES[label]
        aspect = {
            "box": rng.uniform(0.55, 1.0),
            "ring": rng.uniform(0.45, 0.65),
            "star": rng.uniform(0.38, 0.5),
            "triangle": rng.uniform(-0.15, 0.15),
        }.get(name, 1.0)
        speed = p.speed * rng.uniform(0.3, 1.7)
        # half the objects turn slowly; a disc looks the same at any angle. Fewer turning objects means fewer sprite
        # redraws per video frame (a sprite is cached until its 3-degree angle step changes).
        spins = rng.uniform() < 0.5 and name != "disc"
        spin = float(rng.normal(0.0, 0.015)) if spins else 0.0
        heading = rng.uniform(0, 2 * math.pi)
        return _SceneObject(
            track_id=self._take_track_id(),
            label=label,
            cx=float(rng.uniform(0, 1) if cx is None else cx),
            cy=float(rng.uniform(0, 1) if cy is None else cy),
            vx=speed * math.cos(heading),
            vy=speed * math.sin(heading),
            size=size,
            angle=float(rng.uniform(0, 2 * math.pi)),
            spin=spin,
            aspect=float(aspect),
            colour=colour,
            period=float(rng.uniform(0.22, 0.4)),
        )

    def _take_track_id(self) -> int:
        self._next_track_id += 1
        return self._next_track_id - 1

    def _sample_independent_objects(self) -> list[_SceneObject]:
        p, rng = self.params, self._rng
        count = int(rng.integers(p.min_objects, p.max_objects + 1))
        placed: list[_SceneObject] = []
        aspect_wh = p.width / p.height
        for _ in range(count):
            obj = self._new_object()
            if rng.uniform() >= p.occlusion:  # try to find a free spot; keep the least-overlapping one
                best, best_overlap = (obj.cx, obj.cy), math.inf
                for _attempt in range(8):
                    cx, cy = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
                    overlap = sum(
                        max(0.0, (o.size + obj.size) / 2 - math.hypot((o.cx - cx) * aspect_wh, o.cy - cy) * 0.98)
                        for o in placed
                    )
                    if overlap < best_overlap:
                        best, best_overlap = (cx, cy), overlap
                    if overlap == 0.0:
                        break
                obj.cx, obj.cy = best
            placed.append(obj)
        return placed

    def _step_video(self) -> None:
        p, rng = self.params, self._rng
        if self._index == 0:
            self._objects = [self._new_object() for _ in range(int(round(self._target_count)))]
            self._keep_inside_all()
            return
        # object count drifts slowly (a random walk with a gentle pull to the middle of the range)
        mid = (p.min_objects + p.max_objects) / 2
        span = max(1.0, p.max_objects - p.min_objects)
        self._target_count += float(rng.normal(0.0, 0.02 * span)) + 0.01 * (mid - self._target_count)
        self._target_count = float(np.clip(self._target_count, p.min_objects, p.max_objects))
        target = int(round(self._target_count))
        alive = [o for o in self._objects if not o.leaving]
        if len(alive) < target:
            for _ in range(min(2, target - len(alive))):
                obj = self._new_object()
                obj.scale = 1.0 / _FADE_FRAMES
                self._objects.append(obj)
        elif len(alive) > target:
            for obj in alive[: min(2, len(alive) - target)]:  # the oldest leave first
                obj.leaving = True
        for o in self._objects:
            o.vx += float(rng.normal(0.0, 0.04 * p.speed))
            o.vy += float(rng.normal(0.0, 0.04 * p.speed))
            o.cx += o.vx
            o.cy += o.vy
            o.angle += o.spin
            step = 1.0 / _FADE_FRAMES
            o.scale = max(0.0, o.scale - step) if o.leaving else min(1.0, o.scale + step)
        self._objects = [o for o in self._objects if not (o.leaving and o.scale <= 0.0)]
        self._keep_inside_all()
        # lighting and blur drift slowly, as with a real camera and changing daylight
        self._light = self._light + rng.normal(0.0, 0.01, 3) * p.lighting
        self._light = np.clip(self._light, -p.lighting, p.lighting)
        self._blur_sigma = float(np.clip(self._blur_sigma + rng.normal(0.0, 0.03 * max(p.blur, 1e-9)), 0.0, p.blur))

    def _keep_inside_all(self) -> None:
        """Bounce objects off the borders so they stay in view while alive."""
        p = self.params
        short = min(p.width, p.height)
        for o in self._objects:
            rx = o.size * o.scale * short / 2 / p.width
            ry = o.size * o.scale * short / 2 / p.height
            if o.cx - rx < 0:
                o.cx, o.vx = min(rx, 1 - rx), abs(o.vx)
            elif o.cx + rx > 1:
                o.cx, o.vx = max(1 - rx, rx), -abs(o.vx)
            if o.cy - ry < 0:
                o.cy, o.vy = min(ry, 1 - ry), abs(o.vy)
            elif o.cy + ry > 1:
                o.cy, o.vy = max(1 - ry, ry), -abs(o.vy)

    # ------------------------------------------------------------------ background and effects
    def _build_resolution_assets(self) -> None:
        """Noise bank (and, in video mode, the static background) for the current resolution."""
        p = self.params
        pad = 32
        self._unit_noise = self._rng.standard_normal((p.height + pad, p.width + pad, 3), dtype=np.float32)
        self._noise_banks = None
        self._background = self._make_background() if self.video else None

    def _make_background(self) -> np.ndarray:
        """A desaturated textured surface with distractor lines and blobs: clutter the detector must ignore."""
        p, rng = self.params, self._rng
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

    def _random_light(self) -> np.ndarray:
        """(brightness, x-gradient, y-gradient), each in [-lighting, lighting]."""
        return self._rng.uniform(-1, 1, 3) * self.params.lighting

    # ------------------------------------------------------------------ rendering
    def _render(
        self, background: np.ndarray, objects: list[_SceneObject]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p = self.params
        w, h = p.width, p.height
        short = min(w, h)
        sprites: list[tuple[_SceneObject, np.ndarray, np.ndarray, int, int]] = []  # object, mask, texture, top, left
        for o in objects:
            side = int(round(o.size * o.scale * short))
            if side < _MIN_SPRITE_PX:
                continue
            mask, texture = o.sprite_for(side)
            top = int(round(o.cy * h - side / 2))
            left = int(round(o.cx * w - side / 2))
            sprites.append((o, mask, texture, top, left))

        # pass 1: who is visible enough; pass 2 (only if some were dropped): label map of the kept objects
        label_map, visible = self._label_map(sprites, h, w)
        keep = [
            i
            for i, (_, mask, _, _, _) in enumerate(sprites)
            if visible[i] >= _MIN_VISIBLE_PX and visible[i] >= (1.0 - p.max_hidden) * int(mask.sum())
        ]
        if len(keep) < len(sprites):
            sprites = [sprites[i] for i in keep]
            label_map, visible = self._label_map(sprites, h, w)

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
        self.last_label_map = label_map
        self.last_background = background
        return self._apply_effects(image), boxes, labels, track_ids

    @staticmethod
    def _label_map(
        sprites: list[tuple[_SceneObject, np.ndarray, np.ndarray, int, int]], h: int, w: int
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

    def _apply_effects(self, image: np.ndarray) -> np.ndarray:
        """Blur (optics), lighting (brightness + gradient), then sensor noise. Geometry is unchanged."""
        p, rng = self.params, self._rng
        h, w = image.shape[:2]
        if self._blur_sigma > 0.3:
            image = cv2.GaussianBlur(image, (0, 0), self._blur_sigma)
        bright, gx, gy = (float(v) for v in self._light)
        if p.lighting > 0:
            # gain 1 + 0.6 b +- 0.4 gx +- 0.4 gy at the corners: at most 1 +- 1.4 * lighting, bilinear in between
            b, x, y = 1.0 + 0.6 * bright, 0.4 * gx, 0.4 * gy
            corners = np.array([[b - x - y, b + x - y], [b - x + y, b + x + y]], np.float32)
            gain = np.repeat(np.clip(corners * _GAIN_ONE, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
            image = cv2.multiply(image, gain, scale=1.0 / _GAIN_ONE)  # saturating uint8, as a sensor clips
        if p.noise > 0:
            positive, negative = self._noise_parts()
            # a random window of a fixed noise field each frame: fresh-looking noise without drawing H*W normals
            oy = int(rng.integers(0, positive.shape[0] - h + 1))
            ox = int(rng.integers(0, positive.shape[1] - w + 1))
            image = cv2.add(image, positive[oy : oy + h, ox : ox + w])  # saturating uint8 adds: SIMD-fast
            image = cv2.subtract(image, negative[oy : oy + h, ox : ox + w])
        return np.ascontiguousarray(image)

    def _noise_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """The noise field at the current sigma, split into uint8 positive and negative parts (cached)."""
        sigma = self.params.noise
        if self._noise_banks is None or self._noise_banks[0] != sigma:
            assert self._unit_noise is not None
            scaled = self._unit_noise * np.float32(sigma)
            positive = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
            negative = np.clip(np.rint(-scaled), 0, 255).astype(np.uint8)
            self._noise_banks = (sigma, positive, negative)
        return self._noise_banks[1], self._noise_banks[2]


def _clip(top: int, left: int, side: int, h: int, w: int) -> tuple[int, int, int, int, int, int]:
    """Image rows/cols a (side x side) sprite at (top, left) covers, and the sprite offset of that window."""
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + side), min(w, left + side)
    return y0, y1, x0, x1, y0 - top, x0 - left


def make_dataset(seed: int, n: int, params: SceneParams | None = None) -> list[Frame]:
    """``n`` independent frames (a detection data set), identical for identical ``seed`` and ``params``."""
    if n < 0:
        raise ValueError(f"make_dataset: n must be >= 0, got {n}")
    generator = SceneGenerator(seed, params, video=False)
    return [generator.next_frame() for _ in range(n)]


def render_frame(rng_seed: int, params: SceneParams | None = None) -> Frame:
    """One independent frame from its own seed (handy for data loaders that index frames by seed)."""
    return SceneGenerator(rng_seed, params, video=False).next_frame()
