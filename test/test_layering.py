"""The core never imports rclpy or ROS message packages, the package's own generated agra_ros.msg included
(docs/architecture.md: only nodes/ and ros/ may)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "agra_ros"
ROS_MODULES = {
    "rclpy",
    "std_msgs",
    "sensor_msgs",
    "diagnostic_msgs",
    "visualization_msgs",
    "geometry_msgs",
    "vision_msgs",
    "rcl_interfaces",
    "builtin_interfaces",
    "launch",
    "launch_ros",
}
OWN_MESSAGES = "agra_ros.msg"
"""The package's generated interfaces: ROS messages too, converted in agra_ros/ros/interfaces.py."""


def _is_ros(module: str) -> bool:
    return module.split(".")[0] in ROS_MODULES or module == OWN_MESSAGES or module.startswith(OWN_MESSAGES + ".")


def core_files() -> list[Path]:
    return [p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] not in ("nodes", "ros")]


def test_core_has_no_ros_imports_in_source():
    offenders = []
    for path in core_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if _is_ros(n):
                    offenders.append(f"{path.relative_to(PKG.parent)}:{node.lineno} imports {n}")
    assert not offenders, "core modules import ROS:\n" + "\n".join(offenders)


def test_importing_the_core_does_not_load_rclpy():
    mods = sorted(
        ".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__") for p in core_files()
    )
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in %r or m.startswith(%r))\n"
        "print(','.join(bad))\n" % (sorted(ROS_MODULES), OWN_MESSAGES)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"
