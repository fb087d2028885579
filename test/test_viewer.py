"""agra-ros view: a Foxglove WebSocket client subscribes to the viewer of a running graph and receives an image,
a detection message and a series sample (over real DDS: camera_source -> perception -> viewer)."""

from __future__ import annotations

import json
import socket
import struct
import time

import numpy as np
import pytest
import yaml
from ros_harness import node_process, probe, read_log, wait_for

from agra_ros.paths import config_dir

pytestmark = pytest.mark.ros

SUBPROTOCOL = "foxglove.sdk.v1"  # what the foxglove-sdk server speaks (the app negotiates it)
MESSAGE_DATA = 0x01  # binary opcode of a message on a subscribed channel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(port: int, deadline: float):
    from websockets.sync.client import connect

    while True:
        try:
            return connect(f"ws://127.0.0.1:{port}", subprotocols=[SUBPROTOCOL], open_timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_foxglove_client_receives_image_detections_and_series(tmp_path):
    port = _free_port()
    camera = {"fps": 5.0, "width": 320, "height": 240, "trace": "", "seed": 3, "source": "synthetic"}
    perception = {"detector": "synthetic", "threads": 1, "annotate_every": 1, "fallback_timeout_s": 1.0}
    with (
        node_process("perception", perception, tmp_path) as perc,
        node_process("camera_source", camera, tmp_path) as cam,
        node_process("viewer", {"port": port}, tmp_path) as viewer,
        node_process("policy", {"algorithm": "rule", "learning": False}, tmp_path) as policy,
        probe("viewer_probe") as pr,
    ):
        deadline = time.monotonic() + 90
        with _connect(port, deadline) as ws:
            channels: dict[int, dict] = {}
            got: dict[str, bytes] = {}
            subscribed: dict[int, str] = {}
            while time.monotonic() < deadline and len(got) < 3:
                try:
                    frame = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                if isinstance(frame, str):
                    msg = json.loads(frame)
                    if msg.get("op") == "advertise":
                        new = [c for c in msg["channels"] if c["id"] not in channels]
                        channels.update({c["id"]: c for c in new})
                        subs = [{"id": 100 + c["id"], "channelId": c["id"]} for c in new]
                        subscribed.update({s["id"]: channels[s["channelId"]]["topic"] for s in subs})
                        ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
                    continue
                if frame[0] != MESSAGE_DATA:
                    continue
                sub_id = struct.unpack_from("<I", frame, 1)[0]
                topic = subscribed.get(sub_id, "")
                payload = frame[1 + 4 + 8 :]
                if topic == "/image_annotated":
                    got["image"] = payload
                elif topic == "/detections":
                    got["detections"] = payload
                elif topic == "/agra/series" and (json.loads(payload).get("fps") or 0) > 0:  # perception runs
                    got["series"] = payload
        logs = "\n".join(read_log(p) for p in (perc, cam, viewer, policy))
        assert set(got) == {"image", "detections", "series"}, f"received {sorted(got)}\n{logs[-4000:]}"
        topics = {c["topic"]: c for c in channels.values()}
        assert topics["/image_annotated"]["schemaName"] == "foxglove.CompressedImage"
        assert topics["/detections"]["schemaName"] == "foxglove.ImageAnnotations"
        series = json.loads(got["series"])
        assert np.isfinite(series["fps"]) and series["fps"] > 0
        assert b"\xff\xd8" in got["image"]  # the JPEG's start-of-image marker inside the encoded message
        assert "Traceback" not in logs
        # every topic the shipped rviz, rqt and Foxglove configurations show is one this graph publishes
        wanted = shipped_view_topics()
        live = lambda: {n for n, _ in pr.node.get_topic_names_and_types()}  # noqa: E731
        wait_for(lambda: all(_topic_of(w, live()) for w in wanted), 20)
        missing = sorted(w for w in wanted if not _topic_of(w, live()))
        assert not missing, f"configured but not published: {missing}; published: {sorted(live())}"
    assert viewer.returncode == 0


def _topic_of(path: str, topics: set[str]) -> str | None:
    """The published topic a field path (``/agra/feedback/fps``, ``/agra/series.fps``) reads, if any."""
    parts = path.split(".")[0].split("/")
    for n in range(len(parts), 1, -1):
        if "/".join(parts[:n]) in topics:
            return "/".join(parts[:n])
    return None


FOXGLOVE_ONLY = ("/agra/series", "/agra/configuration")
"""Channels that agra-ros view adds to the Foxglove layout (/agra/configuration is also a ROS topic)."""


def shipped_view_topics() -> list[str]:
    """ROS topics named by config/agra.rviz, config/agra.perspective and config/foxglove_layout.json."""
    rviz = yaml.safe_load((config_dir() / "agra.rviz").read_text())
    out = ["/" + d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"]]
    persp = json.loads((config_dir() / "agra.perspective").read_text())
    for name, group in persp["groups"]["pluginmanager"]["groups"].items():
        if name.startswith("plugin__rqt_plot__Plot__"):
            import ast

            out += ast.literal_eval(group["groups"]["plugin"]["keys"]["topics"]["repr"])
    layout = json.loads((config_dir() / "foxglove_layout.json").read_text())
    for panel in layout["configById"].values():
        out += [p["value"] for p in panel.get("paths", []) if not p["value"].startswith(FOXGLOVE_ONLY[0])]
        if "imageMode" in panel:
            out.append(panel["imageMode"]["imageTopic"])
    return sorted(set(out))


def test_the_rviz_view_subscribes_best_effort_in_the_cameras_frame():
    """rviz2's image display shows nothing from a best-effort publisher while it asks for reliable delivery."""
    rviz = yaml.safe_load((config_dir() / "agra.rviz").read_text())
    manager = rviz["Visualization Manager"]
    images = [d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    assert images and all(d["Topic"]["Reliability Policy"] == "Best Effort" for d in images)
    camera = yaml.safe_load((config_dir() / "agra.yaml").read_text())
    frame = next(v["ros__parameters"]["frame_id"] for k, v in camera.items() if "camera" in k)
    assert manager["Global Options"]["Fixed Frame"] == frame
