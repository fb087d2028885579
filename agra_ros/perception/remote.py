"""The perception server's core, without ROS: a queue of robots' requests and the detector that answers them.

perception_server_node (agra_ros/nodes/perception_server.py) is a thin adapter around :class:`ServerCore`: its
subscription hands each request to :meth:`ServerCore.offer` (validated, queued), a worker thread takes them with
:meth:`ServerCore.take` and runs them with :meth:`ServerCore.run`, and the node publishes the :class:`Answer`.

The queue keeps one request per robot (a newer frame replaces a robot's waiting one: a server never works on a
frame its robot has already given up on) and at most ``max_queue`` in all (the oldest is dropped). A request that
waited longer than its robot's deadline is dropped when its turn comes. Every drop is counted by kind (the node
reports them on /diagnostics and in its announcement); nothing malformed reaches the detector.

The JPEG codec of both sides is here too (:func:`encode_jpeg`, :func:`decode_jpeg`): the image size is read from
the JPEG header before anything is decoded, so an oversized frame costs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from agra_ros.granularity.levels import GranularityConfig, full_configuration
from agra_ros.limits import MAX_IMAGE_SIDE
from agra_ros.perception.agreement import (
    CONFIDENT_CANDIDATE_SCORE,
    CONFIDENT_REFERENCE_SCORE,
    confident_frame_agreement,
    cut,
)
from agra_ros.perception.energy import EnergyMeter
from agra_ros.perception.runtime import Detector

__all__ = [
    "Answer",
    "Request",
    "RequestRejected",
    "ServerCore",
    "decode_jpeg",
    "encode_jpeg",
    "jpeg_dimensions",
]

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Largest JPEG a server accepts by default (a 4K frame at quality 95 is ~3 MB)."""
RUN_MODES = ("requested", "full")


