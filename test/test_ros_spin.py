"""spin_node: shutdown-time errors end cleanly, real failures propagate, start-up errors exit 2, SIGINT stops with the
context valid and repeated signals are ignored (in process)."""

from __future__ import annotations

import os
import signal
import time

import pytest
import rclpy
from rclpy.node import Node

from agra_ros.ros.spin import STARTUP_EXIT_CODE, spin_node


class _Raiser(Node):
    """Raises from its first timer callback, optionally after shutting the context down (as Ctrl-C would)."""

    def __init__(self, shut_down_first: bool) -> None:
        super().__init__("spin_test")
        self.destroyed = False
        self._shut = shut_down_first
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        if self._shut:
            rclpy.shutdown()  # the signal handler's doing; the executor's next call then fails
        raise RuntimeError("the given context is not valid")

    def destroy_node(self) -> None:
        self.destroyed = True
        super().destroy_node()


def _run(shut_down_first: bool) -> _Raiser:
    made: list[_Raiser] = []

    def factory() -> _Raiser:
        made.append(_Raiser(shut_down_first))
        return made[0]

    try:
        spin_node("spin_test", factory, args=[])
    finally:
        assert made and made[0].destroyed, "destroy_node must always run"
    return made[0]


def test_an_error_after_the_context_was_shut_down_is_the_requested_shutdown():
    _run(shut_down_first=True)  # returns: exit code 0


def test_an_error_while_the_context_lives_is_a_real_failure():
    with pytest.raises(RuntimeError):
        _run(shut_down_first=False)
    assert not rclpy.ok()


def test_a_startup_error_exits_with_code_2_without_a_traceback():
    class BadSetting(ValueError):
        pass

    def factory() -> Node:
        raise BadSetting("weights file is corrupt")

    with pytest.raises(SystemExit) as exc:
        spin_node("spin_test", factory, (BadSetting,), args=[])
    assert exc.value.code == STARTUP_EXIT_CODE
    assert not rclpy.ok()


class _Interrupted(Node):
    """Gets SIGINT from its first timer callback and again while it shuts down, as a terminal's Ctrl-C under
    launch does (the process group's copy and launch's own)."""

    def __init__(self) -> None:
        super().__init__("spin_sigint_test")
        self.context_ok_in_destroy: bool | None = None
        self.finished_destroy = False
        self.create_timer(0.01, lambda: os.kill(os.getpid(), signal.SIGINT))

    def destroy_node(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # a handler raising KeyboardInterrupt would interrupt this
        self.context_ok_in_destroy = self.context.ok()
        self.get_logger().info("final words")  # goes to rosout: the context is still valid
        self.finished_destroy = True
        super().destroy_node()


def test_sigint_stops_the_node_with_its_context_valid_and_later_signals_are_ignored():
    made: list[_Interrupted] = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        spin_node("spin_test", lambda: made.append(_Interrupted()) or made[0], args=[])  # returns: exit code 0
        assert made[0].finished_destroy and made[0].context_ok_in_destroy
        assert not rclpy.ok()
        # the process is on its way out: a late copy of the signal must not kill it (exit code -2)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_nodes_spin_in_the_events_executor_unless_asked_for_the_classic_one(monkeypatch):
    """The EventsExecutor is what keeps the graph's own CPU low (see make_executor); AGRA_EXECUTOR=single is the
    way back to rclpy's SingleThreadedExecutor."""
    from rclpy.executors import SingleThreadedExecutor

    from agra_ros.ros.spin import EXECUTOR_ENV, make_executor

    rclpy.init(args=[])
    try:
        monkeypatch.delenv(EXECUTOR_ENV, raising=False)
        events = make_executor()
        assert not isinstance(events, SingleThreadedExecutor) and type(events).__name__ == "EventsExecutor"
        events.shutdown(timeout_sec=0.1)
        monkeypatch.setenv(EXECUTOR_ENV, "single")
        classic = make_executor()
        assert isinstance(classic, SingleThreadedExecutor)
        classic.shutdown(timeout_sec=0.1)
    finally:
        rclpy.try_shutdown()
