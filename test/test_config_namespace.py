"""config/agra.yaml applies under any namespace: its keys are `/**/<node>`, and a node started with
`__ns:=/robot1` and the file gets the file's values (a plain `camera_source:` key would be ignored there)."""

from __future__ import annotations

import pytest
import yaml
from rcl_interfaces.srv import GetParameters
from ros_harness import node_process, probe, read_log, wait_for

from agra_ros.launcher import GRAPH
from agra_ros.paths import config_file

PARAMS = config_file("agra.yaml")


def test_every_key_matches_any_namespace():
    raw = yaml.safe_load(PARAMS.read_text())
    assert sorted(raw) == sorted(f"/**/{n}" for n in GRAPH)
    for key, body in raw.items():
        assert set(body) == {"ros__parameters"}, key


def _get(node, target: str, names: list[str], timeout: float = 30.0) -> list:
    client = node.create_client(GetParameters, f"{target}/get_parameters")
    assert client.wait_for_service(timeout_sec=timeout), f"{target}/get_parameters not available"
    fut = client.call_async(GetParameters.Request(names=names))
    assert wait_for(fut.done, timeout), "get_parameters timed out"
    return fut.result().values


@pytest.mark.ros
def test_namespaced_node_reads_the_params_file(tmp_path):
    expected = yaml.safe_load(PARAMS.read_text())["/**/camera_source"]["ros__parameters"]
    assert expected["trace"] == "video" and expected["frame_id"] == "camera", "the YAML changed: pick other values"
    ros_args = ("-r", "__ns:=/robot1", "--params-file", str(PARAMS))
    # a low rate and small synthetic frames keep the node light (and need no fetched video); the -p values come
    # after the file and override it
    params = {"fps": 2.0, "width": 64, "height": 48, "source": "synthetic"}
    with node_process("camera_source", params, tmp_path, ros_args=ros_args) as proc, probe("ns_probe") as pr:
        values = _get(pr.node, "/robot1/camera_source", ["trace", "frame_id", "fps", "publish_ground_truth"])
        got = [values[0].string_value, values[1].string_value, values[2].double_value, values[3].bool_value]
        assert got == ["video", "camera", 2.0, True], got + [read_log(proc)]
        names = pr.node.get_node_names_and_namespaces()
        assert ("camera_source", "/robot1") in names, names


def test_the_config_repeats_no_limit_differently():
    """Thermal limits and the accuracy floor are defined once (agra_ros/limits.py); the shipped YAML shows them
    for users to edit, with the same values, so the file and the code cannot tell two stories."""
    from agra_ros import limits

    policy = yaml.safe_load(PARAMS.read_text())["/**/policy"]["ros__parameters"]
    assert policy["critical_temp_c"] == limits.CRITICAL_TEMP_C
    assert policy["recover_margin_c"] == limits.RECOVER_MARGIN_C
    assert policy["accuracy_floor"] == limits.ACCURACY_FLOOR
