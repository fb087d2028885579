"""The robot's side of remote execution, without ROS: which server to use, requests in flight, replies checked,
the link measured.

perception_node (through agra_ros/nodes/perception_remote.py) asks :meth:`OffloadClient.plan` whether a frame
commanded ``remote`` can go out now, records it with :meth:`OffloadClient.sent`, hands every reply to
:meth:`OffloadClient.accept` and every expired deadline to :meth:`OffloadClient.expire`. A frame that does not go
out or whose reply does not come in time runs locally in the fallback configuration, and the reason is counted:

- ``no_server``: no server running this detector announced itself within ``server_timeout_s``;
- ``link_down``: ``miss_limit`` requests in a row went unanswered (or answered too late), or the link's failure
  rate (a smoothed share of requests and probes that failed so) rose above :data:`LOSS_DOWN`; no frame is sent
  until link probes (frames that already ran here, the first sent ``retry_s`` later) answered within their frame
  budget bring that rate under :data:`LOSS_UP`. After an answered probe the next goes with the next frame; after
  an unanswered one, another ``retry_s`` later (stretched as below). Frames never wait on a link that just failed:
  a retry sent as a real frame would cost that frame its whole deadline each time. The two thresholds keep a
  lossy link (20 % loss each way drops a third of the round trips) from coming back on one lucky answer: each
  timeout on it would cost a frame its deadline, and the target with it;
- ``timeout``: the reply did not arrive within the deadline (lost on the link, or late).

A reply that comes within the deadline but later than the frame budget (``slow_s`` of the request) is published,
but the target cannot be met that way (perception waits for it before the next frame): it counts toward
``link_down`` as a miss does (``link.slow``), so a link that has become too slow for the target is left within
``miss_limit`` frames, not only one that loses every request.

Servers: the robot keeps one. While it has none it addresses its request to any server; the first reply that comes
back (the fastest server: the round trip of that race is the measurement that decides) makes that server the chosen
one, and later requests name it. A reply from another server to the same request is a counted ``duplicate`` and
dropped. The chosen one is dropped when it falls silent (no announcement for ``server_timeout_s``) or leaves
``miss_limit`` requests in a row unanswered; while another server still announces itself the next frame races
again at once, and only when none does (or the new race is lost too) is the link ``link_down``.

Replies are checked before anything is published: a reply for another robot is ignored; for a request that is not
in flight (``unknown``), already expired (``stale``) or already answered (``duplicate``), with boxes that are NaN or
outside the image (``bad_boxes``), class ids outside the catalogue (``bad_class``) or arrays of different lengths
(``malformed``), it is counted by kind and dropped.

Link probes: while frames run here, the link would go unmeasured, and the policy (which sees a server in P only
once a request was answered, as the simulator shows the link of a server that is there) could never learn that
offloading pays. So every ``probe_period_s`` without a request, one frame that already ran here is also sent as a
probe (:meth:`OffloadClient.probe_due`): its reply is measured like any other and never published; a probe left
unanswered counts toward ``link_down`` but is no frame's miss. On a lossy link each unanswered probe doubles the
period (up to :data:`PROBE_BACKOFF_MAX` times), since a lost probe costs its encode and the radio for its whole
deadline; any answer restores it. The same holds for the retries of a link that is down, except that there only
the link coming back restores it: a lossy link answers some probes, and each lost one costs the most.

The link measurements (for the policy's device state D): the link's round trip (the request's round trip less the
server's own time) and uplink throughput (request bytes over that time), both smoothed; the share of the last 20
requests left unanswered; the server's queue.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Announcement", "InFlight", "LinkStats", "OffloadClient", "Reply", "ResultRejected"]

MISS_CAUSES = ("timeout", "no_server", "link_down")
EWMA = 0.2
"""Weight of the newest sample in the smoothed round trip, throughput and failure rate."""
LOSS_DOWN = 0.3
"""The link goes down when its smoothed failure rate rises above this: two failures within four requests."""
LOSS_UP = 0.1
"""A link that is down comes back only when answered probes bring its failure rate under this: from just above
LOSS_DOWN, six answers in a row (one in time per frame on a link that is back: about a second)."""
PROBE_BACKOFF_MAX = 4
"""The longest probe period, as a multiple of ``probe_period_s`` (or of ``retry_s`` while the link is down), after
unanswered probes in a row: a link that comes back is still seen within 4 periods."""


class ResultRejected(ValueError):
    """A reply the robot drops; ``kind`` is its counter."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Announcement:
    """A server's RemoteServer message, as the client needs it."""

    server_id: str
    detector: str
    classes: int
    queue_length: int = 0
    load: float = 0.0
    compute_ms: float = math.nan


