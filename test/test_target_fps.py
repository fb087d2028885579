"""The target FPS over real DDS: one owner (the policy's target_fps parameter, latched on agra/target_fps), a camera
trace that drives it only until someone sets it, and a perception started late that gets it at once."""

from __future__ import annotations

import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from ros_harness import node_process, probe, read_log, wait_for
from std_msgs.msg import Float32

from agra_ros.ros.diagnostics import array_to_dicts
from agra_ros.ros.qos import latched_qos

pytestmark = pytest.mark.ros

TRACE = """name: flip
loop: true
phases:
  - {name: slow, duration_s: 1.5, density: 1, resolution: [96, 64], target_fps: 7}
  - {name: fast, duration_s: 1.5, density: 1, resolution: [96, 64], target_fps: 13}
"""


class Targets:
    """Every value on agra/target_fps, with the time it arrived."""

    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, float]] = []
        node.create_subscription(Float32, "agra/target_fps", self._on, latched_qos())

    def _on(self, msg: Float32) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), float(msg.data)))

    def values(self, since: float = 0.0) -> list[float]:
        with self.lock:
            return [v for t, v in self.seen if t >= since]


def _call(node, srv_type, service: str, request, timeout: float = 20.0):
    client = node.create_client(srv_type, service)
    assert client.wait_for_service(timeout_sec=timeout), f"{service} not available"
    fut = client.call_async(request)
    assert wait_for(fut.done, timeout), f"{service} timed out"
    return fut.result()


def _set(node, **values) -> None:
    req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    results = _call(node, SetParameters, "/policy/set_parameters", req).results
    assert all(r.successful for r in results), [r.reason for r in results]


def _get(node, *names: str) -> list:
    res = _call(node, GetParameters, "/policy/get_parameters", GetParameters.Request(names=list(names)))
    return [parameter_value_to_python(v) for v in res.values]


def _policy_params(tmp_path) -> dict:
    return {"learning": False, "checkpoint_dir": "", "decision_rate_hz": 2.0, "target_fps": 30.0}


def test_param_set_sticks_while_a_trace_runs_and_follow_trace_goes_back(tmp_path):
    trace = tmp_path / "flip.yaml"
    trace.write_text(TRACE)
    camera = {
        "source": "synthetic",
        "fps": 5.0,
        "trace": str(trace),
        "publish_ground_truth": False,
        "reliability": "reliable",
    }
    with (
        node_process("policy", _policy_params(tmp_path), tmp_path) as pol,
        node_process("camera_source", camera, tmp_path) as cam,
        probe("target_probe") as pr,
    ):
        targets = Targets(pr.node)
        # the trace drives the parameter: both phases' targets come out of the policy
        ok = wait_for(lambda: {7.0, 13.0} <= set(targets.values()), 90, period=0.2)
        assert ok, f"{targets.values()}\n{read_log(pol)}\n{read_log(cam)}"
        assert _get(pr.node, "target_fps", "follow_trace")[1] is True

        t_set = time.monotonic()
        _set(pr.node, target_fps=20.0)  # what `ros2 param set /policy target_fps 20.0` does
        assert wait_for(lambda: 20.0 in targets.values(t_set), 10), targets.values()
        time.sleep(4.0)  # at least two phase changes of the trace
        after = targets.values(t_set)
        assert set(after[after.index(20.0) :]) == {20.0}, f"the trace overrode the user's target: {after}"
        assert _get(pr.node, "target_fps", "follow_trace") == [20.0, False]
        assert cam.poll() is None and pol.poll() is None

        _set(pr.node, follow_trace=True)  # back to the trace
        t_back = time.monotonic()
        assert wait_for(lambda: {7.0, 13.0} & set(targets.values(t_back)), 10), targets.values(t_back)
    log = read_log(pol)
    assert "target FPS set to 20.00 (parameter)" in log and "(trace)" in log, log


def test_a_perception_started_late_gets_the_current_target_at_once(tmp_path):
    perception = {"detector": "synthetic", "shadow_share": 0.0, "threads": 1}
    with node_process("policy", _policy_params(tmp_path), tmp_path) as pol, probe("late_probe") as pr:
        _set(pr.node, target_fps=17.5)
        seen = Targets(pr.node)  # a late subscriber of our own first
        assert wait_for(lambda: seen.values() == [17.5], 10), seen.values()
        first_status: list[float] = []
        status: dict[str, str] = {}

        def on_diag(msg: DiagnosticArray) -> None:
            d = array_to_dicts(msg).get("perception: perception")
            if d is not None:
                first_status.append(time.monotonic())
                status.update(d)

        pr.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 20)
        time.sleep(3.0)  # the policy's last announcement is long past: only the latched sample can reach perception
        with node_process("perception", perception, tmp_path) as per:
            assert wait_for(lambda: bool(first_status), 120), read_log(per)
            got = wait_for(lambda: status.get("target_fps") == "17.5", 5.0, period=0.1)
            assert got, f"perception's target {status.get('target_fps')!r}\n{read_log(per)}"
            assert per.poll() is None and pol.poll() is None
