"""spin_node: the one ``main`` of every long-running agra_ros node (init, spin, Ctrl-C, start-up errors, exit code).

Ctrl-C is handled here, not by rclpy. rclpy's own handler shuts the context down from the signal, so whatever the
node does afterwards in ``destroy_node`` (stop the learner, write the final checkpoint, log that it did) runs on a
dead context: "Failed to publish log message to rosout", "rcl_trigger_guard_condition() failed", and a second
SIGINT (a terminal sends one to the whole process group, launch sends another to each node) raises
KeyboardInterrupt out of whatever ``destroy_node`` was doing. Instead, SIGINT and SIGTERM only set a flag that the
spin loop checks at least every :data:`POLL_S` seconds; the node is then destroyed with its context still valid,
and further signals during that shutdown are ignored (launch escalates to SIGKILL if a node ever hangs). Errors
with the context already shut down (by someone else) are still taken as the requested shutdown, exit code 0, while
any error with the context valid is a real failure. Getting that right once, here, keeps every node's exit code
honest for ``agra-ros launch`` and ``ros2 launch`` (non-zero exit = a node died).

The executor is rclpy's EventsExecutor unless ``AGRA_EXECUTOR=single`` (see :func:`make_executor` for why).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from agra_ros.ros.params import ParameterError

EXECUTOR_ENV = "AGRA_EXECUTOR"
"""Environment variable that picks the executor: ``single`` for rclpy's SingleThreadedExecutor; unset or anything
else for its EventsExecutor."""


def make_executor() -> Executor:
    """The executor every node spins in.

    rclpy's EventsExecutor (``rclpy.experimental``, a C++ event queue) by default, because the
    SingleThreadedExecutor rebuilds its wait set in Python on every wake-up, for every timer, subscription and QoS
    event handler of the node: measured with the SSD at 5 FPS while the policy offloaded (py-spy and psutil, this
    2-core VM), that was most of perception's and policy_node's own CPU, 9.6 % and 4.8 % of a core, against 3.5 %
    and 2.4 % with the EventsExecutor. On a robot that is energy: the robot's energy per frame while offloading
    fell from 0.46x to 0.35x local. ``AGRA_EXECUTOR=single`` (or an rclpy without the EventsExecutor) keeps the
    SingleThreadedExecutor.
    """
    if os.environ.get(EXECUTOR_ENV, "") != "single":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:  # an older rclpy: the classic executor does the same job at more CPU
            return SingleThreadedExecutor()
        return EventsExecutor()
    return SingleThreadedExecutor()


STARTUP_EXIT_CODE = 2
"""Exit code of a node that cannot start with its settings (bad path, profile, weights, device)."""

POLL_S = 0.1
"""Longest wait of the spin loop between checks of the stop flag (a signal handler runs only between waits)."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(restore: bool = True) -> Iterator[threading.Event]:
    """While inside: SIGINT and SIGTERM set the yielded event instead of raising; the first one asks for the stop,
    later ones (the terminal's and launch's copies, a second Ctrl-C) are ignored. On exit the previous handlers come
    back, or with ``restore=False`` both signals stay ignored: a process on its way out (threads joining, the
    interpreter finalising) must not die of a late copy with exit code -2. Only the main thread can install
    handlers; elsewhere the event is never set by a signal."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if restore else signal.SIG_IGN)


def spin_node(
    name: str,
    factory: Callable[[], Node],
    startup_errors: tuple[type[BaseException], ...] = (),
    args: list[str] | None = None,
) -> None:
    """Create the node with ``factory`` and spin it until Ctrl-C, external shutdown or ``node.done`` (a node
    that ends by itself, e.g. a recording of a set duration).

    ``startup_errors`` raised while the node is created or spun are logged once as fatal and end the process
    with :data:`STARTUP_EXIT_CODE`, not a traceback; so does a :class:`ParameterError` (a start-up parameter
    outside its spec) from any node. ``node.destroy_node()`` always runs, so a node that has
    something to finish (a checkpoint, a worker) does it in its ``destroy_node``. SIGINT and SIGTERM stop the
    spin (see :func:`stop_on_signals`) and stay ignored after it returns: the process is about to exit.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node: Node | None = None
    executor: Executor | None = None
    code = 0
    with stop_on_signals(restore=False) as stop:
        try:
            node = factory()
            executor = make_executor()
            executor.add_node(node)
            while not stop.is_set() and rclpy.ok() and not getattr(node, "done", False):
                executor.spin_once(timeout_sec=POLL_S)
        except (ParameterError, *startup_errors) as exc:
            rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
            code = STARTUP_EXIT_CODE
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            if node is None or node.context.ok():  # a failure while the context still lives is a real one
                raise
        finally:
            if executor is not None:
                executor.shutdown(timeout_sec=POLL_S)
            if node is not None:
                node.destroy_node()  # context still valid: its last log lines and final writes go through
            rclpy.try_shutdown()
    if code:
        raise SystemExit(code)


def spin_probe(factory: Callable[[], Any], give_up: Callable[[Any], str | None], args: list[str] | None = None) -> None:
    """Spin a measuring probe until ``node.done`` or ``give_up(node)`` names a reason (logged as an error), then
    print ``node.stats()`` as one JSON line (and write it to the ``out_json`` parameter's file, when set).

    The statistics are printed however the probe ends (done, gave up, Ctrl-C), because a benchmark that
    started the probe reads them from its output. Shutdown errors are treated as in :func:`spin_node`.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    with stop_on_signals(restore=False) as stop:
        try:
            node = factory()
            while rclpy.ok() and not node.done and not stop.is_set():
                rclpy.spin_once(node, timeout_sec=POLL_S)
                reason = give_up(node)
                if reason:
                    node.get_logger().error(reason)
                    break
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            if node is None or node.context.ok():
                raise
        finally:
            if node is not None:
                line = json.dumps(node.stats())
                print(line, flush=True)
                if node.p["out_json"]:
                    Path(node.p["out_json"]).write_text(line + "\n")
                node.destroy_node()
            rclpy.try_shutdown()
