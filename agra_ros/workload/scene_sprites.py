"""One scene object and its sprite: the object's state (class, position, motion, size, angle, colour, texture
period) and its binary shape mask and class texture, drawn without anti-aliasing so that ground truth stays exact,
and cached while the object's size and quantised angle stay the same. Apart from the generator (which decides what
objects exist and how they move) and from the compositing (which paints sprites into a frame)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from agra_ros.workload.scene_types import CLASS_NAMES, CLASS_STYLES

_ANGLE_STEP = 2 * math.pi / 120  # rotation is drawn in 3 degree steps, so sprites can be cached between frames


@dataclass
class SceneObject:
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
