"""launch/server.launch.py: its arguments reach perception_server_node as typed parameters (built with launch's own
context, nothing started). Needs launch and launch_ros (a ROS distro, or ../shared/ros2-launch/install.sh)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

pytest.importorskip(
    "launch_ros", reason="launch_ros is not installed (ROS distro, or ../shared/ros2-launch/install.sh)"
)

from launch.actions import DeclareLaunchArgument  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

from launch import LaunchContext  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("server_launch", ROOT / "launch" / "server.launch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_server_launch_starts_the_server_with_its_arguments():
    from agra_ros.nodes.perception_server_params import SPECS

    mod = _module()
    ld = mod.generate_launch_description()
    declared = {a.name: a for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    params = {s.name for s in SPECS}
    assert set(declared) <= params, set(declared) - params  # every argument is a parameter of the node
    (node,) = [a for a in ld.entities if isinstance(a, Node)]
    assert node.node_executable == "perception_server_node" and node.node_package == "agra_ros"
    ctx = LaunchContext()
    for name, a in declared.items():
        ctx.launch_configurations[name] = {"server_id": "edge1", "threads": "2"}.get(name, a.default_value[0].text)
    node._perform_substitutions(ctx)
    (given,) = node._Node__expanded_parameter_arguments  # launch_ros writes dict parameters to a YAML file
    values = yaml.safe_load(Path(given[0]).read_text())["/**"]["ros__parameters"]
    assert values["server_id"] == "edge1" and values["threads"] == 2 and values["run"] == "requested"
