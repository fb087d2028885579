"""Running colcon from a test: the venv's colcon, with the environment an ament_cmake build needs.

agra_ros is an ament_cmake package (its interfaces are generated), so colcon runs CMake, which finds ament_cmake and
the rosidl generators under the prefixes in AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH and through the `bin` folders on
PATH, and builds the Python extension modules for the first `python3` it finds. In a pip venv nothing is sourced:
the venv is that prefix and its interpreter is the one to build for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def colcon_env() -> dict[str, str]:
    """This environment, plus the venv as a ROS prefix and its bin folder first on PATH (a no-op with a sourced
    distro, whose own prefixes are already set)."""
    env = os.environ.copy()
    if sys.prefix != sys.base_prefix:  # a venv: the ROS wheels live in it
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = sys.prefix
        for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
            parts = [p for p in env.get(var, "").split(os.pathsep) if p]
            if sys.prefix not in parts:
                env[var] = os.pathsep.join([*parts, sys.prefix])
    return env


def run_colcon(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """``colcon ARGS`` in ``cwd``; skips the test where colcon is not installed."""
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed in this environment (pip install colcon-common-extensions)")
    return subprocess.run([colcon, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=colcon_env())
