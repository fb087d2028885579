"""Declaring parameters with descriptors (description, range, choices) and validating them in one place.

rclpy enforces FloatingPointRange/IntegerRange itself on every set; string choices and cross-field rules are
checked here in the on-set callback, which returns the reason so ``ros2 param set`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, what it does, and what values it accepts."""

    name: str
    default: Any
    description: str
    range: tuple[float, float, float] | None = None
    """(from, to, step) inclusive; step 0 means continuous. Integer parameters get an IntegerRange."""
    choices: tuple[str, ...] | None = None
    read_only: bool = False
    dynamic_typing: bool = False


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    desc = spec.description
    if spec.choices:
        desc += f" One of: {', '.join(spec.choices)}."
    d = ParameterDescriptor(description=desc, read_only=spec.read_only, dynamic_typing=spec.dynamic_typing)
    if spec.range is not None:
        lo, hi, step = spec.range
        if isinstance(spec.default, bool):
            raise TypeError(f"{spec.name}: a bool parameter cannot have a range")
        if isinstance(spec.default, int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(step))]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=float(step))]
        d.additional_constraints = f"range [{lo}, {hi}]"
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    return d


def declare(node: Node, specs: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    """Declare every spec on ``node`` and return them by name (for :func:`check_choices`)."""
    out = {}
    for s in specs:
        node.declare_parameter(s.name, s.default, _descriptor(s))
        out[s.name] = s
    return out


def check_choices(specs: dict[str, ParamSpec], params: list[Parameter]) -> SetParametersResult:
    """Reject values outside a spec's choices, and NaN/inf floats, with a reason naming the parameter."""
    for p in params:
        spec = specs.get(p.name)
        if spec is None:
            continue
        if spec.choices and p.value not in spec.choices:
            return SetParametersResult(
                successful=False, reason=f"{p.name}={p.value!r} is not one of {', '.join(spec.choices)}"
            )
        if isinstance(p.value, float) and p.value != p.value:  # NaN
            return SetParametersResult(successful=False, reason=f"{p.name} must be a number, got NaN")
        if spec.range is not None and isinstance(p.value, (int, float)) and not isinstance(p.value, bool):
            lo, hi, _ = spec.range
            if not lo <= p.value <= hi:
                return SetParametersResult(successful=False, reason=f"{p.name}={p.value} outside [{lo}, {hi}]")
    return SetParametersResult(successful=True)


def values(node: Node, specs: dict[str, ParamSpec]) -> dict[str, Any]:
    """Current values of the declared specs."""
    return {name: node.get_parameter(name).value for name in specs}


def on_set(
    node: Node,
    specs: dict[str, ParamSpec],
    extra: Callable[[list[Parameter]], SetParametersResult] | None = None,
) -> None:
    """Install the validation callback: choices/ranges first, then the node's own cross-field checks."""

    def _cb(params: list[Parameter]) -> SetParametersResult:
        res = check_choices(specs, params)
        if res.successful and extra is not None:
            res = extra(params)
        return res

    node.add_on_set_parameters_callback(_cb)
