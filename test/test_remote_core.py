"""Remote execution without ROS: the server's queue and checks (agra_ros.perception.remote), the robot's client
(agra_ros.perception.offload: servers, deadlines, replies checked, the link measured), the runtime's remote frames
and the radio energy (agra_ros.device.radio)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_detection_runtime import IMG, Clock, FakeDetector, LinearPower, N

from agra_ros.device.radio import RADIOS, radio_model
from agra_ros.granularity.levels import GranularityConfig
from agra_ros.perception.energy import EnergyMeter
from agra_ros.perception.offload import Announcement, OffloadClient, Reply, ResultRejected
from agra_ros.perception.remote import (
    Request,
    RequestRejected,
    ServerCore,
    decode_jpeg,
    encode_jpeg,
    jpeg_dimensions,
)
from agra_ros.perception.runtime import PerceptionRuntime, RemoteCost

FRAME = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)


def remote_full() -> GranularityConfig:
    return GranularityConfig(("full",) * N, 1.0, "remote")


# ---------------------------------------------------------------------------------------------- radio
def test_radio_energy_follows_huang_2012():
    wifi = radio_model("wifi")
    # 1 MB up = 8 Mbit x 283.17 mW/Mbps = 2.265 J, plus 132.86 mW x 0.1 s
    assert wifi.energy_j(1e6, 0, 0.1) == pytest.approx(8 * 0.28317 + 0.013286)
    assert RADIOS["lte"].energy_j(0, 0, 1.0) == pytest.approx(1.28804)
    assert wifi.energy_j(-5, -5, -1) == 0.0
    with pytest.raises(KeyError, match="known: wifi, lte"):
        radio_model("5g")


# ---------------------------------------------------------------------------------------------- JPEG
def test_jpeg_round_trip_and_header_size():
    data = encode_jpeg(FRAME, 90)
    assert jpeg_dimensions(data) == (64, 48)
    back = decode_jpeg(data)
    assert back.shape == FRAME.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - FRAME.astype(int)).mean() < 40  # lossy but the same picture


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"not a jpeg at all", b"\xff\xd8\xff\xe0\x00\x10" + b"\x00" * 14])
def test_malformed_jpeg_is_rejected(data):
    with pytest.raises(RequestRejected) as exc:
        decode_jpeg(data)
    assert exc.value.kind == "bad_jpeg"


def test_oversized_jpeg_is_rejected_from_its_header():
    data = bytearray(encode_jpeg(FRAME, 90))
    i = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    data[i + 5 : i + 9] = bytes([0xFF, 0xFF, 0xFF, 0xFF])  # 65535 x 65535 declared
    with pytest.raises(RequestRejected) as exc:
        decode_jpeg(bytes(data))
    assert exc.value.kind == "too_large"


# ---------------------------------------------------------------------------------------------- server core
def request(robot="/r1/perception", rid=1, data=None, **kw) -> Request:
    base = dict(
        robot_id=robot,
        request_id=rid,
        data=encode_jpeg(FRAME, 80) if data is None else data,
        format="jpeg",
        config=remote_full(),
        detector="fake",
        deadline_s=1.0,
    )
    base.update(kw)
    return Request(**base)


def make_server(**kw) -> tuple[ServerCore, Clock]:
    clock = Clock()
    energy = EnergyMeter(LinearPower(), "model:test")
    return ServerCore(FakeDetector(), "s1", "fake", clock=clock, energy=energy, **kw), clock


def test_server_runs_a_request_and_reports_its_cost():
    core, _ = make_server()
    assert core.offer(request(shadow=True))
    req = core.take(0.0)
    ans = core.run(req)
    assert ans.request is req and ans.config.execution_target == "remote" and ans.config.levels == ("full",) * N
    assert ans.boxes.shape == (1, 4) and ans.labels.tolist() == [1]
    assert ans.accuracy_proxy == 1.0  # the full configuration is its own reference
    assert ans.compute_ms >= 0 and math.isfinite(ans.energy_j) and ans.queue_length == 0
    assert core.stats.served == 1


def test_server_warms_up_on_full_before_any_request():
    core, _ = make_server()
    ms = core.warm_up(64, 48)
    assert math.isfinite(ms) and ms >= 0 and core._loaded == core.full_config.detector_config()
    assert core.stats.served == 0 and not core.stats.compute_ms  # warm-up is not served work


def test_server_runs_full_when_told_and_measures_agreement_of_a_requested_configuration():
    core, _ = make_server(run="full")
    core.offer(request(config=GranularityConfig(("neuron-25",) * N, 1.0, "remote")))
    assert core.run(core.take(0.0)).config.levels == ("full",) * N
    core.run_mode = "requested"
    core.offer(request(rid=2, shadow=True, config=GranularityConfig(("neuron-25",) * N, 1.0, "remote")))
    ans = core.run(core.take(0.0))
    assert ans.config.levels == ("neuron-25",) * N and ans.accuracy_proxy == 0.0  # its box is 30 px off


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        (dict(robot=""), "no_robot_id"),
        (dict(detector="other"), "wrong_detector"),
        (dict(format="png"), "bad_format"),
        (dict(data=b"\xff" * 5000), "too_large"),
        (dict(deadline_s=float("nan")), "bad_deadline"),
        (dict(config=GranularityConfig(("full",) * (N + 1), 1.0, "remote")), "bad_configuration"),
    ],
)
def test_server_drops_malformed_or_oversized_requests_and_counts_them(kw, kind):
    core, _ = make_server(max_request_bytes=4096)
    with pytest.raises(RequestRejected) as exc:
        core.offer(request(**kw))
    assert exc.value.kind == kind and core.stats.dropped == {kind: 1} and core.queue_length == 0


def test_server_drops_an_undecodable_jpeg_when_it_runs_it():
    core, _ = make_server()
    core.offer(request(data=b"\xff\xd8garbage"))
    with pytest.raises(RequestRejected):
        core.run(core.take(0.0))
    assert core.stats.dropped == {"bad_jpeg": 1} and core.stats.served == 0


def test_server_ignores_requests_for_another_server():
    core, _ = make_server()
    assert not core.offer(request(server_id="s2")) and core.queue_length == 0 and not core.stats.dropped
    assert core.offer(request(server_id="s1"))


def test_server_queue_keeps_one_request_per_robot_a_bounded_total_and_drops_stale_ones():
    core, clock = make_server(max_queue=2)
    core.offer(request(rid=1))
    core.offer(request(rid=2))  # replaces the robot's waiting frame
    assert core.queue_length == 1 and core.stats.dropped == {"superseded": 1}
    core.offer(request(robot="/r2/perception"))
    core.offer(request(robot="/r3/perception"))
    assert core.queue_length == 2 and core.stats.dropped["queue_full"] == 1
    clock.t += 5.0  # past every deadline
    assert core.take(0.0) is None and core.stats.dropped["stale"] == 2


# ---------------------------------------------------------------------------------------------- robot client
def client(**kw) -> tuple[OffloadClient, Clock]:
    clock = Clock()
    return OffloadClient("/r1/perception", "fake", 2, clock=clock, **kw), clock


def announce(c: OffloadClient, server="s1", detector="fake", classes=2) -> bool:
    return c.heard(Announcement(server, detector, classes, queue_length=3))


def reply(rid: int, server="s1", boxes=((10, 10, 20, 20),), scores=(0.9,), labels=(1,), robot="/r1/perception"):
    return Reply(
        robot,
        rid,
        server,
        np.asarray(boxes, dtype=np.float32).reshape(-1),
        np.asarray(scores, dtype=np.float32),
        np.asarray(labels, dtype=np.int64),
        compute_ms=5.0,
        server_ms=10.0,
        queue_length=1,
    )


def test_no_server_no_remote_then_the_first_answer_chooses_the_server():
    c, clock = client()
    assert c.plan() == (None, "no_server") and not c.available()
    assert not announce(c, detector="other") and c.ignored_servers["s1"] == 1
    assert announce(c) and announce(c, "s2")
    assert c.plan() == ("", "")  # no server chosen yet: any may answer
    rec = c.sent("", 50_000, 64, 48, 0.2)
    clock.t += 0.05
    got, rtt = c.accept(reply(rec.request_id, "s2"))
    assert got is rec and rtt == pytest.approx(0.05)
    assert c.chosen == "s2" and c.plan() == ("s2", "")
    with pytest.raises(ResultRejected) as exc:  # the slower server answers the same request
        c.accept(reply(rec.request_id, "s1"))
    assert exc.value.kind == "duplicate"
    # link measurements: the round trip less the server's 10 ms, uplink over that time
    assert c.link.rtt_ms == pytest.approx(40.0)
    assert c.link.uplink_mbps == pytest.approx(8 * 50_000 / 0.04 / 1e6)
    assert c.link.loss == 0.0 and c.link.server_queue == 1


def test_replies_for_other_robots_unknown_or_stale_requests_are_dropped():
    c, clock = client(miss_limit=5)
    announce(c)
    assert c.accept(reply(1, robot="/r2/perception")) is None  # someone else's: ignored, not counted
    with pytest.raises(ResultRejected, match="no request 7"):
        c.accept(reply(7))
    rec = c.sent("", 1000, 64, 48, 0.2)
    clock.t += 0.3
    assert [r.request_id for r in c.expire()] == [rec.request_id]
    with pytest.raises(ResultRejected) as exc:
        c.accept(reply(rec.request_id))
    assert exc.value.kind == "stale"
    assert dict(c.link.rejected) == {"unknown": 1, "stale": 1} and c.link.misses["timeout"] == 1
    assert c.link.loss == 1.0


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        (dict(boxes=((float("nan"), 0, 10, 10),)), "bad_boxes"),
        (dict(boxes=((0, 0, 640, 10),)), "bad_boxes"),  # the image is 64 px wide
        (dict(boxes=((20, 0, 10, 10),)), "bad_boxes"),  # x2 < x1
        (dict(scores=(1.5,)), "bad_boxes"),
        (dict(labels=(7,)), "bad_class"),
        (dict(scores=(0.9, 0.8)), "malformed"),
    ],
)
def test_replies_with_bad_boxes_are_dropped_and_the_request_stays_in_flight(kw, kind):
    c, _ = client()
    announce(c)
    rec = c.sent("", 1000, 64, 48, 0.2)
    with pytest.raises(ResultRejected) as exc:
        c.accept(reply(rec.request_id, **kw))
    assert exc.value.kind == kind and c.link.rejected[kind] == 1
    assert rec.request_id in c.in_flight  # a good reply may still come


def test_misses_in_a_row_take_the_link_down_until_a_probe_is_answered_in_time():
    """No frame goes out on a link that is down: after retry_s a probe does (even with probes off), and only its
    answer within the frame budget brings remote back; each unanswered retry stretches the next wait."""
    c, clock = client(miss_limit=2, retry_s=2.0)
    announce(c)
    for _ in range(2):
        c.sent("", 1000, 64, 48, 0.1)
        clock.t += 0.15
        c.expire()
    assert c.plan() == (None, "link_down") and not c.available()
    assert c.probe_due(0.0) is None  # not before retry_s
    clock.t += 2.0
    announce(c)
    assert c.plan() == (None, "link_down") and c.probe_due(0.0) == ""  # frames stay here; the retry is a probe
    c.sent("", 1000, 64, 48, 0.1, probe=True)
    clock.t += 0.15
    c.expire()
    assert c.plan() == (None, "link_down") and c.link.misses["timeout"] == 2  # the probe is no frame's miss
    clock.t += 2.0
    announce(c)
    assert c.probe_due(0.0) is None  # one unanswered retry: the next waits 2 x retry_s
    clock.t += 2.0
    announce(c)
    slow = c.sent(c.probe_due(0.0), 1000, 64, 48, 0.3, slow_s=0.2, probe=True)
    clock.t += 0.25
    c.accept(reply(slow.request_id))
    assert c.plan() == (None, "link_down")  # answered, but too late for the frame budget
    clock.t += 2.0
    announce(c)
    answered = 0
    while c.plan()[0] is None:  # answers in time, each probing again with the next frame, until the rate is low
        rec = c.sent(c.probe_due(0.0), 1000, 64, 48, 0.3, slow_s=0.2, probe=True)
        clock.t += 0.05
        c.accept(reply(rec.request_id))
        answered += 1
        assert answered < 20
    assert 4 <= answered <= 8 and c.plan() == ("s1", "") and c.available()


def test_a_lossy_link_goes_down_and_one_lucky_answer_does_not_bring_it_back():
    """One request in three lost (20 % each way) never makes miss_limit failures in a row here, yet each loss
    costs a frame its deadline: the failure rate takes the link down, and it stays down while probes keep
    failing now and then; a clean link afterwards comes back within a handful of frames."""
    c, clock = client(miss_limit=3, retry_s=1.0)
    announce(c)
    pattern = [True, True, False] * 20  # lost every third, never twice in a row
    sent_frames = 0
    for ok in pattern:
        if c.plan()[0] is None:
            break
        rec = c.sent("", 1000, 64, 48, 0.3, slow_s=0.2)
        sent_frames += 1
        clock.t += 0.05 if ok else 0.35
        c.accept(reply(rec.request_id)) if ok else c.expire()
    assert c.plan() == (None, "link_down") and sent_frames <= 9
    ups, outcomes, lost_at, waits = 0, iter(pattern), None, []
    end = clock.t + 40.0
    while clock.t < end:  # probes on the same link, a frame every 0.2 s: after an answer the next frame probes
        clock.t += 0.2
        announce(c)
        server = c.probe_due(0.0)
        if server is None:
            continue
        if lost_at is not None:
            waits.append(round(clock.t - lost_at, 1))
        ok = next(outcomes)
        rec = c.sent(server, 1000, 64, 48, 0.3, slow_s=0.2, probe=True)
        clock.t += 0.05 if ok else 0.35
        c.accept(reply(rec.request_id)) if ok else c.expire()
        lost_at = None if ok else clock.t
        ups += c.plan()[0] is not None
    # never back up; after each lost probe the wait doubles up to 4 x retry_s, answers in between or not
    assert ups == 0 and c.link.probes >= 10
    assert waits[:2] == [2.0, 4.0] and all(4.0 <= w <= 4.2 for w in waits[2:]), waits  # 4.2: the next frame
    for _ in range(40):  # the link is clean again
        clock.t += 0.2
        announce(c)
        server = c.probe_due(0.0)
        if server is not None:
            rec = c.sent(server, 1000, 64, 48, 0.3, slow_s=0.2, probe=True)
            clock.t += 0.05
            c.accept(reply(rec.request_id))
        if c.plan()[0] is not None:
            break
    assert c.plan() == ("s1", "")


def test_answers_later_than_the_frame_budget_take_a_too_slow_link_down():
    """A reply inside the deadline but past the frame budget is published, yet the target cannot be met that way:
    miss_limit of them in a row leave the link as misses do; one in time resets the count."""
    c, clock = client(miss_limit=2, retry_s=2.0)
    announce(c)
    slow = c.sent("", 1000, 64, 48, 0.3, slow_s=0.2)
    clock.t += 0.25
    assert c.accept(reply(slow.request_id)) is not None  # published: inside the deadline
    fast = c.sent("", 1000, 64, 48, 0.3, slow_s=0.2)
    clock.t += 0.05
    c.accept(reply(fast.request_id))
    assert c.plan() == ("s1", "")  # one slow answer, then one in time: still remote
    for _ in range(2):
        rec = c.sent("", 1000, 64, 48, 0.3, slow_s=0.2)
        clock.t += 0.25
        c.accept(reply(rec.request_id))
    assert c.plan() == (None, "link_down") and c.link.slow == 3 and not c.link.misses


def test_a_silent_server_is_forgotten():
    c, clock = client(server_timeout_s=3.0)
    announce(c)
    rec = c.sent("", 1000, 64, 48, 0.1)
    c.accept(reply(rec.request_id))
    clock.t += 3.5
    assert c.plan() == (None, "no_server") and c.chosen == ""


# ---------------------------------------------------------------------------------------------- runtime
def test_runtime_remote_frame_charges_the_robot_only_its_encode_and_radio():
    energy = EnergyMeter(LinearPower(), "model:test", radio=radio_model("wifi"))
    clock = Clock()
    rt = PerceptionRuntime(FakeDetector(), GranularityConfig.uniform("neuron-50", N), clock=clock, energy=energy)
    rt.command(remote_full().to_indices())
    assert rt.wants_remote()
    radio = energy.radio_energy_j(40_000, 300, 0.05)
    cost = RemoteCost(server_id="s1", rtt_s=0.05, encode_busy_s=0.002, radio_j=radio, server_energy_j=0.7)
    dets = FakeDetector.detect.__get__(_full_detector())([IMG])[0]
    res = rt.remote_frame(IMG, dets, remote_full(), cost, accuracy=1.0)
    assert res.config.execution_target == "remote" and res.remote is cost
    assert res.detector_energy_per_frame_j == pytest.approx(2.0 * 0.002 + radio)  # no detector joules, no server's
    assert res.latency_ms == pytest.approx(50.0) and res.accuracy_proxy == 1.0
    assert rt.stats.remote_frames == 1 and rt.stats.remote_run_locally == 0
    # a miss runs the fallback configuration here and still pays for the JPEG, the radio and the wait
    miss = RemoteCost(miss="timeout", rtt_s=0.15, encode_busy_s=0.002, radio_j=radio)
    res = rt.process(IMG, miss)
    assert res.config == rt.fallback_config and res.remote.miss == "timeout"
    assert res.latency_ms >= 150.0 and res.detector_energy_per_frame_j > 2.0 * 0.002 + radio
    assert rt.stats.remote_run_locally == 1


def _full_detector() -> FakeDetector:
    d = FakeDetector()
    d.set_config(GranularityConfig.uniform("full", N))
    return d


def test_the_kept_server_falling_silent_hands_the_next_frame_to_another_at_once():
    """Two servers: a kept one that stops answering is dropped after miss_limit misses and the next frame races
    again (no retry_s wait while another server announces itself); with no other server the link is down."""
    c, clock = client(miss_limit=2, retry_s=2.0)
    announce(c), announce(c, "s2")
    rec = c.sent("", 1000, 64, 48, 0.2)
    c.accept(reply(rec.request_id, "s1"))
    assert c.chosen == "s1"
    for _ in range(2):  # s1 dies: its requests time out
        c.sent(*c.plan()[:1], 1000, 64, 48, 0.2)
        clock.t += 0.3
        c.expire()
    assert c.chosen == "" and c.plan() == ("", "")  # not link_down: s2 still announces itself
    rec = c.sent("", 1000, 64, 48, 0.2)
    c.accept(reply(rec.request_id, "s2"))
    assert c.chosen == "s2" and c.link.misses["timeout"] == 2
    c.servers.pop("s1")  # s1's announcements stopped
    for _ in range(2):  # now s2 goes too: nobody else to race, the link is down
        c.sent("s2", 1000, 64, 48, 0.2)
        clock.t += 0.3
        c.expire()
    assert c.plan() == (None, "link_down")


def test_link_probes_keep_the_link_measured_while_frames_run_here():
    """Every probe_period_s without a request, a frame that ran here goes out as a probe: its reply measures the
    link like a remote frame's; an unanswered one counts toward link_down but is no frame's miss."""
    c, clock = client(miss_limit=2, retry_s=2.0)
    assert c.probe_due(1.0) is None  # no server heard
    announce(c)
    assert c.probe_due(0.0) is None  # probes off
    assert c.probe_due(1.0) == ""  # none sent yet: any server may answer
    rec = c.sent("", 20_000, 64, 48, 0.3, probe=True)
    assert c.probe_due(1.0) is None  # in flight
    clock.t += 0.04
    c.accept(reply(rec.request_id))
    assert c.link.rtt_ms == pytest.approx(30.0) and c.link.loss == 0.0 and c.chosen == "s1"  # 40 less 10 ms
    assert c.link.probes == 1 and c.probe_due(1.0) is None  # sent 0.04 s ago
    clock.t += 1.0
    assert c.probe_due(1.0) == "s1"
    for _ in range(2):  # the link goes silent: two probes unanswered take it down, no frame missed
        announce(c)
        c.sent(c.probe_due(0.1), 20_000, 64, 48, 0.3, probe=True)
        clock.t += 0.35
        assert [r.probe for r in c.expire()] == [True]
    assert not c.link.misses and c.link.loss == pytest.approx(2 / 3)
    announce(c)
    assert c.plan() == (None, "link_down") and c.probe_due(0.1) is None


def test_unanswered_probes_stretch_the_probe_period_and_an_answer_restores_it():
    """A lost probe costs its encode and the radio for its whole deadline: on a lossy link each one doubles the
    period, up to PROBE_BACKOFF_MAX times; the second takes the link down (its failure rate), and the retries of a
    link that is down stretch the same way. An answer brings the next probe at once."""
    c, clock = client(miss_limit=100, retry_s=1.0)
    waits = []
    for _ in range(5):
        announce(c)
        sent_at = clock.t
        c.sent(c.probe_due(1.0), 20_000, 64, 48, 0.3, probe=True)
        clock.t += 0.35
        c.expire()
        while c.probe_due(1.0) is None:
            clock.t += 0.05
            announce(c)
        waits.append(round(clock.t - sent_at, 1))
    # 2 x the 1 s period after the sent probe; then down: PROBE_BACKOFF_MAX (4) x retry_s after the failure
    assert waits == [2.0, 4.4, 4.4, 4.4, 4.4]
    assert c.plan() == (None, "link_down")
    rec = c.sent(c.probe_due(1.0), 20_000, 64, 48, 0.3, probe=True)
    clock.t += 0.04
    c.accept(reply(rec.request_id))
    announce(c)
    assert c.plan() == (None, "link_down") and c.probe_due(1.0) == ""  # one answer: still down, probe again now


def test_runtime_charges_a_probe_to_the_next_frame():
    energy = EnergyMeter(LinearPower(), "model:test", radio=radio_model("wifi"))
    rt = PerceptionRuntime(FakeDetector(), GranularityConfig.uniform("neuron-50", N), clock=Clock(), energy=energy)
    plain = rt.process(IMG).detector_energy_per_frame_j
    rt.add_overhead(0.002, 0.05)
    charged = rt.process(IMG).detector_energy_per_frame_j
    assert charged == pytest.approx(plain + 0.05 + 2.0 * 0.002, abs=1e-3)  # the fake detector's own joules ~3e-5
    assert rt.process(IMG).detector_energy_per_frame_j == pytest.approx(plain, abs=1e-3)  # charged once
