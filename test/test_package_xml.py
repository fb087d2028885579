"""package.xml declares every third-party import of the package (issue: a node dying on import after `rosdep
install`). Walks every module under agra_ros/ with ast, maps each top-level import name to its rosdep key, and
fails when package.xml lacks the key or an import has no entry in the mapping below."""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "agra_ros"

# import name -> rosdep key. ROS packages are their own keys; Python libraries follow rosdep's python.yaml
# (python3-<debian name>, or python3-<name>-pip where only a pip rule exists). Keys that rosdep's database lacks
# are defined in rosdep/agra_ros.yaml (checked below).
ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "visualization_msgs": "visualization_msgs",
    "vision_msgs": "vision_msgs",
    "geometry_msgs": "geometry_msgs",
    "rcl_interfaces": "rcl_interfaces",
    "ament_index_python": "ament_index_python",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "psutil": "python3-psutil",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "torch": "python3-pytorch-pip",
    "torchvision": "python3-torchvision-pip",
    "gymnasium": "python3-gymnasium-pip",
    "torchmetrics": "python3-torchmetrics-pip",
    "rich": "python3-rich",
    "rosbags": "python3-rosbags-pip",
    "foxglove": "python3-foxglove-sdk-pip",
}
# Imported only inside a guard or a function that is not on a node's path: the package runs without them.
OPTIONAL = {
    "jtop": "jetson-stats: the Jetson rails backend, tried first where installed",
    "pynvml": "nvidia-ml-py: the NVML backend on machines with an NVIDIA driver",
    "cv_bridge": "used where a ROS distro provides it; numpy conversion otherwise",
    "stable_baselines3": "the PPO-vs-SB3 benchmark only (dev extra)",
    "compression": "Python 3.14's standard zstd (record/salvage.py, a recording cut inside a zstd chunk); "
    "backports.zstd, rosbags' own dependency, before 3.14",
    "backports": "backports.zstd, installed with rosbags (record/salvage.py's zstd chunks before Python 3.14)",
    "lz4": "lz4 chunks of a recording cut short (record/salvage.py); rosbags' own dependency where it writes lz4",
    "tflite": "flatbuffer reader for converting the TFLite SSD into torch weights (detectors/ssd/tflite_import.py); "
    "needs a key in package.xml and rosdep/agra_ros.yaml if perception ever imports it at run time",
}
# Not imported by agra_ros itself but needed at run time by an import above.
INDIRECT = {"python3-pycocotools-pip": "torchmetrics' MeanAveragePrecision backend (detectors/synthetic/evaluate.py)"}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level import name -> modules importing it, for every absolute import of a non-stdlib module."""
    found: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "agra_ros" and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def declared_keys() -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.findall(tag)}


def test_walk_finds_the_known_imports():
    found = third_party_imports()
    assert {"rclpy", "torch", "gymnasium", "numpy", "cv2"} <= set(found)


def test_every_third_party_import_has_its_rosdep_key_in_package_xml():
    declared = declared_keys()
    unknown = {n: sorted(m) for n, m in third_party_imports().items() if n not in ROSDEP_KEYS and n not in OPTIONAL}
    assert not unknown, f"imports without a rosdep key in ROSDEP_KEYS (or a reason in OPTIONAL): {unknown}"
    missing = {n: ROSDEP_KEYS[n] for n in third_party_imports() if n in ROSDEP_KEYS and ROSDEP_KEYS[n] not in declared}
    assert not missing, f"package.xml lacks <exec_depend> for: {missing}"
    for key in INDIRECT:
        assert key in declared, key


def test_optional_imports_are_guarded():
    """An optional import sits inside a try or a function body, never at a module's top level."""
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in OPTIONAL]
    assert not offenders, offenders


def test_keys_outside_rosdep_database_are_defined_by_the_package():
    """Keys ending in -pip that rosdep's python.yaml lacks (all but torch's) have a rule in rosdep/agra_ros.yaml."""
    rules = yaml.safe_load((ROOT / "rosdep" / "agra_ros.yaml").read_text())
    upstream = {"python3-pytorch-pip"}
    local = {k for k in declared_keys() if k.endswith("-pip") and k not in upstream} | {"python3-rich"}
    assert local <= set(rules), sorted(local - set(rules))
    for key in local:
        for os_name in ("debian", "ubuntu"):
            assert os_name in rules[key], (key, os_name)
