"""launch/agra.launch.py: its arguments (camera, image_topic, namespace, device_profile, target_fps, localhost_only) and the
whole graph started through launch's own LaunchService, stopped with SIGINT to its process group as a terminal's
Ctrl-C does, twice (each node gets it from the terminal and again from launch, and a user presses Ctrl-C again):
every node exits 0 inside launch's SIGINT window, the policy's final checkpoint loads, and the logs hold no
traceback or error line. Needs launch and launch_ros (a ROS distro, or ../shared/ros2-launch/install.sh on a pip
venv)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "launch_ros", reason="launch_ros is not installed (ROS distro, or ../shared/ros2-launch/install.sh)"
)

from launch.actions import SetEnvironmentVariable  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

from launch import LaunchContext  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "agra.launch.py"
BAD_LOG_LINE = re.compile(
    r"Traceback|\[ERROR\]|\[FATAL\]|KeyboardInterrupt|Exception ignored|Failed to publish log message"
    r"|rcl_trigger_guard_condition|escalating to 'SIG"
)
"""What a normal Ctrl-C must never print: tracebacks, error lines, rosout on a dead context, launch escalating."""


def _launch_module():
    spec = importlib.util.spec_from_file_location("agra_launch", LAUNCH_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_arguments_and_their_defaults():
    mod = _launch_module()
    localhost_only, spec = mod.graph_spec({})
    assert not localhost_only, "ros2 launch must not restrict discovery unless asked"
    assert [n for n, _, _ in spec] == ["camera_source", "device_monitor", "perception", "policy"]
    over = {n: o for n, o, _ in spec}
    assert over["device_monitor"]["device_profile"] == "auto" and over["perception"]["device_profile"] == "auto"
    assert "target_fps" not in over["policy"] and over["camera_source"]["source"] == "video"
    assert over["camera_source"]["trace"] == "video", "camera:=video plays the demo's trace"
    assert all(r == [] for _, _, r in spec)

    localhost_only, spec = mod.graph_spec(
        {"camera": "none", "image_topic": "/camera/color/image_raw", "target_fps": "20", "localhost_only": "true"}
    )
    assert localhost_only
    assert [n for n, _, _ in spec] == ["device_monitor", "perception", "policy"], "camera:=none starts no camera"
    remaps = {n: r for n, _, r in spec}
    assert remaps["perception"] == remaps["policy"] == [("image_raw", "/camera/color/image_raw")]
    assert remaps["device_monitor"] == []
    assert {n: o for n, o, _ in spec}["policy"]["target_fps"] == 20.0

    _, spec = mod.graph_spec({"camera": "video", "image_topic": "cam", "target_fps": "12.5"})
    over = {n: o for n, o, _ in spec}
    assert over["camera_source"]["source"] == "video" and over["policy"]["follow_trace"] is False
    assert {n: r for n, _, r in spec}["camera_source"] == [("image_raw", "cam")]
    _, spec = mod.graph_spec({"camera": "synthetic"})
    assert {n: o for n, o, _ in spec}["camera_source"] == {"source": "synthetic", "trace": "default"}
    _, spec = mod.graph_spec({"camera": "video", "trace": "video_night"})
    assert {n: o for n, o, _ in spec}["camera_source"]["trace"] == "video_night"  # a named trace as given
    _, spec = mod.graph_spec({"view": "true"})
    assert spec[-1] == ("viewer", {}, []), "view:=true adds the Foxglove viewer"
    _, spec = mod.graph_spec({"record": "true"})
    assert spec[-1] == ("recorder", {"out": ""}, []), "record:=true adds the recorder (default folder)"
    _, spec = mod.graph_spec({"record": "/tmp/run1"})
    assert spec[-1][:2] == ("recorder", {"out": "/tmp/run1"})
    for bad in ({"camera": "usb"}, {"target_fps": "fast"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            mod.graph_spec(bad)


def test_opaque_function_builds_nodes_and_dds_settings_only_when_asked():
    mod = _launch_module()
    for localhost_only, camera, n_nodes in (("false", "synthetic", 4), ("true", "none", 3)):
        ctx = LaunchContext()
        for name, default, _ in mod.ARGUMENTS:
            ctx.launch_configurations[name] = default
        ctx.launch_configurations.update({"localhost_only": localhost_only, "camera": camera, "namespace": "robot1"})
        actions = mod._graph(ctx, share=str(ROOT))
        assert sum(isinstance(a, Node) for a in actions) == n_nodes
        env = {a.name[0].text for a in actions if isinstance(a, SetEnvironmentVariable)}
        if localhost_only == "true":
            assert env == {
                "ROS_AUTOMATIC_DISCOVERY_RANGE",
                "FASTDDS_DEFAULT_PROFILES_FILE",
                "FASTRTPS_DEFAULT_PROFILES_FILE",
            }
        else:
            assert env == set()


RUNNER = r"""
import json, sys
import launch
from launch.actions import IncludeLaunchDescription, RegisterEventHandler
from launch.event_handlers import OnProcessExit, OnProcessStart, OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource

