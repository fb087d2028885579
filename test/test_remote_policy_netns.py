"""The policy chooses remote execution itself, over real DDS on a real link: the robot's graph (camera_source on
real video, perception, device_monitor, policy_node with the shipped agra policy and allow_remote on, a listening
probe) in one network namespace, perception_server in another, joined by a veth pair (see test_remote_netns).

Phases: no server (the policy runs here: the baseline); the server starts (perception's link probes measure the
link, P shows a server, the policy offloads and the robot's own energy per frame drops); the link degrades (2 Mbit/s,
20 % loss: the policy and perception are back on local within 3 s and frames keep coming); the link is restored and
the server killed (local again). No node dies; the misses meanwhile are counted by cause and printed.

Needs root and the fetched clips; skips with the reason otherwise. The figures are printed (pytest -s).
"""

from __future__ import annotations

import math
import time

import pytest
from test_remote_netns import (  # noqa: F401 - link is the namespaces fixture
    BACK_TO_LOCAL_S,
    ROOT,
    Graph,
    assert_alive,
    attainment,
    close,
    degrade,
    link,
    mean,
    restore,
    robot_dynamic_j,
    rows,
    wait_rows,
)

from agra_ros.workload.real_media import media_available

pytestmark = [pytest.mark.slow, pytest.mark.ros]

TARGET_FPS = 5.0
"""Full meets it here (SSD at 320x240 on one thread): offloading has to pay in energy, not in rate."""
GOOD_LINK_S = 60.0
"""How long the policy has on the good link to start offloading (probes every 2 s, decisions at 5 Hz)."""


def _share_remote(frames: list[dict]) -> float:
    return sum(x["target"] == 1 for x in frames) / max(1, len(frames))


def test_the_policy_offloads_on_a_good_link_and_comes_back_when_it_degrades(link, tmp_path):  # noqa: F811
    if not media_available():
        pytest.skip("the real clips are not fetched (agra-ros fetch-media; the README's set-up fetches them)")
    g = Graph(link, tmp_path)
    out, control = tmp_path / "feedback.jsonl", tmp_path / "command"
    control.write_text("listen")  # the policy commands
    robot, server = link["robot"], link["server"]
    trace = tmp_path / "hall.yaml"
    trace.write_text(
        "name: hall\nphases:\n  - {name: hall, clip: vtest, duration_s: 600, density: [3, 10], resolution: [320, 240], "
        f"target_fps: {TARGET_FPS}}}\n"
    )
    report: dict[str, object] = {}
    try:
        g.node(
            "camera", robot, "camera_source", source="video", trace=str(trace), fps=2 * TARGET_FPS,
            reliability="reliable",
        )  # fmt: skip
        g.node("device", robot, "device_monitor", rate_hz=4.0)
        g.node(
            "perception", robot, "perception", detector="ssd", threads=1, power_counts_processes=True,
            reliability="reliable",
        )  # fmt: skip
        g.node(
            "policy", robot, "policy", algorithm="agra", learning=False, allow_remote=True, target_fps=TARGET_FPS,
            follow_trace=False, checkpoint_dir="''", live_accuracy="none",
        )  # fmt: skip
        g.start("probe", robot, [str(ROOT / "test" / "remote_probe.py"), str(out), str(TARGET_FPS), str(control)])

        # no server: the policy runs here
        got = wait_rows(out, lambda r: sum(x["decision"] > 0 for x in r) >= 30, 120)
        assert sum(x["decision"] > 0 for x in got) >= 30, "no frames under the policy's commands\n" + g.tail()
        t_local = time.monotonic()
        time.sleep(10.0)
        local = [x for x in rows(out) if x["t"] >= t_local]
        assert local and all(x["target"] == 0 for x in local), "remote with no server"

        # the server starts: the probes measure the link, the policy offloads
        g.node("server", server, "perception_server", server_id="edge1", detector="ssd")
        t_server = time.monotonic()
        got = wait_rows(
            out, lambda r: sum(x["t"] > t_server and x["target"] == 1 for x in r) >= 20, GOOD_LINK_S
        )  # fmt: skip
        first_remote = next((x["t"] - t_server for x in got if x["t"] > t_server and x["target"] == 1), math.inf)
        t_good = time.monotonic()
        time.sleep(10.0)
        good = [x for x in rows(out) if x["t"] >= t_good]
        report.update(
            local_frames=len(local),
            local_robot_dynamic_j=robot_dynamic_j(local),
            local_fps=mean(x["fps"] for x in local),
            first_remote_after_server_s=first_remote,
            good_frames=len(good),
            good_remote_share=_share_remote(good),
            good_robot_dynamic_j=robot_dynamic_j(good),
            good_fps=mean(x["fps"] for x in good),
            good_rtt_ms=mean(x["link_rtt_ms"] for x in good),
        )
        report["good_vs_local_dynamic"] = report["good_robot_dynamic_j"] / report["local_robot_dynamic_j"]
        assert first_remote < GOOD_LINK_S, f"the policy never offloaded: {report}\n" + g.tail()
        assert report["good_remote_share"] >= 0.5, report
        assert report["good_robot_dynamic_j"] < report["local_robot_dynamic_j"], report

        # the link degrades: back on local within 3 s, frames keep coming
        degrade(link)
        t_bad = time.monotonic()
        time.sleep(8.0)
        bad = [x for x in rows(out) if x["t"] > t_bad]
        late = [x for x in bad if x["t"] > t_bad + BACK_TO_LOCAL_S]
        report.update(
            degraded_back_to_local_s=next((x["t"] - t_bad for x in bad if x["target"] == 0), math.inf),
            degraded_remote_share_after_3s=_share_remote(late),
            degraded_fps_after_3s=len(late) / (8.0 - BACK_TO_LOCAL_S),
            degraded_misses={c: sum(x["remote_miss"] == c for x in bad) for c in ("timeout", "link_down", "no_server")},
            local_attainment=attainment(local, TARGET_FPS),
            degraded_attainment_after_3s=attainment(late, TARGET_FPS),
            degraded_robot_dynamic_j=robot_dynamic_j(late),
        )
        report["degraded_vs_local_dynamic"] = report["degraded_robot_dynamic_j"] / report["local_robot_dynamic_j"]
        assert report["degraded_back_to_local_s"] <= BACK_TO_LOCAL_S, report
        # mostly here: 2 Mbit/s still carries a 320x240 JPEG in time, so a retry the server answers may run there
        assert report["degraded_remote_share_after_3s"] <= 0.4, report
        assert len(late) >= 0.5 * TARGET_FPS * (8.0 - BACK_TO_LOCAL_S), report
        assert report["degraded_attainment_after_3s"] >= report["local_attainment"] - 0.2, report

        # restored, then the server dies: local again
        restore(link)
        time.sleep(3.0)
        g.procs["server"].kill()
        g.procs["server"].wait(timeout=10)
        t_dead = time.monotonic()
        time.sleep(6.0)
        dead = [x for x in rows(out) if x["t"] > t_dead + BACK_TO_LOCAL_S]
        report["killed_remote_share_after_3s"] = _share_remote(dead)
        assert dead and report["killed_remote_share_after_3s"] == 0.0, report
        assert_alive(g, ("camera", "device", "perception", "policy", "probe"))
    finally:
        codes = close(g, link, "policy offloading over veth", report)
    assert all(codes[n] == 0 for n in ("camera", "perception", "policy")), codes
