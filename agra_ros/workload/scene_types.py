"""The synthetic scenes' vocabulary: the object classes and their looks, a frame with its ground truth, and the
generator's settings (validated). Apart from the generator and its drawing code so that what only names a scene's
classes, frames or settings (workload traces, detector evaluation, the camera node's parameters) needs neither
OpenCV nor the drawing code."""

from __future__ import annotations

from dataclasses import dataclass, field

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
