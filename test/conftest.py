"""Test harness: every test run keeps ROS traffic on this machine, one ROS_DOMAIN_ID per pytest worker.

Set at import time, before any test imports rclpy, and inherited by every node process a test starts.
"""

from __future__ import annotations

import os
import zlib

from agra_ros.runtime_env import apply_ros_environment


def _domain_id() -> int:
    if "AGRA_TEST_DOMAIN_ID" in os.environ:
        return int(os.environ["AGRA_TEST_DOMAIN_ID"])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    # one block of 8 domains per test run (xdist gives all workers of a run the same uid), so two concurrent runs
    # on one machine are unlikely to share a domain either
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    return 8 + (zlib.crc32(run.encode()) % 26) * 8 + index % 8


os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated on Jazzy: the discovery range below replaces it
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
apply_ros_environment(_domain_id())
os.environ.setdefault("OMP_NUM_THREADS", "1")
