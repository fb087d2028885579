"""Detections on a standard message type: vision_msgs/Detection2DArray where importable, else a MarkerArray.

vision_msgs is not among the ROS 2 wheels on PyPI. Without it, detections go out as
visualization_msgs/MarkerArray, which every ROS install has and rviz draws:

- the first marker is a DELETEALL carrying the header (so an empty frame still says which image it belongs to);
- then one LINE_STRIP marker per detection: ``ns`` = class name, ``id`` = index, five ``points`` tracing the box
  in image pixels (x right, y down, z 0), ``text`` = ``"<class> <score>"``, ``color.a`` = score.

:func:`parse_detections` reads either form back into arrays, for tests and for the policy node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from agra_ros.ros.qos import command_qos

try:  # pragma: no cover - depends on the ROS install
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    HAVE_VISION_MSGS = True
except ImportError:
    HAVE_VISION_MSGS = False


@dataclass
class ParsedDetections:
    header: Header
    boxes: np.ndarray  # (N, 4) xyxy pixels
    scores: np.ndarray  # (N,)
    labels: np.ndarray  # (N,) int64
    class_names: list[str]


def _palette(label: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(label + 7)
    r, g, b = rng.uniform(0.2, 1.0, 3)
    return float(r), float(g), float(b)


def to_marker_array(
    header: Header, boxes: np.ndarray, scores: np.ndarray | None, labels: np.ndarray, class_names: Sequence[str]
) -> MarkerArray:
    out = MarkerArray()
    clear = Marker(header=header, action=Marker.DELETEALL)
    out.markers.append(clear)
    for i, (box, lab) in enumerate(zip(np.asarray(boxes, dtype=float), np.asarray(labels, dtype=int))):
        score = 1.0 if scores is None else float(scores[i])
        name = class_names[lab] if 0 <= lab < len(class_names) else str(lab)
        x1, y1, x2, y2 = (float(v) for v in box)
        r, g, b = _palette(int(lab))
        m = Marker(header=header, ns=name, id=i, type=Marker.LINE_STRIP, action=Marker.ADD)
        m.points = [Point(x=x, y=y, z=0.0) for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1))]
        m.scale.x = 2.0  # line width, pixels
        m.color = ColorRGBA(r=r, g=g, b=b, a=score)
        m.pose.orientation.w = 1.0
        m.text = f"{name} {score:.3f}"
        out.markers.append(m)
    return out


def to_detection2d_array(  # pragma: no cover - exercised only where vision_msgs exists
    header: Header, boxes: np.ndarray, scores: np.ndarray | None, labels: np.ndarray, class_names: Sequence[str]
):
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


def detection_msg_type():
    return Detection2DArray if HAVE_VISION_MSGS else MarkerArray


class DetectionPublisher:
    """Publishes detections on ``topic`` in whichever standard form this install supports."""

    def __init__(self, node: Node, topic: str, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        self.msg_type = detection_msg_type()
        self._pub = node.create_publisher(self.msg_type, topic, command_qos())

    def publish(self, header: Header, boxes: np.ndarray, scores: np.ndarray | None, labels: np.ndarray) -> None:
        if HAVE_VISION_MSGS:  # pragma: no cover
            msg = to_detection2d_array(header, boxes, scores, labels, self.class_names)
        else:
            msg = to_marker_array(header, boxes, scores, labels, self.class_names)
        self._pub.publish(msg)


def parse_detections(msg, class_names: Sequence[str]) -> ParsedDetections:
    """Arrays from a Detection2DArray or a MarkerArray of the form above; unknown class names map to -1."""
    index = {n: i for i, n in enumerate(class_names)}
    boxes, scores, labels = [], [], []
    if isinstance(msg, MarkerArray):
        header = msg.markers[0].header if msg.markers else Header()
        for m in msg.markers:
            if m.action != Marker.ADD or len(m.points) < 4:
                continue
            xs = [p.x for p in m.points]
            ys = [p.y for p in m.points]
            boxes.append([min(xs), min(ys), max(xs), max(ys)])
            try:
                scores.append(float(m.text.rsplit(" ", 1)[1]))
            except (IndexError, ValueError):
                scores.append(float(m.color.a))
            labels.append(index.get(m.ns, -1))
    else:  # pragma: no cover - vision_msgs
        header = msg.header
        for d in msg.detections:
            cx, cy, w, h = d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            hyp = d.results[0].hypothesis if d.results else None
            scores.append(float(hyp.score) if hyp else 0.0)
            labels.append(index.get(hyp.class_id, -1) if hyp else -1)
    return ParsedDetections(
        header,
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32),
        np.asarray(labels, dtype=np.int64),
        list(class_names),
    )
