"""Detections on one standard message type everywhere: vision_msgs/msg/Detection2DArray.

A distro install gets vision_msgs from rosdep (package.xml); the pip venv has it generated from
interfaces/vision_msgs (scripts/build_interfaces.sh: Jazzy's definitions, the same type on the wire), so rviz,
foxglove_bridge and any other node read ``detections`` the same way on both.

One message per image, ``header`` = the image's header (an empty frame still says which image it belongs to), then
one Detection2D per box, in image pixels (x right, y down):

- ``bbox.center.position`` = the box centre, ``bbox.size_x`` / ``size_y`` = its width / height, ``theta`` 0;
- one ``results`` entry: ``hypothesis.class_id`` = the class *name*, ``hypothesis.score`` = the score (1 when the
  source has none, e.g. ground truth); ``pose`` is left empty.

:func:`parse_detections` reads it back into arrays, for tests and for the nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from agra_ros.ros.qos import command_qos


@dataclass
class ParsedDetections:
    header: Header
    boxes: np.ndarray  # (N, 4) xyxy pixels
    scores: np.ndarray  # (N,)
    labels: np.ndarray  # (N,) int64
    class_names: list[str]


def to_detection2d_array(
    header: Header, boxes: np.ndarray, scores: np.ndarray | None, labels: np.ndarray, class_names: Sequence[str]
) -> Detection2DArray:
    out = Detection2DArray(header=header)
    for i, (box, lab) in enumerate(zip(np.asarray(boxes, dtype=float), np.asarray(labels, dtype=int))):
        d = Detection2D(header=header)
        x1, y1, x2, y2 = (float(v) for v in box)
        d.bbox.center.position.x, d.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
        d.bbox.size_x, d.bbox.size_y = x2 - x1, y2 - y1
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id = class_names[lab] if 0 <= lab < len(class_names) else str(lab)
        h.hypothesis.score = 1.0 if scores is None else float(scores[i])
        d.results.append(h)
        out.detections.append(d)
    return out


def detection_msg_type() -> type[Detection2DArray]:
    """The type of ``detections`` (and ``image_raw/ground_truth``), for subscribers."""
    return Detection2DArray


class DetectionPublisher:
    """Publishes detections on ``topic`` as vision_msgs/msg/Detection2DArray."""

    def __init__(self, node: Node, topic: str, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        self.msg_type = Detection2DArray
        self._pub = node.create_publisher(Detection2DArray, topic, command_qos())

    def publish(self, header: Header, boxes: np.ndarray, scores: np.ndarray | None, labels: np.ndarray) -> None:
        self._pub.publish(to_detection2d_array(header, boxes, scores, labels, self.class_names))


def parse_detections(msg: Detection2DArray, class_names: Sequence[str]) -> ParsedDetections:
    """Arrays from a Detection2DArray (the first hypothesis of each detection); unknown class names map to -1."""
    index = {n: i for i, n in enumerate(class_names)}
    boxes, scores, labels = [], [], []
    for d in msg.detections:
        cx, cy, w, h = d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        hyp = d.results[0].hypothesis if d.results else None
        scores.append(float(hyp.score) if hyp else 0.0)
        labels.append(index.get(hyp.class_id, -1) if hyp else -1)
    return ParsedDetections(
        msg.header,
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray(labels, dtype=np.int64),
        list(class_names),
    )
