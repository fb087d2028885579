"""ros2 launch agra_ros server.launch.py [server_id:=edge1] [detector:=ssd] [run:=requested] [device:=cpu]
[threads:=1] [device_profile:=x86_generic]

Starts perception_server_node on an edge machine (or a laptop) for robots whose policy sends frames to a server
(execution target ``remote``). No camera; the node's topics are absolute (``/agra/remote/request``,
``/agra/remote/result``, ``/agra/remote/server``), so robots in their own namespaces share it. DDS is left as the
shell set it: the robots are on other machines (README "A perception server on an edge machine": ROS_DOMAIN_ID,
ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET, ROS_STATIC_PEERS). The node exiting ends the launch (non-zero exit).

- ``server_id``: the name robots see in announcements and replies; empty: <hostname>:<node name>.
- ``detector``: the robots' detector network (requests for another one are dropped).
- ``run``: ``requested`` (the configuration each request names) or ``full`` (always full).
- ``device``: ``cpu`` or ``cuda``; ``threads``: torch intra-op threads; ``device_profile``: the power model of the
  server's reported energy.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

ARGUMENTS = (
    ("server_id", "", "server name in announcements and replies; empty: <hostname>:<node name>"),
    ("detector", "ssd", "detector network: the robots' own (ssd | synthetic)"),
    ("run", "requested", "requested: the configuration each request names; full: always the full configuration"),
    ("device", "cpu", "cpu | cuda"),
    ("threads", "1", "torch intra-op threads of the detector"),
    ("device_profile", "x86_generic", "device profile (config/devices) of the server's reported energy"),
)


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=d, description=text) for name, d, text in ARGUMENTS]
    params = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS if name != "threads"}
    params["threads"] = ParameterValue(LaunchConfiguration("threads"), value_type=int)
    params["server_id"] = ParameterValue(LaunchConfiguration("server_id"), value_type=str)
    server = Node(
        package="agra_ros",
        executable="perception_server_node",
        name="perception_server",
        parameters=[params],
        output="screen",
        emulate_tty=True,
    )
    stop = RegisterEventHandler(
        OnProcessExit(target_action=server, on_exit=[EmitEvent(event=Shutdown(reason="perception_server exited"))])
    )
    return LaunchDescription([*args, server, stop])