@dataclass
class Reply:
    """A RemoteResult, as the client needs it."""

    robot_id: str
    request_id: int
    server_id: str
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    compute_ms: float = math.nan
    server_ms: float = math.nan
    energy_j: float = math.nan
    queue_length: int = 0
    detector: str = ""


@dataclass
class InFlight:
    """A request sent and not answered yet (the node keeps the frame itself alongside)."""

    request_id: int
    server_id: str
    sent_at: float
    deadline_s: float
    tx_bytes: int
    width: int
    height: int
    slow_s: float = math.inf
    """An answer later than this (the frame budget) counts toward ``link_down`` though it is published."""
    probe: bool = False
    """A link probe: the frame ran here and its reply only measures the link."""


@dataclass
class LinkStats:
    rtt_ms: float = math.nan
    uplink_mbps: float = math.nan
    server_queue: int = 0
    outcomes: deque = field(default_factory=lambda: deque(maxlen=20))
    """True per answered request, False per unanswered one, newest last."""
    sent: int = 0
    answered: int = 0
    misses: Counter = field(default_factory=Counter)
    """Frames commanded remote that ran here, by cause (MISS_CAUSES)."""
    rejected: Counter = field(default_factory=Counter)
    """Replies dropped, by kind."""
    slow: int = 0
    """Replies published that came later than the frame budget."""
    probes: int = 0
    """Link probes sent (counted in ``sent`` too)."""

    @property
    def loss(self) -> float:
        return float(1.0 - np.mean(self.outcomes)) if self.outcomes else math.nan


