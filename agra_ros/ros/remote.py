"""Remote execution's messages (RemoteRequest, RemoteResult, RemoteServer) to and from the core's types.

The robot side (perception, agra_ros.perception.offload) and the server side (perception_server,
agra_ros.perception.remote) read and write the three messages only through these functions. Topic names and QoS
are defined here once too: absolute names, so robots in their own namespaces reach one shared server without
remapping (remap ``/agra/remote/request``, ``/agra/remote/result`` and ``/agra/remote/server`` on every node of a
fleet to give it a server of its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from agra_ros.granularity.levels import GranularityCommandError, GranularityConfig
from agra_ros.msg import RemoteRequest, RemoteResult, RemoteServer
from agra_ros.perception.offload import Announcement, Reply
from agra_ros.perception.remote import Answer, Request, RequestRejected
from agra_ros.ros.interfaces import command_from_msg, command_to_msg

REQUEST_TOPIC = "/agra/remote/request"
RESULT_TOPIC = "/agra/remote/result"
SERVER_TOPIC = "/agra/remote/server"

__all__ = [
    "REQUEST_TOPIC",
    "RESULT_TOPIC",
    "SERVER_TOPIC",
    "RemoteDetections",
    "announcement_from_msg",
    "announcement_to_msg",
    "answer_to_msg",
    "reply_from_msg",
    "request_from_msg",
    "request_qos",
    "request_to_msg",
    "result_qos",
]


def request_qos() -> QoSProfile:
    """Best effort, depth 2: a lost frame is a timeout on the robot, never a retransmission that arrives late."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)


def result_qos() -> QoSProfile:
    """Reliable, depth 10: replies are small, and one lost fragment should not cost a frame."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class RemoteDetections:
    """A server's detections in the form the runtime publishes (DetectionsLike)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embedding: np.ndarray | None = None


# ---------------------------------------------------------------------- RemoteRequest
def request_to_msg(
    header: Header,
    jpeg: bytes,
    robot_id: str,
    request_id: int,
    server_id: str,
    detector: str,
    config: GranularityConfig,
    shadow: bool,
    deadline_s: float,
) -> RemoteRequest:
    image = CompressedImage(header=header, format="jpeg")
    image.data = jpeg  # bytes: the generated setter takes them without a per-byte copy
    return RemoteRequest(
        image=image,
        robot_id=robot_id,
        request_id=int(request_id),
        server_id=server_id,
        detector=detector,
        configuration=command_to_msg(config),
        shadow=bool(shadow),
        deadline_ms=float(deadline_s * 1e3),
    )


def request_from_msg(msg: RemoteRequest, n_layers: int) -> Request:
    """The core's request; RequestRejected ``bad_configuration`` when the command does not decode."""
    try:
        config = command_from_msg(msg.configuration, n_layers)
    except GranularityCommandError as exc:
        raise RequestRejected("bad_configuration", str(exc)) from None
    return Request(
        robot_id=msg.robot_id,
        request_id=int(msg.request_id),
        data=bytes(msg.image.data),
        format=msg.image.format,
        config=config,
        detector=msg.detector,
        server_id=msg.server_id,
        shadow=bool(msg.shadow),
        deadline_s=float(msg.deadline_ms) / 1e3,
        header=msg.image.header,
    )


# ---------------------------------------------------------------------- RemoteResult
def answer_to_msg(ans: Answer, server_id: str, detector: str, energy_source: str) -> RemoteResult:
    req = ans.request
    return RemoteResult(
        header=req.header if isinstance(req.header, Header) else Header(),
        robot_id=req.robot_id,
        request_id=int(req.request_id),
        server_id=server_id,
        detector=detector,
        configuration=command_to_msg(ans.config),
        boxes=ans.boxes.astype(np.float32).reshape(-1).tolist(),
        scores=ans.scores.astype(np.float32).tolist(),
        class_ids=np.clip(ans.labels, 0, 65535).astype(np.uint16).tolist(),
        workload_embedding=[] if ans.embedding is None else [float(v) for v in ans.embedding],
        accuracy_proxy=float(ans.accuracy_proxy),
        compute_ms=float(ans.compute_ms),
        server_ms=float(ans.server_ms),
        server_energy_j=float(ans.energy_j),
        server_energy_source=energy_source,
        queue_length=int(ans.queue_length),
    )


def reply_from_msg(msg: RemoteResult) -> Reply:
    return Reply(
        robot_id=msg.robot_id,
        request_id=int(msg.request_id),
        server_id=msg.server_id,
        boxes=np.asarray(msg.boxes, dtype=np.float32),
        scores=np.asarray(msg.scores, dtype=np.float32),
        labels=np.asarray(msg.class_ids, dtype=np.int64),
        compute_ms=float(msg.compute_ms),
        server_ms=float(msg.server_ms),
        energy_j=float(msg.server_energy_j),
        queue_length=int(msg.queue_length),
        detector=msg.detector,
    )


def reply_detections(msg: RemoteResult) -> tuple[RemoteDetections, GranularityConfig | None, float]:
    """(detections, the configuration the server ran or None when it does not decode, its shadow agreement) of a
    reply the offload client accepted."""
    emb = np.asarray(msg.workload_embedding, dtype=np.float32)
    embedding = emb if emb.size and np.isfinite(emb).all() else None
    dets = RemoteDetections(
        np.asarray(msg.boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(msg.scores, dtype=np.float32),
        np.asarray(msg.class_ids, dtype=np.int64),
        embedding,
    )
    try:
        config = command_from_msg(msg.configuration, len(msg.configuration.levels))
    except GranularityCommandError:
        config = None
    acc = float(msg.accuracy_proxy)
    return dets, config, acc if math.isfinite(acc) and 0.0 <= acc <= 1.0 else math.nan


# ---------------------------------------------------------------------- RemoteServer
def announcement_to_msg(
    header: Header, server_id: str, detector: str, classes: int, run: str, queue: int, load: float,
    compute_ms: float, served: int, dropped: int, period_s: float,
) -> RemoteServer:  # fmt: skip
    return RemoteServer(
        header=header,
        server_id=server_id,
        detector=detector,
        classes=int(classes),
        run=run,
        queue_length=int(queue),
        load=float(load),
        compute_ms=float(compute_ms),
        served=int(served),
        dropped=int(dropped),
        period_s=float(period_s),
    )


def announcement_from_msg(msg: RemoteServer) -> Announcement:
    return Announcement(
        server_id=msg.server_id,
        detector=msg.detector,
        classes=int(msg.classes),
        queue_length=int(msg.queue_length),
        load=float(msg.load),
        compute_ms=float(msg.compute_ms),
    )
