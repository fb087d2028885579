"""The workload profile W: what the camera sees, as the granularity policy network reads it.

W is a 512-d embedding of the frame from a small frozen CNN plus four scalars (docs/architecture.md): resolution, objects in
the last frame, mean detection confidence and motion. The CNN is randomly initialised from a fixed seed and never
trained: random convolutional features already separate scenes by texture, clutter and density, they need no
download, and they cost about a millisecond per frame, which matters because W is computed for every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

EMBEDDING_DIM = 512
"""Length of the frame embedding."""
SCALAR_NAMES: tuple[str, ...] = ("resolution_mpix", "objects", "mean_confidence", "motion")
"""Scalars appended to the embedding, in ``WorkloadFeatures.vector()`` order."""
WORKLOAD_DIM = EMBEDDING_DIM + len(SCALAR_NAMES)
"""Length of ``WorkloadFeatures.vector()``: the W part of the policy's observation."""
OBJECTS_SCALE = 40.0
"""Object counts are divided by this in ``vector()`` (the scene's usual maximum), so every entry is O(1)."""
INPUT_SIZE = 96
"""Side of the square image the encoder sees."""


class WorkloadEncoder:
    """A frozen, seeded 4-layer CNN: RGB uint8 frame -> L2-normalised 512-d embedding.

    Layers: four 3x3 stride-2 convolutions (3 -> 16 -> 32 -> 64 -> 256 channels, 96 -> 6 px), ReLU between them;
    the last feature map is pooled into its per-channel mean and standard deviation (texture energy), 2 x 256 = 512.
    The same seed gives the same weights on every machine (weights drawn with a seeded torch.Generator on CPU).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        widths = (3, 16, 32, 64, EMBEDDING_DIM // 2)
        generator = torch.Generator().manual_seed(self.seed)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
            with torch.no_grad():  # He initialisation from our own generator: deterministic, no global RNG
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / (cin * 9)) ** 0.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.05)
            layers.append(conv)
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    @staticmethod
    def thumbnail(image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (96, 96, 3) uint8: bilinear to 192 then a 2x2 box filter (cheap anti-aliasing).

        A direct INTER_AREA resize from 640x480 costs ~1.2 ms (4 ms from 1280x720); this costs ~0.15 ms at both.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"WorkloadEncoder expects an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        mid = cv2.resize(image, (2 * INPUT_SIZE, 2 * INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(mid, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)

    @torch.inference_mode()
    def embed_thumbnail(self, small: np.ndarray) -> np.ndarray:
        """Embedding of a frame already reduced by ``thumbnail``."""
        x = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1))).float()
        # per-image standardisation (channel means removed, one global scale): without it the embedding mostly
        # encodes overall brightness and background tint; with it, structure and colour contrast (objects, clutter)
        x = (x - x.mean(dim=(1, 2), keepdim=True)) / (x.std() + 1e-3)
        x = x.unsqueeze(0)
        fmap = self.net(x)[0].flatten(1)  # (256, 36)
        pooled = torch.cat([fmap.mean(dim=1), fmap.std(dim=1, unbiased=False)])
        pooled = pooled / pooled.norm().clamp_min(1e-12)
        return pooled.numpy().astype(np.float32, copy=False)

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The frame's (512,) float32 embedding, unit L2 norm."""
        return self.embed_thumbnail(self.thumbnail(image))


@dataclass
class WorkloadFeatures:
    """The workload profile W of one frame."""

    embedding: np.ndarray
    """(512,) float32, unit norm: what the scene looks like."""
    resolution_mpix: float
    """Image size in megapixels (width * height / 1e6)."""
    objects: int
    """Objects detected in the last frame."""
    mean_confidence: float
    """Mean detection confidence in the last frame, 0..1 (0 when nothing was detected)."""
    motion: float
    """Mean absolute difference of the 96x96 grey thumbnails of this and the previous frame, 0..1 (0 at first)."""

    def vector(self) -> np.ndarray:
        """(WORKLOAD_DIM,) float32: embedding, then the scalars in SCALAR_NAMES order (objects / OBJECTS_SCALE)."""
        scalars = np.array(
            [self.resolution_mpix, self.objects / OBJECTS_SCALE, self.mean_confidence, self.motion], np.float32
        )
        return np.concatenate([self.embedding.astype(np.float32, copy=False), scalars])


class WorkloadTracker:
    """Computes W frame after frame; keeps the previous thumbnail to measure motion."""

    def __init__(self, encoder: WorkloadEncoder | None = None) -> None:
        self.encoder = encoder if encoder is not None else WorkloadEncoder()
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new stream starts)."""
        self._previous = None

    def update(self, image: np.ndarray, objects: int, mean_conf: float) -> WorkloadFeatures:
        """W for ``image``, given the detector's object count and mean confidence on the last frame."""
        if objects < 0:
            raise ValueError(f"objects must be >= 0, got {objects}")
        if not 0.0 <= mean_conf <= 1.0:
            raise ValueError(f"mean_conf must be in 0..1, got {mean_conf}")
        small = self.encoder.thumbnail(image)  # validates the image; shared by the embedding and motion
        embedding = self.encoder.embed_thumbnail(small)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        motion = 0.0 if self._previous is None else float(cv2.absdiff(grey, self._previous).mean()) / 255.0
        self._previous = grey
        return WorkloadFeatures(
            embedding=embedding,
            resolution_mpix=image.shape[0] * image.shape[1] / 1e6,
            objects=int(objects),
            mean_confidence=float(mean_conf),
            motion=motion,
        )