class OffloadClient:
    """See the module docstring. Driven by one thread (the perception node's executor)."""

    def __init__(
        self,
        robot_id: str,
        detector: str,
        classes: int,
        *,
        server_timeout_s: float = 3.0,
        miss_limit: int = 2,
        retry_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.robot_id = robot_id
        self.detector = detector
        self.classes = int(classes)
        self.server_timeout_s = float(server_timeout_s)
        self.miss_limit = int(miss_limit)
        self.retry_s = float(retry_s)
        self.clock = clock
        self.servers: dict[str, tuple[float, Announcement]] = {}
        self.chosen = ""
        self.link = LinkStats()
        self.in_flight: dict[int, InFlight] = {}
        self._next_id = 1
        self._misses_in_row = 0
        self._failure = 0.0
        """Smoothed share of requests and probes left unanswered or answered too late (EWMA per outcome)."""
        self._down = False
        """The link failed (see the module docstring): no frame goes out until probes bring it back."""
        self._retry_at = -math.inf
        """While down: when the next link probe may go out (at once after an answered one)."""
        self._last_sent_at = -math.inf
        self._probe_backoff = 1
        """The probe period's multiple now: doubled by each unanswered probe, 1 again at an answer while the link
        is up (while it is down, only at its coming back)."""
        self._expired: deque[int] = deque(maxlen=64)
        self._answered: deque[int] = deque(maxlen=64)
        self.ignored_servers: Counter = Counter()
        """Announcements of servers that run another detector, by server id."""

    # ------------------------------------------------------------------ servers
    def heard(self, ann: Announcement, now: float | None = None) -> bool:
        """A server's announcement; False (counted in ``ignored_servers``) when it runs another detector."""
        now = self.clock() if now is None else now
        if ann.detector != self.detector or ann.classes != self.classes or not ann.server_id:
            self.ignored_servers[ann.server_id] += 1
            return False
        self.servers[ann.server_id] = (now, ann)
        if ann.server_id == self.chosen:
            self.link.server_queue = int(ann.queue_length)
        return True

    def live_servers(self, now: float | None = None) -> list[str]:
        now = self.clock() if now is None else now
        return sorted(s for s, (t, _) in self.servers.items() if now - t <= self.server_timeout_s)

    def plan(self, now: float | None = None) -> tuple[str | None, str]:
        """(server id to address, "") when a frame may go out now ("" as id: any server), or (None, miss cause)."""
        now = self.clock() if now is None else now
        live = self.live_servers(now)
        if self.chosen and self.chosen not in live:
            self.chosen = ""
        if not live:
            return None, "no_server"
        if self._down:
            return None, "link_down"
        return self.chosen, ""

    def available(self, now: float | None = None) -> bool:
        """Whether remote execution is on offer now (the catalogue lists ``remote`` only then)."""
        return self.plan(now)[0] is not None

    def miss(self, cause: str) -> None:
        """Count a frame commanded remote that ran here."""
        self.link.misses[cause] += 1

    # ------------------------------------------------------------------ requests
    def sent(
        self,
        server_id: str,
        tx_bytes: int,
        width: int,
        height: int,
        deadline_s: float,
        now: float | None = None,
        slow_s: float = math.inf,
        probe: bool = False,
    ) -> InFlight:
        """Record a request just published; its id is the returned record's ``request_id``. ``slow_s``: the frame
        budget (an answer later than it counts toward ``link_down``); ``probe``: a link probe."""
        now = self.clock() if now is None else now
        rec = InFlight(
            self._next_id, server_id, now, float(deadline_s), int(tx_bytes), int(width), int(height), float(slow_s),
            probe,
        )  # fmt: skip
        self._next_id += 1
        self.in_flight[rec.request_id] = rec
        self.link.sent += 1
        self.link.probes += probe
        self._last_sent_at = now
        return rec

    def probe_due(self, period_s: float, now: float | None = None) -> str | None:
        """The server id to address a link probe to now ("" any), or None: probes off (``period_s`` <= 0), a
        request still in flight, none sent for less than ``period_s``, or no server heard. While the link is down
        a probe is due ``retry_s`` after the last failure, even with ``period_s`` 0 (it is the only way back). The
        period stretches after unanswered probes (see the module docstring)."""
        now = self.clock() if now is None else now
        if self.in_flight:
            return None
        if self._down:  # the retry of a link that is down is a probe, whatever probe_period_s says; going down
            # dropped the chosen server, so the retry races to whichever server answers first
            return "" if self.live_servers(now) and now >= self._retry_at else None
        if period_s <= 0 or now - self._last_sent_at < period_s * self._probe_backoff:
            return None
        return self.plan(now)[0]

    def next_request_id(self) -> int:
        return self._next_id

    def expire(self, now: float | None = None) -> list[InFlight]:
        """Requests whose deadline has passed: each is a ``timeout`` miss (a probe is no frame's miss), and counts
        toward ``link_down``."""
        now = self.clock() if now is None else now
        out = [r for r in self.in_flight.values() if now - r.sent_at >= r.deadline_s]
        for r in out:
            del self.in_flight[r.request_id]
            self._expired.append(r.request_id)
            self.link.outcomes.append(False)
            if r.probe:
                self._probe_backoff = min(2 * self._probe_backoff, PROBE_BACKOFF_MAX)
            else:
                self.miss("timeout")
            self._count_toward_down(now)
        return out

    def _count_toward_down(self, now: float) -> None:
        """One more request that did not keep the target (unanswered, or answered too late)."""
        self._misses_in_row += 1
        self._failure = _smooth(self._failure, 1.0)
        if self._misses_in_row < self.miss_limit and self._failure <= LOSS_DOWN and not self._down:
            return
        failed, self.chosen = self.chosen, ""
        if not self._down and failed and any(s != failed for s in self.live_servers(now)):
            # another server still announces itself: the next frame goes to whichever answers first, at once
            # (the link itself is down only when that one fails too); its path starts with a clean record
            self._misses_in_row = 0
            self._failure = 0.0
            return
        self._down = True
        self._retry_at = now + self.retry_s * self._probe_backoff

    def accept(self, reply: Reply, now: float | None = None) -> tuple[InFlight, float] | None:
        """The request a valid reply answers and its round trip in seconds; None for another robot's reply;
        ResultRejected (counted in ``link.rejected``) for a reply that must not be published."""
        now = self.clock() if now is None else now
        if reply.robot_id != self.robot_id:
            return None
        try:
            rec = self._match(reply)
            self._check(reply, rec)
        except ResultRejected as exc:
            self.link.rejected[exc.kind] += 1
            raise
        del self.in_flight[rec.request_id]
        self._answered.append(rec.request_id)
        rtt = now - rec.sent_at
        self.link.answered += 1
        self.link.outcomes.append(True)
        if not self.chosen:
            self.chosen = reply.server_id  # the first to answer: the fastest server
        if rtt > rec.slow_s:  # published, but too late for the target: the link may have become too slow
            self.link.slow += 1
            self._count_toward_down(now)
        else:
            self._misses_in_row = 0
            self._failure = _smooth(self._failure, 0.0)
            if self._down:  # back once the failure rate is low again; meanwhile the next frame probes at once
                self._down = self._failure > LOSS_UP
                self._retry_at = now
        if not self._down:  # while down, the wait after a lost probe keeps growing: a lossy link answers some
            self._probe_backoff = 1
        self.link.server_queue = int(reply.queue_length)
        server_s = reply.server_ms / 1e3 if math.isfinite(reply.server_ms) and reply.server_ms >= 0 else 0.0
        network_s = rtt - server_s
        # the link's own round trip, without the server's time: what the simulator's link profiles give as RTT
        # (a server busy 100 ms on a 5 ms Wi-Fi link is a good link with a slow server, not an LTE link)
        self.link.rtt_ms = _smooth(self.link.rtt_ms, max(network_s, 1e-4) * 1e3)
        if network_s > 1e-4:
            self.link.uplink_mbps = _smooth(self.link.uplink_mbps, 8.0 * rec.tx_bytes / network_s / 1e6)
        return rec, rtt

    def _match(self, reply: Reply) -> InFlight:
        rid = int(reply.request_id)
        rec = self.in_flight.get(rid)
        if rec is not None:
            if rec.server_id and reply.server_id != rec.server_id:
                raise ResultRejected(
                    "duplicate", f"request {rid} was addressed to {rec.server_id}, not {reply.server_id}"
                )
            return rec
        if rid in self._answered:
            raise ResultRejected("duplicate", f"request {rid} was already answered (a second server?)")
        if rid in self._expired:
            raise ResultRejected("stale", f"request {rid} passed its deadline before the reply came")
        raise ResultRejected("unknown", f"no request {rid} was sent")

    def _check(self, reply: Reply, rec: InFlight) -> None:
        boxes = np.asarray(reply.boxes, dtype=np.float64)
        n = len(reply.scores)
        if boxes.size != 4 * n or len(reply.labels) != n:
            raise ResultRejected("malformed", f"{boxes.size} box values, {n} scores, {len(reply.labels)} classes")
        if reply.detector and reply.detector != self.detector:
            raise ResultRejected(
                "malformed", f"reply from detector {reply.detector!r}, this robot runs {self.detector!r}"
            )
        boxes = boxes.reshape(-1, 4)
        scores = np.asarray(reply.scores, dtype=np.float64)
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ResultRejected("bad_boxes", "NaN or infinite box or score")
        slack = 1.0  # a box edge on the last pixel's far side
        inside = (
            (boxes[:, 0] >= -slack)
            & (boxes[:, 1] >= -slack)
            & (boxes[:, 2] <= rec.width + slack)
            & (boxes[:, 3] <= rec.height + slack)
            & (boxes[:, 2] >= boxes[:, 0])
            & (boxes[:, 3] >= boxes[:, 1])
        )
        if not inside.all() or ((scores < 0) | (scores > 1)).any():
            raise ResultRejected("bad_boxes", f"box outside the {rec.width}x{rec.height} image or score outside [0, 1]")
        labels = np.asarray(reply.labels, dtype=np.int64)
        if ((labels < 0) | (labels >= self.classes)).any():
            raise ResultRejected("bad_class", f"class id outside 0..{self.classes - 1}")


def _smooth(old: float, new: float) -> float:
    return new if not math.isfinite(old) else (1 - EWMA) * old + EWMA * new
