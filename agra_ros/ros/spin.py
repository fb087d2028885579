"""spin_node: the one ``main`` of every long-running agra_ros node (init, spin, Ctrl-C, start-up errors, exit code).

Why shared: Ctrl-C reaches rclpy's signal handler, which shuts the context down from another thread. What the
executor raises then depends on where it was: KeyboardInterrupt, ExternalShutdownException, or an RCLError from
building the next wait set ("the given context is not valid"). All three are the shutdown that was asked for and
must end the process with code 0, while any error with the context still valid is a real failure. Getting that
right once, here, keeps every node's exit code honest for ``agra-ros launch`` (non-zero exit = a node died).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

STARTUP_EXIT_CODE = 2
"""Exit code of a node that cannot start with its settings (bad path, profile, weights, device)."""


def spin_node(
    name: str,
    factory: Callable[[], Node],
    startup_errors: tuple[type[BaseException], ...] = (),
    args: list[str] | None = None,
) -> None:
    """Create the node with ``factory`` and spin it until Ctrl-C or external shutdown.

    ``startup_errors`` raised while the node is created or spun are logged once as fatal and end the process
    with :data:`STARTUP_EXIT_CODE`, not a traceback. ``node.destroy_node()`` always runs, so a node that has
    something to finish (a checkpoint, a worker) does it in its ``destroy_node``.
    """
    rclpy.init(args=args)
    node: Node | None = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except startup_errors as exc:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        code = STARTUP_EXIT_CODE
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if node is None or node.context.ok():  # a failure while the context still lives is a real one
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        raise SystemExit(code)


def spin_probe(factory: Callable[[], Any], give_up: Callable[[Any], str | None], args: list[str] | None = None) -> None:
    """Spin a measuring probe until ``node.done`` or ``give_up(node)`` names a reason (logged as an error), then
    print ``node.stats()`` as one JSON line (and write it to the ``out_json`` parameter's file, when set).

    The statistics are printed however the probe ends (done, gave up, Ctrl-C), because a benchmark that
    started the probe reads them from its output. Shutdown errors are treated as in :func:`spin_node`.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
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