class RequestRejected(ValueError):
    """A request (or its JPEG) the server drops; ``kind`` is the counter it goes to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------------- JPEG
def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """An RGB uint8 frame as JPEG bytes at ``quality`` (1-100)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header, without decoding; RequestRejected ``bad_jpeg`` when there is
    none."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise RequestRejected("bad_jpeg", "not a JPEG (no SOI marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise RequestRejected("bad_jpeg", f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _SOF:
            if i + 9 > len(data):
                break
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return width, height
        if marker == 0xDA or length < 2:  # start of scan before a frame header, or a broken segment
            break
        i += 2 + length
    raise RequestRejected("bad_jpeg", "JPEG without a frame header")


def decode_jpeg(data: bytes, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """RGB uint8 from JPEG bytes; RequestRejected ``bad_jpeg`` (undecodable) or ``too_large`` (a side over
    ``max_side``, found from the header before decoding)."""
    width, height = jpeg_dimensions(data)
    if not (0 < width <= max_side and 0 < height <= max_side):
        raise RequestRejected("too_large", f"JPEG of {width}x{height} px (at most {max_side} per side)")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise RequestRejected("bad_jpeg", "JPEG does not decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------- requests and answers
@dataclass
class Request:
    """One robot's request as the server core sees it (the node converts RemoteRequest into this)."""

    robot_id: str
    request_id: int
    data: bytes
    format: str
    config: GranularityConfig
    detector: str
    server_id: str = ""
    shadow: bool = False
    deadline_s: float = 1.0
    header: object = None
    """The request image's header, handed back untouched in the answer."""
    received: float = 0.0


@dataclass
class Answer:
    """The server's detections for one request and what they cost."""

    request: Request
    config: GranularityConfig
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embedding: np.ndarray | None
    accuracy_proxy: float
    compute_ms: float
    server_ms: float
    energy_j: float
    queue_length: int


@dataclass
class ServerStats:
    served: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    compute_ms: deque = field(default_factory=lambda: deque(maxlen=50))
    busy: deque = field(default_factory=lambda: deque(maxlen=500))
    """(end time, busy seconds) of recent requests: the load over the last second."""

    def drop(self, kind: str) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + 1

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class ServerCore:
    """Validates, queues and runs robots' requests on one detector. ``offer`` and ``take`` are thread-safe (the
    node's subscription and its worker thread); ``run`` is called by the one worker."""

    def __init__(
        self,
        detector: Detector,
        server_id: str,
        detector_name: str,
        *,
        run: str = "requested",
        max_queue: int = 8,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        score_threshold: float = 0.3,
        energy: EnergyMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
        busy_clock: Callable[[], float] | None = time.thread_time,
    ) -> None:
        if run not in RUN_MODES:
            raise ValueError(f"run must be one of {', '.join(RUN_MODES)}, got {run!r}")
        self.detector = detector
        self.server_id = server_id
        self.detector_name = detector_name
        self.n_layers = len(detector.switchable_layer_names())
        self.n_classes = len(detector.class_names)
        self.run_mode = run
        self.max_queue = int(max_queue)
        self.max_request_bytes = int(max_request_bytes)
        self.score_threshold = float(score_threshold)
        self.energy = energy
        self.clock = clock
        self.busy_clock = busy_clock
        self.stats = ServerStats()
        self.full_config = full_configuration(self.n_layers)
        self._queue: deque[Request] = deque()
        self._cond = threading.Condition()
        self._loaded: GranularityConfig | None = None

    # ------------------------------------------------------------------ queue
    def check(self, req: Request) -> bool:
        """False for a request addressed to another server (not an error: it is not ours); RequestRejected for a
        malformed one (the caller counts it with :meth:`reject`)."""
        if req.server_id and req.server_id != self.server_id:
            return False
        if not req.robot_id:
            raise RequestRejected("no_robot_id", "request without a robot_id")
        if req.detector != self.detector_name:
            raise RequestRejected(
                "wrong_detector", f"request for detector {req.detector!r}, this server runs {self.detector_name!r}"
            )
        if "jpeg" not in req.format.lower() and req.format.lower() != "jpg":
            raise RequestRejected("bad_format", f"image format {req.format!r}, expected jpeg")
        if len(req.data) > self.max_request_bytes:
            raise RequestRejected("too_large", f"{len(req.data)} bytes (at most {self.max_request_bytes})")
        if not req.data:
            raise RequestRejected("bad_jpeg", "empty image data")
        if not (math.isfinite(req.deadline_s) and req.deadline_s > 0):
            raise RequestRejected("bad_deadline", f"deadline {req.deadline_s!r} s")
        if req.config.n_layers != self.n_layers:
            raise RequestRejected(
                "bad_configuration", f"{req.config.n_layers} layers, the detector has {self.n_layers}"
            )
        return True

    def reject(self, kind: str) -> None:
        with self._cond:
            self.stats.drop(kind)

    def offer(self, req: Request) -> bool:
        """Queue a request; False when it is not for this server. Raises RequestRejected (already counted)."""
        try:
            if not self.check(req):
                return False
        except RequestRejected as exc:
            self.reject(exc.kind)
            raise
        with self._cond:
            req.received = self.clock()
            for old in [q for q in self._queue if q.robot_id == req.robot_id]:
                self._queue.remove(old)  # the robot has moved on to this newer frame
                self.stats.drop("superseded")
            self._queue.append(req)
            while len(self._queue) > self.max_queue:
                self._queue.popleft()
                self.stats.drop("queue_full")
            self._cond.notify()
        return True

    def take(self, timeout_s: float = 0.1) -> Request | None:
        """The oldest queued request still within its robot's deadline (those past it are dropped as ``stale``),
        or None after ``timeout_s`` without one."""
        with self._cond:
            end = self.clock() + timeout_s
            while True:
                now = self.clock()
                while self._queue:
                    req = self._queue.popleft()
                    if now - req.received <= req.deadline_s:
                        return req
                    self.stats.drop("stale")
                if now >= end:
                    return None
                self._cond.wait(timeout=end - now)

    @property
    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    # ------------------------------------------------------------------ work
    def _detect(self, image: np.ndarray, config: GranularityConfig, score: float | None = None):
        config = config.detector_config()
        if config != self._loaded:
            self.detector.set_config(config)
            self._loaded = config
        return self.detector.detect([image], self.score_threshold if score is None else score)[0]

    def warm_up(self, width: int = 320, height: int = 240, runs: int = 2) -> float:
        """Run the full configuration on blank frames before the first request; the milliseconds of the last run.
        Why: a network's first inferences are several times slower (lazy allocation, kernel selection): a robot's
        first request would miss its deadline and read as a lost one, and its policy would see a lossy link."""
        blank = np.zeros((height, width, 3), np.uint8)
        ms = math.nan
        for _ in range(runs):
            t0 = time.perf_counter()
            self._detect(blank, self.full_config)
            ms = (time.perf_counter() - t0) * 1e3
        return ms

    def run(self, req: Request) -> Answer:
        """Decode and detect one request; RequestRejected (counted) for a JPEG that does not decode or is too
        large."""
        try:
            image = decode_jpeg(req.data)
        except RequestRejected as exc:
            self.reject(exc.kind)
            raise
        want = self.full_config if self.run_mode == "full" else req.config.with_keyframe_interval(1)
        config = GranularityConfig(want.levels, want.resolution_scale, "remote", 1)
        clock = self.busy_clock
        c0 = clock() if clock is not None else 0.0
        t0 = time.perf_counter()
        # a shadow request detects down to the confident agreement's candidate score, as perception's runtime does;
        # what is answered is cut back to the threshold
        low = min(self.score_threshold, CONFIDENT_CANDIDATE_SCORE) if req.shadow else None
        candidate = self._detect(image, config, low)
        dets = cut(candidate, self.score_threshold) if req.shadow else candidate
        compute_s = time.perf_counter() - t0
        accuracy = math.nan
        if req.shadow:
            if config.levels == self.full_config.levels and config.resolution_scale == 1.0:
                accuracy = confident_frame_agreement(candidate, candidate)  # the reference itself (NaN: no box)
            else:
                ref = self._detect(image, self.full_config, CONFIDENT_REFERENCE_SCORE)
                accuracy = confident_frame_agreement(candidate, ref)
        busy = (clock() - c0) if clock is not None else time.perf_counter() - t0
        energy_j = self.energy.detector_energy_per_frame_j(busy, config) if self.energy is not None else math.nan
        now = self.clock()
        with self._cond:
            self.stats.served += 1
            self.stats.compute_ms.append(compute_s * 1e3)
            self.stats.busy.append((now, time.perf_counter() - t0))
            queue = len(self._queue)
        return Answer(
            req,
            config,
            np.asarray(dets.boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(dets.scores, dtype=np.float32).reshape(-1),
            np.asarray(dets.labels, dtype=np.int64).reshape(-1),
            getattr(dets, "embedding", None),
            accuracy,
            compute_s * 1e3,
            (now - req.received) * 1e3,
            float(energy_j),
            queue,
        )

    # ------------------------------------------------------------------ status
    def load(self, now: float | None = None, window_s: float = 1.0) -> float:
        """Share of the last ``window_s`` the detector was busy."""
        now = self.clock() if now is None else now
        with self._cond:
            busy = sum(b for t, b in self.stats.busy if now - t <= window_s)
        return min(1.0, busy / window_s)

    def mean_compute_ms(self) -> float:
        with self._cond:
            c = list(self.stats.compute_ms)
        return float(np.mean(c)) if c else math.nan
