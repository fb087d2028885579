"""Package checks: colcon sees an ament_cmake package, builds it in a clean workspace (the interfaces in msg/
generated and installed, the Python package, what `ros2 run`/`ros2 launch` need) and runs its tests; the CLI
answers --help."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from colcon_harness import colcon_env, run_colcon

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MSGS = sorted(p.stem for p in (ROOT / "msg").glob("*.msg"))
EXECUTABLES = (
    "agra-ros",
    "camera_source_node",
    "device_monitor_node",
    "perception_node",
    "perception_server_node",
    "policy_node",
    "recorder_node",
    "viewer_node",
)
IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "install",
    "log",
    "runs",
    "__pycache__",
    "*.egg-info",
    ".agents",
    ".pytest_cache",
    ".ruff_cache",
)


def test_package_xml_is_format3_interface_package_with_valid_maintainer():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "agra_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    assert {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"} <= {
        e.text for e in root.findall("buildtool_depend")
    }
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    assert any(e.text == "rosidl_default_runtime" for e in root.findall("exec_depend"))
    email = root.find("maintainer").get("email")
    assert "@" in email and "." in email.split("@")[1]
    assert any(e.text == "python3-pytest" for e in root.findall("test_depend"))
    deps = {e.text for e in root.findall("exec_depend")} | {e.text for e in root.findall("depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "std_msgs"} <= deps
    assert MSGS == [
        "GranularityCatalogue",
        "GranularityCommand",
        "PerceptionFeedback",
        "RemoteRequest",
        "RemoteResult",
        "RemoteServer",
    ], MSGS


def test_cmake_executables_come_from_setup_py_console_scripts():
    """CMakeLists.txt writes lib/agra_ros/<exe> for every console script it finds in setup.py: the pattern it
    reads must match every entry, or an executable would silently be missing on the colcon route."""
    text = (ROOT / "setup.py").read_text()
    entries = re.findall(r'^ *"([A-Za-z0-9_-]+) = (agra_ros[A-Za-z0-9_.]*):main",$', text, flags=re.M)
    assert sorted(name for name, _ in entries) == sorted(EXECUTABLES)


@pytest.mark.slow
def test_colcon_list_build_and_test(tmp_path: Path):
    src = tmp_path / "src" / "agra_ros"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    out = run_colcon(["list"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "agra_ros" in out.stdout and "(ros.ament_cmake)" in out.stdout, out.stdout
    t0 = time.monotonic()
    out = run_colcon(["build", "--base-paths", "src"], tmp_path)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    print(f"colcon build: {time.monotonic() - t0:.1f} s")
    inst = tmp_path / "install" / "agra_ros"
    for exe in EXECUTABLES:
        path = inst / "lib" / "agra_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), f"ros2 run agra_ros {exe} would not find it"
    share = inst / "share" / "agra_ros"
    viewers = ("config/agra.rviz", "config/agra.perspective", "config/foxglove_layout.json")
    for f in ("package.xml", "launch/agra.launch.py", "config/agra.yaml", "config/fastdds.xml", *viewers):
        assert (share / f).is_file(), f
    assert (inst / "share" / "ament_index" / "resource_index" / "packages" / "agra_ros").is_file()
    # the interfaces: definitions, ament index entry, generated Python next to the hand-written modules
    for name in MSGS:
        assert (share / "msg" / f"{name}.msg").is_file(), name
    index = inst / "share" / "ament_index" / "resource_index" / "rosidl_interfaces" / "agra_ros"
    assert {f"msg/{n}.msg" for n in MSGS} <= set(index.read_text().split()), index.read_text()
    site = next(inst.glob("lib/python3*/site-packages/agra_ros"))
    assert (site / "msg" / "__init__.py").is_file() and (site / "nodes" / "perception.py").is_file()
    assert "agra_ros.msg" in (site / "__init__.py").read_text(), "the hand-written __init__.py must win"
    # they import from the install (sourced as a user would), and `ros2 interface show` finds them where it exists
    check = (
        "import agra_ros, agra_ros.msg as m; from agra_ros.ros.interfaces import command_to_msg; "
        f"assert m.__file__.startswith({str(inst)!r}), m.__file__; "
        "print(m.GranularityCommand(levels=[1, 2]).levels.tolist())"
    )
    script = f"source install/setup.bash && {sys.executable} -c {shlex.quote(check)}"
    ros2 = shutil.which("ros2", path=str(BIN))
    if ros2:  # ros2cli: a ROS distro, or ../shared/ros2-launch on a pip venv
        script += f" && {ros2} interface show agra_ros/msg/PerceptionFeedback"
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=colcon_env()
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[1, 2]" in out.stdout, out.stdout
    if ros2:
        assert (
            "float32 detector_energy_per_frame_j" in out.stdout and "GranularityCommand configuration" in out.stdout
        ), out.stdout
    # one ctest per test file; run one
    out = run_colcon(["test", "--base-paths", "src", "--ctest-args", "-R", "test_layering"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    res = run_colcon(["test-result", "--all", "--verbose"], tmp_path)
    assert "0 errors, 0 failures" in res.stdout and " 0 tests" not in res.stdout, res.stdout


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "agra_ros.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for cmd in ("demo", "launch", "bench", "train-detector", "profile"):
        assert cmd in out.stdout


def test_launch_file_names_installed_executables():
    text = (ROOT / "launch" / "agra.launch.py").read_text()
    compile(text, "agra.launch.py", "exec")
    for exe in EXECUTABLES[1:]:
        assert f'"{exe}"' in text
    assert "agra.yaml" in text and "fastdds.xml" in text
