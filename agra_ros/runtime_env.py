"""Environment for every process of the graph: keep DDS on this machine and load the project's Fast DDS profile.

Core module (no rclpy): the launcher, the CLI and the tests call it before any ROS process starts, because the
RMW reads these variables once at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from agra_ros.paths import config_file

FASTDDS_PROFILE = "fastdds.xml"


def ros_environment(
    domain_id: int | None = None, base: Mapping[str, str] | None = None, localhost_only: bool = True
) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with the DDS settings agra_ros relies on.

    ``localhost_only`` (the demo, the benches, the tests) keeps discovery on this host and loads the project's
    Fast DDS profile; without it (``agra-ros launch`` by default, like ``ros2 launch``) DDS stays as the shell set
    it, so viewers on other machines see the graph. Values the user already set win, except ``domain_id`` when
    given explicitly (tests use one per worker).
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    profile = config_file(FASTDDS_PROFILE)
    if localhost_only:
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if localhost_only and profile.is_file():
        # Fast DDS 3 (Kilted and later) reads FASTDDS_..., Fast DDS 2.x (Humble, Jazzy) reads FASTRTPS_...
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", env["FASTDDS_DEFAULT_PROFILES_FILE"])
    if domain_id is not None:
        if not 0 <= domain_id <= 232:
            raise ValueError(f"ROS_DOMAIN_ID must be in 0..232, got {domain_id}")
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def apply_ros_environment(domain_id: int | None = None) -> None:
    """Set :func:`ros_environment` on this process (call before ``rclpy.init``)."""
    os.environ.update(ros_environment(domain_id))
