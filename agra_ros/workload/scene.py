"""Synthetic scenes: the project's own detection data set and camera workload.

No pretrained detector can be downloaded here, so the detector is trained, evaluated and driven on scenes drawn by
this module. A scene holds 0-40 objects of five classes that differ in shape, colour *and* texture, on a textured
background with distractor lines and blobs that are not objects; noise, blur and a lighting gradient vary per frame.

Everything is deterministic from the seed (one ``numpy.random.Generator`` per generator, no global RNG state).
Video mode (``SceneGenerator(video=True)``) keeps objects alive across frames: they move with a velocity, bounce at
the borders, spin slowly, and appear or disappear by growing or shrinking over a few frames while the object count
drifts slowly inside ``[min_objects, max_objects]``.

This module is the generator (what is in the scene and how it moves) and the data set; the classes, frame and
settings are in :mod:`~agra_ros.workload.scene_types`, one object and its sprite in
:mod:`~agra_ros.workload.scene_sprites`, and drawing a frame (background, compositing with exact ground truth,
camera effects) in :mod:`~agra_ros.workload.scene_render`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from agra_ros.workload.scene_render import NoiseField, apply_effects, compose, make_background
from agra_ros.workload.scene_sprites import SceneObject
from agra_ros.workload.scene_types import CLASS_NAMES, CLASS_STYLES, Frame, SceneParams

_FADE_FRAMES = 8  # frames an object takes to grow in or shrink out in video mode


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
        self._objects: list[SceneObject] = []
        self._target_count = float(self._rng.uniform(self.params.min_objects, self.params.max_objects))
        self._light = self._random_light()
        self._blur_sigma = float(self._rng.uniform(0.0, self.params.blur))
        self._background: np.ndarray | None = None
        self._noise: NoiseField | None = None  # standard normal field a little larger than the image
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
            background = make_background(p, self._rng)
            self._light = self._random_light()
            self._blur_sigma = float(self._rng.uniform(0.0, p.blur))
        image, boxes, labels, track_ids, label_map = compose(background, objects, p)
        self.last_label_map = label_map
        self.last_background = background
        assert self._noise is not None
        image = apply_effects(image, p, self._blur_sigma, self._light, self._noise, self._rng)
        frame = Frame(image=image, boxes=boxes, labels=labels, index=self._index, track_ids=track_ids)
        self._index += 1
        return frame

    # ------------------------------------------------------------------ objects
    def _new_object(self, cx: float | None = None, cy: float | None = None) -> SceneObject:
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
        return SceneObject(
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

    def _sample_independent_objects(self) -> list[SceneObject]:
        p, rng = self.params, self._rng
        count = int(rng.integers(p.min_objects, p.max_objects + 1))
        placed: list[SceneObject] = []
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

    # ------------------------------------------------------------------ resolution and lighting
    def _build_resolution_assets(self) -> None:
        """Noise field (and, in video mode, the static background) for the current resolution."""
        p = self.params
        self._noise = NoiseField(self._rng, p.height, p.width)
        self._background = make_background(p, self._rng) if self.video else None

    def _random_light(self) -> np.ndarray:
        """(brightness, x-gradient, y-gradient), each in [-lighting, lighting]."""
        return self._rng.uniform(-1, 1, 3) * self.params.lighting


def make_dataset(seed: int, n: int, params: SceneParams | None = None) -> list[Frame]:
    """``n`` independent frames (a detection data set), identical for identical ``seed`` and ``params``."""
    if n < 0:
        raise ValueError(f"make_dataset: n must be >= 0, got {n}")
    generator = SceneGenerator(seed, params, video=False)
    return [generator.next_frame() for _ in range(n)]


def render_frame(rng_seed: int, params: SceneParams | None = None) -> Frame:
    """One independent frame from its own seed (handy for data loaders that index frames by seed)."""
    return SceneGenerator(rng_seed, params, video=False).next_frame()
