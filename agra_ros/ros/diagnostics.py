"""Status reporting on /diagnostics in the manner of diagnostic_updater, which is not on PyPI.

A :class:`DiagnosticsReporter` is a helper handed a node (not a node subclass). Each check is a callable that
fills a :class:`StatusBuilder`; a test can call a check without spinning anything. Parsing the other way
(DiagnosticArray -> plain dicts) is here too, for the policy node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

# plain ints here (the message constants are one-byte ``bytes``); converted in StatusBuilder.to_msg
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass
class StatusBuilder:
    """Collects one DiagnosticStatus: the worst level wins, messages of that level are joined."""

    name: str
    hardware_id: str = ""
    level: int = OK
    message: str = "OK"
    values: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, level: int, message: str) -> None:
        """Raise the level to ``level`` (never lower it) and set or extend the message."""
        level = int(level)
        if level > self.level:
            self.level, self.message = level, message
        elif level == self.level and level != OK:
            self.message = f"{self.message}; {message}"
        elif level == OK and self.level == OK:
            self.message = message

    def add(self, key: str, value: object) -> None:
        self.values.append((key, _fmt(value)))

    def to_msg(self) -> DiagnosticStatus:
        return DiagnosticStatus(
            level=bytes([self.level]),
            name=self.name,
            message=self.message,
            hardware_id=self.hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in self.values],
        )


def status_from_dict(d: Mapping[str, object]) -> DiagnosticStatus:
    """Build a status from the plain dict form the core produces (name, level, message, hardware_id, values)."""
    b = StatusBuilder(str(d["name"]), str(d.get("hardware_id", "")))
    b.level, b.message = int(d.get("level", OK)), str(d.get("message", ""))
    for k, v in d.get("values", []):  # type: ignore[union-attr]
        b.add(str(k), v)
    return b.to_msg()


class DiagnosticsReporter:
    """Publishes the node's checks on /diagnostics every ``period_s``."""

    def __init__(self, node: Node, hardware_id: str, period_s: float = 1.0, topic: str = "/diagnostics") -> None:
        self._node = node
        self.hardware_id = hardware_id
        self._tasks: list[tuple[str, Callable[[StatusBuilder], None]]] = []
        self._pub = node.create_publisher(DiagnosticArray, topic, 10)
        self._timer = node.create_timer(period_s, self.publish)

    def add(self, name: str, task: Callable[[StatusBuilder], None]) -> None:
        """Register a check; ``name`` is prefixed with the node name as diagnostic_updater does."""
        self._tasks.append((f"{self._node.get_name()}: {name}", task))

    def run_all(self) -> list[DiagnosticStatus]:
        out = []
        for name, task in self._tasks:
            b = StatusBuilder(name, self.hardware_id)
            try:
                task(b)
            except Exception as exc:  # a failing check must not take the node down; it reports itself instead
                b.summary(ERROR, f"check failed: {exc!r}")
            out.append(b.to_msg())
        return out

    def publish(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.status = self.run_all()
        self._pub.publish(msg)


def array_to_dicts(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """{status name: {key: value}} of a DiagnosticArray, for code that reads keys rather than messages."""
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}
