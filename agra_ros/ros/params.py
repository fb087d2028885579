"""Declaring parameters with descriptors (description, range, choices) and validating them in one place.

One check, :func:`problem`, decides whether a value fits its spec (type, NaN, range, choices). It runs on the
start-up values (``--ros-args -p``, a params file) before each parameter is declared, where a bad value raises
:class:`ParameterError` (``spin_node`` turns that into one fatal line and exit code 2, never a traceback), and in
the on-set callback at runtime, where it returns the reason so ``ros2 param set`` shows it. Node-specific and
cross-field rules follow it in the on-set callback. rclpy also enforces FloatingPointRange/IntegerRange itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter


class ParameterError(ValueError):
    """A start-up parameter value that does not fit its spec; the message names the parameter and the rule."""


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


def _type_problem(spec: ParamSpec, value: Any) -> str | None:
    if spec.dynamic_typing or isinstance(spec.default, list):
        return None
    want = type(spec.default)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return None  # an integer for a float parameter is the same number (declare converts it)
    if type(value) is not want:
        names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        return f"{spec.name}={value!r} is not {names.get(want, want.__name__)}"
    return None


def problem(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec`` (type, NaN, range, choices), or None when it does.

    The one check of start-up values (:func:`declare`) and runtime changes (:func:`on_set`)."""
    why = _type_problem(spec, value)
    if why:
        return why
    if isinstance(value, float) and value != value:  # NaN
        return f"{spec.name} must be a number, got NaN"
    if spec.range is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi, _ = spec.range
        if not lo <= value <= hi:
            return f"{spec.name}={value} is outside [{lo}, {hi}]"
    if spec.choices and value not in spec.choices:
        return f"{spec.name}={value!r} is not one of {', '.join(spec.choices)}"
    return None


def declare(node: Node, specs: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    """Declare every spec on ``node`` and return them by name (for :func:`on_set`).

    Start-up values are checked with :func:`problem` first; a bad one raises :class:`ParameterError`."""
    overrides: dict[str, Parameter] = getattr(node, "_parameter_overrides", {})
    out = {}
    for s in specs:
        given = overrides.get(s.name)
        if given is not None and given.type_ != Parameter.Type.NOT_SET:
            value = given.value
            if isinstance(s.default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                overrides[s.name] = Parameter(s.name, Parameter.Type.DOUBLE, value)
            why = problem(s, value)
            if why:
                raise ParameterError(why)
        try:
            node.declare_parameter(s.name, s.default, _descriptor(s))
        except ParameterException as exc:  # a rule rclpy knows and the check above missed: its own words
            raise ParameterError(f"{s.name}: {exc}") from None
        out[s.name] = s
    _accept_integers_for_floats(node, out)
    return out


def _accept_integers_for_floats(node: Node, specs: dict[str, ParamSpec]) -> None:
    """At runtime an integer given to a floating-point parameter is that number as a double.

    rclpy refuses ``ros2 param set /policy target_fps 20`` ("expected Type.DOUBLE got Type.INTEGER") before any
    on-set callback runs; a pre-set callback runs first and may rewrite the list, so the conversion lives there.
    Start-up values (``-p``, YAML, launch arguments) are converted in :func:`declare`."""
    floats = {name for name, s in specs.items() if isinstance(s.default, float) and not s.dynamic_typing}
    if not floats:
        return
    if not hasattr(node, "_agra_float_params"):
        node._agra_float_params = set()
        add_pre_set(  # reads the set at call time: the names added below count too
            node,
            lambda params: [
                Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.name in node._agra_float_params and p.type_ == Parameter.Type.INTEGER
                else p
                for p in params
            ],
        )
    node._agra_float_params |= floats


def add_pre_set(node: Node, rewrite: Callable[[list[Parameter]], list[Parameter]]) -> None:
    """Add a rewrite of the parameters a set request carries, run before validation, after the earlier ones.

    rclpy concatenates what its pre-set callbacks return (each one is given the original list), so two of them
    set every parameter twice, and one's rewrite does not reach the other: an integer ``target_fps`` converted by
    one came back unconverted from the next, and the set was refused. A node therefore gets one rclpy callback
    that composes the rewrites in order."""
    chain: list[Callable[[list[Parameter]], list[Parameter]]] | None = getattr(node, "_agra_pre_set", None)
    if chain is None:
        chain = node._agra_pre_set = []

        def _composed(params: list[Parameter]) -> list[Parameter]:
            for fn in chain:
                params = fn(params)
            return params

        node.add_pre_set_parameters_callback(_composed)
    chain.append(rewrite)


def check(specs: dict[str, ParamSpec], params: list[Parameter]) -> SetParametersResult:
    """Refuse a change with the first :func:`problem` of its values, with the reason naming the parameter."""
    for p in params:
        spec = specs.get(p.name)
        why = problem(spec, p.value) if spec is not None else None
        if why:
            return SetParametersResult(successful=False, reason=why)
    return SetParametersResult(successful=True)


def values(node: Node, specs: dict[str, ParamSpec]) -> dict[str, Any]:
    """Current values of the declared specs."""
    return {name: node.get_parameter(name).value for name in specs}


def on_set(
    node: Node,
    specs: dict[str, ParamSpec],
    extra: Callable[[list[Parameter]], SetParametersResult] | None = None,
) -> None:
    """Install the validation callback: :func:`check` first, then the node's own cross-field checks."""

    def _cb(params: list[Parameter]) -> SetParametersResult:
        res = check(specs, params)
        if res.successful and extra is not None:
            res = extra(params)
        return res

    node.add_on_set_parameters_callback(_cb)
