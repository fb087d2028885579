"""ros2 launch agra_ros agra.launch.py [trace:=default] [profile:=x86_generic] [algorithm:=agra]

The same graph as `agra-ros launch` / `agra-ros demo`: each node in its own process, parameters from
config/agra.yaml, the project's Fast DDS profile and localhost-only discovery. Any node exiting ends the launch
(non-zero exit), and Ctrl-C stops every node.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

NODES = ("camera_source", "device_monitor", "perception", "policy")
EXECUTABLES = {
    "camera_source": "camera_source_node",
    "device_monitor": "device_monitor_node",
    "perception": "perception_node",
    "policy": "policy_node",
}


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("agra_ros")
    params = os.path.join(share, "config", "agra.yaml")
    args = [
        DeclareLaunchArgument("trace", default_value="default", description="workload trace (config/traces)"),
        DeclareLaunchArgument("profile", default_value="x86_generic", description="device profile (config/devices)"),
        DeclareLaunchArgument("algorithm", default_value="agra", description="agra | a2c | bandit | rule | static"),
    ]
    env = [
        SetEnvironmentVariable(
            "ROS_AUTOMATIC_DISCOVERY_RANGE", os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        ),
    ]
    # Fast DDS 3 (Kilted+) reads FASTDDS_DEFAULT_PROFILES_FILE, Fast DDS 2.x (Humble, Jazzy) FASTRTPS_DEFAULT_PROFILES_FILE
    profile = os.path.join(share, "config", "fastdds.xml")
    for var in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        env.append(SetEnvironmentVariable(var, os.environ.get(var, profile)))
    overrides = {
        "camera_source": {"trace": LaunchConfiguration("trace")},
        "device_monitor": {"device_profile": LaunchConfiguration("profile")},
        "perception": {"power_profile": LaunchConfiguration("profile")},
        "policy": {"algorithm": LaunchConfiguration("algorithm"), "device_profile": LaunchConfiguration("profile")},
    }
    nodes = [
        Node(
            package="agra_ros",
            executable=EXECUTABLES[name],
            name=name,
            parameters=[params, overrides[name]],
            output="screen",
            emulate_tty=True,
        )
        for name in NODES
    ]
    stop_on_exit = [
        RegisterEventHandler(
            OnProcessExit(target_action=n, on_exit=[EmitEvent(event=Shutdown(reason=f"{name} exited"))])
        )
        for name, n in zip(NODES, nodes)
    ]
    return LaunchDescription([*args, *env, *nodes, *stop_on_exit])
