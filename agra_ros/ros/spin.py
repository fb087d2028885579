"""spin_node: the one ``main`` of every long-running agra_ros node (init, spin, Ctrl-C, start-up errors, exit code).

Why shared: Ctrl-C reaches rclpy's signal handler, which shuts the context down from another thread. What the
executor raises then depends on where it was: KeyboardInterrupt, ExternalShutdownException, or an RCLError from
building the next wait set ("the given context is not valid"). All three are the shutdown that was asked for and
must end the process with code 0, while any error with the context still valid is a real failure. Getting that
right once, here, keeps every node's exit code honest for ``agra-ros launch`` (non-zero exit = a node died).
"""

from __future__ import annotations

from collections.abc import Callable

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
