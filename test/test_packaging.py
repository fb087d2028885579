"""Package checks: colcon sees an ament_python package, builds it, installs what `ros2 run`/`ros2 launch` need,
and runs its tests; the CLI answers --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXECUTABLES = ("agra-ros", "camera_source_node", "device_monitor_node", "perception_node", "policy_node")
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


def _colcon(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    colcon = shutil.which("colcon", path=str(BIN))
    if colcon is None:
        pytest.skip("colcon is not installed in this environment (pip install colcon-common-extensions)")
    return subprocess.run([colcon, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_package_xml_is_format3_ament_python_with_valid_maintainer():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "agra_ros"
    assert root.find("export/build_type").text == "ament_python"
    email = root.find("maintainer").get("email")
    assert "@" in email and "." in email.split("@")[1]
    assert any(e.text == "python3-pytest" for e in root.findall("test_depend"))
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "std_msgs"} <= deps
    assert not (ROOT / "msg").exists(), "standard interfaces only: no msg/ folder"


@pytest.mark.slow
def test_colcon_list_build_and_test(tmp_path: Path):
    src = tmp_path / "src" / "agra_ros"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    out = _colcon(["list"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "agra_ros" in out.stdout and "(ros.ament_python)" in out.stdout, out.stdout
    out = _colcon(["build", "--base-paths", "src"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    inst = tmp_path / "install" / "agra_ros"
    for exe in EXECUTABLES:
        assert (inst / "lib" / "agra_ros" / exe).is_file(), f"ros2 run agra_ros {exe} would not find it"
    share = inst / "share" / "agra_ros"
    for f in ("package.xml", "launch/agra.launch.py", "config/agra.yaml", "config/fastdds.xml"):
        assert (share / f).is_file(), f
    assert (inst / "share" / "ament_index" / "resource_index" / "packages" / "agra_ros").is_file()
    out = _colcon(["test", "--base-paths", "src", "--pytest-args", "test/test_layering.py"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    res = _colcon(["test-result", "--all"], tmp_path)
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
