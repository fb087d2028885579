"""`agra-ros launch name:=value` (pip installs, no launch_ros needed): the graph it starts comes from the same
``agra_ros.launcher.graph_spec`` launch/agra.launch.py reads, and the video camera's fallback. These run everywhere;
test/test_launch.py covers ros2 launch itself where launch_ros is installed."""

from __future__ import annotations

import pytest


def test_agra_ros_launch_starts_the_graph_ros2_launch_starts(monkeypatch):
    """`agra-ros launch name:=value ...` (pip installs) builds its processes from the same graph_spec."""
    from agra_ros import launcher

    started: list[tuple[str, list[str]]] = []
    envs: list[dict] = []

    def fake_start(self, name, cmd, foreground=False):
        started.append((name, cmd))
        envs.append(self.env)

    monkeypatch.setattr(launcher.Supervisor, "start", fake_start)
    monkeypatch.setattr(launcher.Supervisor, "run", lambda self, duration=None, watch=None: 0)
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    args = launcher.parse_launch_arguments(
        ["camera:=none", "namespace:=robot1", "image_topic:=/cam/image", "target_fps:=20"]
    )
    assert launcher.launch(args) == 0
    _, spec = launcher.graph_spec(args)
    assert [n for n, _ in started] == [n for n, _, _ in spec] == ["device_monitor", "perception", "policy"]
    policy = dict(started)["policy"]
    assert policy[policy.index("-r") : policy.index("-r") + 2] == ["-r", "__ns:=/robot1"]
    assert "target_fps:=20.0" in policy and "image_raw:=/cam/image" in dict(started)["perception"]
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in envs[0], "like ros2 launch: DDS as the shell set it by default"
    started.clear()
    envs.clear()
    launcher.launch(launcher.parse_launch_arguments(["localhost_only:=true"]))
    assert envs[0]["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    for bad in (["camera=video"], ["cammera:=video"]):
        with pytest.raises(ValueError):
            launcher.parse_launch_arguments(bad)


def test_the_video_camera_without_media_runs_the_synthetic_scene(monkeypatch):
    from agra_ros.workload import real_media, sources

    monkeypatch.setattr(real_media, "media_available", lambda root=None: False)
    assert sources.camera_fallback("video", "", "video")[:2] == ("synthetic", "default")
    assert sources.camera_fallback("video", "/data/my.mp4", "video") == ("video", "video", None)
    assert sources.camera_fallback("synthetic", "", "default") == ("synthetic", "default", None)
    monkeypatch.setattr(real_media, "media_available", lambda root=None: True)
    assert sources.camera_fallback("video", "", "video") == ("video", "video", None)
