"""ros2 launch agra_ros agra.launch.py [camera:=video|synthetic|none] [image_topic:=/camera/image_raw]
[namespace:=robot1] [device_profile:=auto] [algorithm:=agra] [target_fps:=20.0] [trace:=auto] [localhost_only:=false]

The same graph as `agra-ros launch` (both build it from agra_ros.launcher.graph_spec, the arguments' one
definition): each node in its own process, parameters from
config/agra.yaml (its `/**/<node>` keys apply under any namespace), the launch arguments on top. Any node exiting
ends the launch (non-zero exit), and Ctrl-C stops every node.

- ``camera``: ``video`` (the real clips of the trace; the synthetic scene, with a warning, where none are
  fetched) or ``synthetic`` (the project's scene generator) start camera_source; ``none`` starts none, for a robot
  whose own camera driver publishes the images. ``trace:=auto`` plays ``video`` for the video camera and
  ``default`` for the synthetic one.
- ``image_topic``: the topic perception and policy read images from (and the one camera_source publishes on),
  e.g. ``/camera/color/image_raw``; default ``image_raw`` in the launch namespace.
- ``namespace``: pushed onto every node (``/diagnostics`` stays global).
- ``device_profile``: device profile of the modelled power and heat and of the energy model (the
  ``device_profile`` parameter of device_monitor, perception and policy); ``auto`` picks by CPU architecture
  (x86_generic, jetson_orin_nano on ARM). Real sensors (jtop, NVML, RAPL) win over it where present.
- ``target_fps``: the policy's target FPS parameter; empty keeps config/agra.yaml's and lets the camera's trace
  drive it. When given, it wins: the policy's ``follow_trace`` starts false, so the trace's target is ignored
  (``ros2 param set /policy follow_trace true`` follows it again).
- ``localhost_only``: ``true`` keeps DDS discovery on this host and loads the project's Fast DDS profile (shared
  memory + 127.0.0.1: fast large images, invisible to other machines). ``false`` (default) leaves the DDS
  environment as the shell set it, so rviz, rqt or Foxglove on another machine see the topics.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from agra_ros.launcher import ARGUMENTS, graph_spec
from launch import LaunchDescription

EXECUTABLES = {
    "camera_source": "camera_source_node",
    "device_monitor": "device_monitor_node",
    "perception": "perception_node",
    "perception_server": "perception_server_node",  # launch/server.launch.py starts it (an edge machine)
    "policy": "policy_node",
    "recorder": "recorder_node",
    "viewer": "viewer_node",
}


def _environment(share: str) -> list:
    """DDS settings for localhost_only:=true: discovery on this host and the shared-memory Fast DDS profile.
    Values the shell already set win."""
    profile = os.path.join(share, "config", "fastdds.xml")
    env = [
        SetEnvironmentVariable(
            "ROS_AUTOMATIC_DISCOVERY_RANGE", os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        )
    ]
    # Fast DDS 3 (Kilted+) reads FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 2.x (Humble, Jazzy) FASTRTPS_DEFAULT_PROFILES_FILE
    for var in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        env.append(SetEnvironmentVariable(var, os.environ.get(var, profile)))
    return env


def _graph(context, share: str) -> list:
    localhost_only, spec = graph_spec({name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS})
    namespace = LaunchConfiguration("namespace").perform(context).strip()
    params = os.path.join(share, "config", "agra.yaml")
    nodes = [
        Node(
            package="agra_ros",
            executable=EXECUTABLES[name],
            name=name,
            namespace=namespace,
            parameters=[params, overrides],
            remappings=remappings,
            output="screen",
            emulate_tty=True,
        )
        for name, overrides, remappings in spec
    ]
    stop_on_exit = [
        RegisterEventHandler(
            OnProcessExit(target_action=n, on_exit=[EmitEvent(event=Shutdown(reason=f"{name} exited"))])
        )
        for (name, _, _), n in zip(spec, nodes)
    ]
    return [*(_environment(share) if localhost_only else []), *nodes, *stop_on_exit]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("agra_ros")
    args = [DeclareLaunchArgument(name, default_value=d, description=text) for name, d, text in ARGUMENTS]
    return LaunchDescription([*args, OpaqueFunction(function=_graph, kwargs={"share": share})])
