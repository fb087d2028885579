"""A live Foxglove WebSocket server for the graph: annotated image, detections, and the series users plot.

Built on the ``foxglove-sdk`` package (PyPI), so a pip install without a ROS distro can be watched in the Foxglove
app ("Open connection" -> Foxglove WebSocket -> ``ws://HOST:PORT``) with the shipped layout
(``config/foxglove_layout.json``). On a distro, ``foxglove_bridge`` serves the ROS topics themselves and the same
layout works there: the topic names below are the graph's own.

Nothing here imports rclpy: the viewer node (``agra_ros/nodes/viewer.py``) converts messages to numpy and calls
:class:`FoxgloveView`; a test can drive it directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

IMAGE_TOPIC = "/image_annotated"
"""The annotated frame, JPEG-compressed (foxglove.CompressedImage): a fraction of the raw size on the socket."""
DETECTIONS_TOPIC = "/detections"
"""The detections as image annotations (foxglove.ImageAnnotations), drawn over IMAGE_TOPIC in the Image panel."""
SERIES_TOPIC = "/agra/series"
"""One JSON object per feedback message: fps, target_fps, latency, power, energies, accuracy, mean width."""
CONFIGURATION_TOPIC = "/agra/configuration"
"""The granularity configuration in force, short form, as JSON ``{"configuration": "FFP55.../1/local"}``."""


def _stamp(stamp_ns: int):
    from foxglove.messages import Timestamp

    return Timestamp(sec=int(stamp_ns // 1_000_000_000), nsec=int(stamp_ns % 1_000_000_000))


def _finite(value: float) -> float | None:
    """JSON has no NaN: a value not measured on this frame is sent as null."""
    v = float(value)
    return v if math.isfinite(v) else None


class FoxgloveView:
    """A WebSocket server and its four channels; ``port=0`` binds a free port (see :attr:`port`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, name: str = "agra_ros", jpeg_quality: int = 80):
        import foxglove
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel

        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality={jpeg_quality} is outside [1, 100]")
        self.jpeg_quality = int(jpeg_quality)
        self.context = foxglove.Context()  # our own: several views (tests) never share channels
        self.server = foxglove.start_server(name=name, host=host, port=port, context=self.context)
        self.image = CompressedImageChannel(IMAGE_TOPIC, context=self.context)
        self.annotations = ImageAnnotationsChannel(DETECTIONS_TOPIC, context=self.context)
        self.series_channel = foxglove.Channel(SERIES_TOPIC, message_encoding="json", context=self.context)
        self.configuration_channel = foxglove.Channel(
            CONFIGURATION_TOPIC, message_encoding="json", context=self.context
        )
        self.sent = {"image": 0, "detections": 0, "series": 0, "configuration": 0}

    @property
    def port(self) -> int:
        return int(self.server.port)

    def log_image(self, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        """An RGB uint8 frame, JPEG-encoded."""
        from foxglove.messages import CompressedImage

        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:
            raise ValueError(f"cannot JPEG-encode an image of shape {rgb.shape}")
        msg = CompressedImage(timestamp=_stamp(stamp_ns), frame_id=frame_id, data=jpeg.tobytes(), format="jpeg")
        self.image.log(msg, log_time=int(stamp_ns))
        self.sent["image"] += 1

    def log_detections(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: Sequence[str],
        stamp_ns: int,
    ) -> None:
        """Boxes (N, 4) xyxy in image pixels as closed outlines, each with a "label score" text."""
        from foxglove.messages import (
            Color,
            ImageAnnotations,
            Point2,
            PointsAnnotation,
            PointsAnnotationType,
            TextAnnotation,
        )

        ts = _stamp(stamp_ns)
        green, black = Color(r=0.1, g=0.9, b=0.2, a=1.0), Color(r=0.0, g=0.0, b=0.0, a=0.6)
        points, texts = [], []
        for (x0, y0, x1, y1), score, label in zip(np.asarray(boxes, dtype=float), scores, labels):
            corners = [Point2(x=x0, y=y0), Point2(x=x1, y=y0), Point2(x=x1, y=y1), Point2(x=x0, y=y1)]
            points.append(
                PointsAnnotation(
                    timestamp=ts, type=PointsAnnotationType.LineLoop, points=corners, outline_color=green, thickness=2
                )
            )
            texts.append(
                TextAnnotation(
                    timestamp=ts,
                    position=Point2(x=x0, y=max(y0 - 2.0, 12.0)),
                    text=f"{label} {float(score):.2f}",
                    font_size=12.0,
                    text_color=green,
                    background_color=black,
                )
            )
        self.annotations.log(ImageAnnotations(points=points, texts=texts), log_time=int(stamp_ns))
        self.sent["detections"] += 1

    def log_series(self, values: Mapping[str, float], stamp_ns: int) -> None:
        """One sample of the scalar series (NaN sent as null)."""
        self.series_channel.log({k: _finite(v) for k, v in values.items()}, log_time=int(stamp_ns))
        self.sent["series"] += 1

    def log_configuration(self, short: str, stamp_ns: int) -> None:
        self.configuration_channel.log({"configuration": short}, log_time=int(stamp_ns))
        self.sent["configuration"] += 1

    def close(self) -> None:
        self.server.stop()