def say(**kw):
    print("AGRA_EVENT " + json.dumps(kw), flush=True)

args = [tuple(a.split(":=", 1)) for a in sys.argv[2:]]
ld = launch.LaunchDescription([
    RegisterEventHandler(OnProcessStart(on_start=lambda ev, ctx: say(event="start", name=ev.process_name))),
    RegisterEventHandler(OnProcessExit(on_exit=lambda ev, ctx: say(event="exit", name=ev.process_name,
                                                                   code=ev.returncode))),
    RegisterEventHandler(OnShutdown(on_shutdown=lambda ev, ctx: say(event="shutdown", reason=str(ev.reason)))),
    IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=args),
])
service = launch.LaunchService()
service.include_launch_description(ld)
rc = service.run()
say(event="done", rc=rc)
sys.exit(rc)
"""


def _colcon_install(tmp_path: Path) -> Path:
    from colcon_harness import run_colcon

    out = run_colcon(
        [
            "build",
            "--symlink-install",
            "--base-paths",
            str(ROOT),
            "--build-base",
            str(tmp_path / "build"),
            "--install-base",
            str(tmp_path / "install"),
        ],
        tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp_path / "install" / "agra_ros"


@pytest.mark.ros
@pytest.mark.slow
def test_launch_service_brings_the_graph_up_and_sigint_to_the_group_stops_it(tmp_path):
    from ros_harness import probe, wait_for
    from std_msgs.msg import Float32

    from agra_ros.ros.qos import command_qos

    prefix = _colcon_install(tmp_path)
    env = os.environ.copy()  # the harness's ROS_DOMAIN_ID and localhost discovery
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(prefix), sys.prefix, env.get("AMENT_PREFIX_PATH")]))
    env["HOME"] = str(tmp_path / "home")  # the policy's checkpoint and launch's logs
    env.pop("ROS_HOME", None)
    env.pop("ROS_LOG_DIR", None)
    (tmp_path / "runner.py").write_text(RUNNER)
    launch_file = prefix / "share" / "agra_ros" / "launch" / "agra.launch.py"
    log_path = tmp_path / "launch.log"
    # a low target keeps perception (paced to it) light on a loaded machine
    cmd = [sys.executable, str(tmp_path / "runner.py"), str(launch_file), "target_fps:=5.0", "trace:="]
    with open(log_path, "w") as log, probe("launch_probe") as pr:
        fps: list[float] = []
        pr.node.create_subscription(Float32, "agra/fps", lambda m: fps.append(m.data), command_qos())
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            names = {"camera_source", "device_monitor", "perception", "policy"}
            up = wait_for(lambda: len(fps) >= 3 and names <= set(pr.node.get_node_names()), 240, period=0.5)
            assert up, f"graph not up: nodes {pr.node.get_node_names()}, {len(fps)} fps\n{log_path.read_text()[-4000:]}"
            time.sleep(2.0)
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: every process of the group gets it
            t0 = time.monotonic()
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGINT)  # and again, while the nodes shut down
            rc = proc.wait(timeout=60)
            stop_s = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log_path.read_text()
    events = [json.loads(line.split("AGRA_EVENT ", 1)[1]) for line in text.splitlines() if "AGRA_EVENT " in line]
    starts = [e["name"] for e in events if e["event"] == "start"]
    exits = {e["name"]: e["code"] for e in events if e["event"] == "exit"}
    assert len(starts) == 4 and set(exits) == set(starts), (starts, exits, text[-4000:])
    assert all(code == 0 for code in exits.values()), f"exit codes {exits}\n{text[-6000:]}"
    assert rc == 0, f"launch returned {rc}\n{text[-3000:]}"
    assert stop_s < 15.0, f"stopping took {stop_s:.1f} s"
    assert all(v >= 0.0 for v in fps)
    bad = [line for line in text.splitlines() if BAD_LOG_LINE.search(line)]
    assert not bad, "\n".join(bad) + "\n----\n" + text[-6000:]
    assert "final checkpoint written" in text, text[-3000:]
    _assert_checkpoint_loads(tmp_path / "home" / ".ros" / "agra_ros" / "policy_agra.pt")


def _assert_checkpoint_loads(path: Path) -> None:
    """The final checkpoint is whole: it passes the node's own loader (format, header, finite weights)."""
    import torch

    from agra_ros.online.checkpoint import CheckpointSpec, load_checkpoint

    header = torch.load(path, map_location="cpu", weights_only=True)
    spec = CheckpointSpec(header["algorithm"], header["obs_dim"], tuple(header["action_nvec"]))
    assert spec.algorithm == "agra"
    load_checkpoint(path, spec)
