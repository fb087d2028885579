"""perception_server_node's parameters (the README's parameter table is printed from them: agra_ros.ros.param_table)."""

from __future__ import annotations

from agra_ros.nodes.detector_params import detector_specs
from agra_ros.perception.remote import MAX_REQUEST_BYTES, RUN_MODES
from agra_ros.ros import params as ros_params

SPECS = [
    *detector_specs(),  # the robot's network must run here: the same settings as perception_node's
    ros_params.ParamSpec(
        "server_id",
        "",
        "This server's name in its announcements and replies (robots keep one server by it); empty: "
        "<hostname>:<node name>.",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "run",
        "requested",
        "What runs: requested (the configuration each request names) or full (always the full configuration).",
        choices=RUN_MODES,
    ),
    ros_params.ParamSpec(
        "max_queue", 8, "Requests waiting at most (one per robot; the oldest is dropped).", range=(1, 1000, 1)
    ),
    ros_params.ParamSpec(
        "max_request_mb",
        MAX_REQUEST_BYTES / 2**20,
        "Largest JPEG accepted, in MiB; a larger request is counted and dropped.",
        range=(0.01, 64.0, 0.0),
    ),
    ros_params.ParamSpec(
        "device_profile",
        "x86_generic",
        "Device profile of the power model behind the server's reported energy per request (server_energy_j).",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "announce_period_s", 1.0, "Interval of the agra/remote/server announcements.", range=(0.1, 60.0, 0.0)
    ),
]
