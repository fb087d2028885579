"""sensor_msgs/Image <-> numpy, with every check a malformed message can fail.

cv_bridge is used when importable (a ROS distro install); the PyPI wheels have no ROS 2 cv_bridge, so the same
conversion is written here for the encodings a camera driver publishes. ``bytes`` assignment is the fast path
(~2 ms for 1280x720 RGB; a memoryview is ~100x slower in rclpy's setter).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from agra_ros.limits import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE

# encoding -> (channels, dtype, conversion to RGB)
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)),
    "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)),
    "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)),
}


class ImageConversionError(ValueError):
    """An Image message that cannot be turned into an RGB frame (the reason is in the message)."""


def rgb_to_msg(image: np.ndarray, header: Header | None = None, encoding: str = "rgb8") -> Image:
    """Pack an (H, W, 3) uint8 RGB array (``rgb8``) or (H, W) grey array (``mono8``) into an Image."""
    if image.dtype != np.uint8:
        raise ImageConversionError(f"expected uint8 pixels, got {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if encoding not in ENCODINGS or ENCODINGS[encoding][0] != channels:
        raise ImageConversionError(f"array with {channels} channels cannot be sent as {encoding!r}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * channels)
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def error_kind(exc: ImageConversionError) -> str:
    """Counter name of a rejected image: encoding, zero_size, too_large, step, truncated (else invalid)."""
    kind = getattr(exc, "kind", None)
    if kind:
        return str(kind)
    text = str(exc)
    for prefix, name in (
        ("unsupported encoding", "encoding"),
        ("zero-size", "zero_size"),
        ("truncated", "truncated"),
        ("step", "step"),
    ):
        if text.startswith(prefix):
            return name
    return "too_large" if "larger than" in text else "invalid"


def header_problem(msg: Image) -> str:
    """What is wrong with an Image's header at a glance (encoding, size, data length), without touching its pixels;
    empty when nothing is. :func:`msg_to_rgb` checks the rest when the frame is converted."""
    if msg.encoding.lower() not in ENCODINGS:
        return f"unsupported encoding {msg.encoding!r} (supported: {', '.join(ENCODINGS)})"
    if msg.width == 0 or msg.height == 0:
        return f"zero-size image ({msg.width}x{msg.height})"
    if msg.step * msg.height > len(msg.data):
        return f"truncated image: {len(msg.data)} bytes, expected step*height = {msg.step * msg.height}"
    return ""


def msg_to_rgb(msg: Image) -> np.ndarray:
    """Unpack an Image into an (H, W, 3) uint8 RGB array.

    Raises :class:`ImageConversionError` for unknown encodings, zero sizes, sizes beyond
    :data:`agra_ros.limits.MAX_IMAGE_SIDE` / :data:`agra_ros.limits.MAX_IMAGE_BYTES`, a step shorter than a row,
    and data shorter than ``step * height`` (truncated). Rows padded beyond ``width * channels`` are handled.
    """
    enc = msg.encoding.lower()
    if enc not in ENCODINGS:
        raise ImageConversionError(f"unsupported encoding {msg.encoding!r} (supported: {', '.join(ENCODINGS)})")
    channels, dtype = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"zero-size image ({w}x{h})")
    if h > MAX_IMAGE_SIDE or w > MAX_IMAGE_SIDE:
        raise ImageConversionError(f"image {w}x{h} larger than {MAX_IMAGE_SIDE} px per side")
    row = w * channels * dtype.itemsize
    if step < row:
        raise ImageConversionError(f"step {step} shorter than one row ({w} px x {channels} ch = {row} bytes)")
    if step * h > MAX_IMAGE_BYTES:
        raise ImageConversionError(
            f"image {w}x{h} {enc} of {step * h / 2**20:.0f} MiB larger than the {MAX_IMAGE_BYTES / 2**20:.0f} MiB limit"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < step * h:
        raise ImageConversionError(f"truncated image: {buf.size} bytes, expected step*height = {step * h}")
    arr = buf[: step * h].reshape(h, step)[:, :row].reshape(h, w, channels)
    if enc == "rgb8":
        return arr
    if enc == "bgr8":
        return arr[:, :, ::-1]
    if enc == "rgba8":
        return arr[:, :, :3]
    if enc == "bgra8":
        return arr[:, :, 2::-1]
    return np.repeat(arr, 3, axis=2)  # mono8
