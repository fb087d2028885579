"""One validation path for parameters: the same check refuses a bad value at start-up (ParameterError, which
spin_node turns into exit code 2) and at runtime (a failed set with the reason), in process."""

from __future__ import annotations

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from agra_ros.limits import TARGET_FPS_RANGE
from agra_ros.ros import params as ros_params

SPECS = [
    ros_params.ParamSpec("threads", 1, "Threads.", range=(1, 64, 1)),
    ros_params.ParamSpec("target_fps", 30.0, "Target.", range=(*TARGET_FPS_RANGE, 0.0)),
    ros_params.ParamSpec("device", "cpu", "Device.", choices=("cpu", "cuda")),
    ros_params.ParamSpec("learning", True, "Learn."),
]


def _node(*overrides: str) -> tuple[Node, Context]:
    ctx = Context()
    args = ["--ros-args"] + [x for o in overrides for x in ("-p", o)]
    rclpy.init(args=args, context=ctx)
    return Node("params_test", context=ctx), ctx


def _declare(*overrides: str) -> dict:
    node, ctx = _node(*overrides)
    try:
        specs = ros_params.declare(node, SPECS)
        return ros_params.values(node, specs)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("threads:=0", "threads=0 is outside [1, 64]"),
        ("threads:=abc", "threads='abc' is not an integer"),
        ("threads:=2.5", "threads=2.5 is not an integer"),
        ("target_fps:=1000.0", "target_fps=1000.0 is outside [0.5, 240.0]"),
        ("target_fps:=1e-12", "is outside [0.5, 240.0]"),
        ("target_fps:=fast", "target_fps='fast' is not a number"),
        ("target_fps:=.nan", "target_fps must be a number, got NaN"),
        ("device:=tpu", "device='tpu' is not one of cpu, cuda"),
        ("learning:=maybe", "learning='maybe' is not true or false"),
    ],
)
def test_bad_startup_values_raise_one_clear_parameter_error(override, message):
    with pytest.raises(ros_params.ParameterError) as exc:
        _declare(override)
    assert message in str(exc.value)


def test_good_startup_values_and_an_integer_for_a_float_parameter():
    p = _declare("threads:=4", "target_fps:=15", "device:=cuda", "learning:=false")
    assert p == {"threads": 4, "target_fps": 15.0, "device": "cuda", "learning": False}
    assert isinstance(p["target_fps"], float)


def test_runtime_changes_are_refused_by_the_same_check():
    node, ctx = _node()
    try:
        specs = ros_params.declare(node, SPECS)
        ros_params.on_set(node, specs)
        for prm in (
            Parameter("target_fps", value=0.01),
            Parameter("device", value="tpu"),
            Parameter("threads", value=100),
        ):
            res = node.set_parameters([prm])[0]
            # ranges: rclpy refuses from the same spec's descriptor first, in its own words
            assert not res.successful and prm.name in res.reason, (prm.name, res.reason)
            assert ros_params.problem(specs[prm.name], prm.value), prm.name  # the start-up check refuses it too
        assert (
            node.set_parameters([Parameter("device", value="tpu")])[0].reason == "device='tpu' is not one of cpu, cuda"
        )
        assert node.set_parameters([Parameter("target_fps", value=12.0)])[0].successful
        assert node.get_parameter("target_fps").value == 12.0
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_an_integer_for_a_float_parameter_at_runtime_is_that_number():
    """``ros2 param set /policy target_fps 20`` sends an INTEGER: it is taken as 20.0, not refused by type."""
    node, ctx = _node()
    try:
        specs = ros_params.declare(node, SPECS)
        ros_params.on_set(node, specs)
        res = node.set_parameters([Parameter("target_fps", Parameter.Type.INTEGER, 20)])[0]
        assert res.successful, res.reason
        value = node.get_parameter("target_fps").value
        assert value == 20.0 and isinstance(value, float)
        res = node.set_parameters([Parameter("target_fps", Parameter.Type.INTEGER, 1000)])[0]
        assert not res.successful and "target_fps" in res.reason  # the range still holds
        res = node.set_parameters([Parameter("threads", Parameter.Type.DOUBLE, 2.0)])[0]
        assert not res.successful  # only int -> float, never float -> int
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_a_node_own_pre_set_rewrite_composes_with_the_integer_conversion():
    """policy_node rewrites a set request too (an outside target_fps turns follow_trace off). rclpy concatenates what
    its pre-set callbacks return, so a second rclpy callback set every parameter twice (each change logged twice) and
    handed the integer back unconverted (``ros2 param set /policy target_fps 20`` was refused by type): the rewrites
    run composed, in one callback."""
    node, ctx = _node()
    applied: list[list[str]] = []
    try:
        specs = ros_params.declare(node, SPECS)
        ros_params.on_set(node, specs)
        ros_params.add_pre_set(
            node, lambda ps: [*ps, Parameter("learning", Parameter.Type.BOOL, False)] if len(ps) == 1 else ps
        )
        node.add_post_set_parameters_callback(lambda ps: applied.append(sorted(p.name for p in ps)))
        res = node.set_parameters([Parameter("target_fps", Parameter.Type.INTEGER, 20)])[0]
        assert res.successful, res.reason
        assert node.get_parameter("target_fps").value == 20.0
        assert node.get_parameter("learning").value is False
        assert applied == [["learning", "target_fps"]]
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
