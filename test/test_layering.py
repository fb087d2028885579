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


def _agra_imports(path: Path) -> set[str]:
    """Modules of this package a file imports, at any depth (lazy imports inside functions count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _package_files(name: str) -> list[Path]:
    return sorted((PKG / name).rglob("*.py"))


def test_core_imports_neither_gymnasium_nor_the_simulator_nor_the_policy():
    """The contract between simulator and robot (observation, reward, device, tables) sits below both."""
    offenders = [
        f"{p.relative_to(PKG.parent)} imports {m}"
        for p in _package_files("core")
        for m in _agra_imports(p)
        if m.split(".")[0] == "gymnasium" or m.startswith(("agra_ros.sim", "agra_ros.policy", "agra_ros.online"))
    ]
    assert not offenders, "\n".join(offenders)


def test_policy_and_sim_do_not_import_each_other():
    offenders = [
        f"{p.relative_to(PKG.parent)} imports {m}"
        for pkg, other in (("policy", "agra_ros.sim"), ("sim", "agra_ros.policy"))
        for p in _package_files(pkg)
        for m in _agra_imports(p)
        if m.startswith(other)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_robot_side_does_not_load_gymnasium_or_the_simulator():
    """The on-robot agent and learner (what policy_node runs) never load the simulator's gym stack."""
    code = (
        "import sys\n"
        "import agra_ros.online, agra_ros.online.agent, agra_ros.online.learner_process, agra_ros.policy.registry\n"
        "try:\n"
        "    import agra_ros.nodes.policy\n"
        "except ImportError:  # no ROS 2 here: the core modules above are what the node adds\n"
        "    pass\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'gymnasium' or m.startswith('agra_ros.sim'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "", f"the robot side loaded: {out.stdout.strip()}"


LAYERS: tuple[tuple[str, ...], ...] = (
    ("msg",),  # generated interfaces, imported by ros/ and nodes/ only (test_core_has_no_ros_imports_in_source)
    ("paths",),
    ("limits", "feedback", "bad_inputs", "runtime_env", "assets", "progress"),
    ("granularity", "workload", "viewer"),
    ("tables",),
    ("device",),
    ("perception",),
    ("detectors",),
    ("core",),
    ("policy", "sim"),
    ("online", "results"),
    ("record",),
    ("training",),
    ("launcher",),
    ("demo",),
    ("bench",),
    ("ros",),
    ("nodes",),
    ("cli",),  # the command line on top: it starts demos, benches and nodes (agra-ros view)
)
"""The package's layers, bottom first (docs/architecture.md draws the same stack). Every import points down."""

SIBLINGS: dict[tuple[str, str], bool] = {}
"""Imports between two packages of one layer: allowed (True) or not (False); unlisted pairs are refused."""


def _rank() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_package_has_a_layer():
    rank = _rank()
    tops = {_top(p) for p in PKG.rglob("*.py")} - {"__init__"}
    assert tops <= set(rank), f"packages without a layer in LAYERS: {sorted(tops - set(rank))}"


def test_imports_point_down_the_layers():
    """No import runs back up (lazy imports inside functions count): the architecture is a stack, not a web."""
    rank = _rank()
    offenders = []
    for path in PKG.rglob("*.py"):
        src = _top(path)
        if src == "__init__":
            continue
        for mod in _agra_imports(path):
            parts = mod.split(".")
            if parts[0] != "agra_ros" or len(parts) < 2 or parts[1] == src:
                continue
            dst = parts[1]
            if dst not in rank:
                continue
            same = rank[dst] == rank[src]
            if rank[dst] > rank[src] or (same and not SIBLINGS.get((src, dst), False)):
                offenders.append(f"{path.relative_to(PKG.parent)} ({src}) imports {mod} ({dst})")
    assert not offenders, "imports that run up the layers:\n" + "\n".join(sorted(offenders))


def test_each_detector_network_stands_alone():
    """A detector package (detectors/<name>/) imports the shared detector modules, never another network."""
    nets = [p.name for p in (PKG / "detectors").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    offenders = [
        f"{p.relative_to(PKG.parent)} imports {m}"
        for net in nets
        for p in sorted((PKG / "detectors" / net).rglob("*.py"))
        for m in _agra_imports(p)
        for other in nets
        if other != net and m.startswith(f"agra_ros.detectors.{other}")
    ]
    assert not offenders, "\n".join(offenders)


def test_perception_runs_without_the_policy_side():
    """What perception runs (perception/, the perception node) never imports online/ or policy/."""
    files = [*_package_files("perception"), PKG / "nodes" / "perception.py"]
    offenders = [
        f"{p.relative_to(PKG.parent)} imports {m}"
        for p in files
        for m in _agra_imports(p)
        if m.startswith(("agra_ros.online", "agra_ros.policy"))
    ]
    assert not offenders, "\n".join(offenders)


def test_no_module_is_over_450_lines():
    long = {
        str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long, f"modules over 450 lines (split them by job): {long}"
