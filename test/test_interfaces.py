"""The package's interfaces (msg/): generated and importable after the README's set-up alone, in step with msg/ and
the README, every field with its unit, conversions to and from the core, and a round trip of each message through
a second process over real DDS."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from agra_ros.feedback import FEEDBACK_FIELDS
from agra_ros.granularity.levels import EXECUTION_TARGETS, LEVELS, RESOLUTION_SCALES, GranularityConfig
from agra_ros.ros import interface_table

ROOT = Path(__file__).resolve().parents[1]
NAMES = (
    "GranularityCatalogue",
    "GranularityCommand",
    "PerceptionFeedback",
    "RemoteRequest",
    "RemoteResult",
    "RemoteServer",
)


# ---------------------------------------------------------------------------------------------- generated types
def test_generated_types_import_after_setup_alone():
    """No sourcing: a fresh interpreter of this environment, with every ROS path variable removed, imports them."""
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH")}
    code = "import agra_ros.msg as m; print(m.__file__); " + "; ".join(f"m.{n}()" for n in NAMES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert out.returncode == 0, out.stderr[-3000:]


def test_ros2_interface_sees_them_in_the_venv():
    """The pip route installs the ament index entry and the .msg files into the venv: with AMENT_PREFIX_PATH=<venv>
    ros2cli finds the definitions (show) and imports the generated Python (proto)."""
    ros2 = Path(sys.executable).parent / "ros2"
    if not (Path(sys.prefix) / "share/ament_index/resource_index/rosidl_interfaces/agra_ros").is_file():
        pytest.skip("the interfaces were not installed into this environment by the pip set-up")
    if not ros2.exists():
        pytest.skip("no ros2 command in this environment (ros2cli: a ROS distro or the launch stack)")
    env = {**os.environ, "AMENT_PREFIX_PATH": sys.prefix}
    for verb, expect in (
        ("show", "float32 detector_energy_per_frame_j"),
        ("proto", "detector_energy_per_frame_j: 0.0"),
    ):
        out = subprocess.run(
            [str(ros2), "interface", verb, "agra_ros/msg/PerceptionFeedback"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert out.returncode == 0 and expect in out.stdout, out.stdout + out.stderr


def test_generated_types_match_msg_folder():
    """A stale generation (msg/ edited, set-up not rerun) shows here rather than as a confusing runtime error."""
    import agra_ros.msg as m

    for name, fields in interface_table.interfaces().items():
        generated = getattr(m, name).get_fields_and_field_types()
        assert list(generated) == [f.name for f in fields if f.constant is None], (name, generated)
        for f in fields:
            if f.constant is not None:
                assert getattr(getattr(m, name), f.name) == int(f.constant), (name, f.name)
    assert sorted(interface_table.interfaces()) == sorted(NAMES)


def test_every_field_is_commented_and_plain_fields_carry_a_unit():
    for name, fields in interface_table.interfaces().items():
        for f in fields:
            assert f.comment, f"{name}.{f.name} has no comment"
            if f.needs_unit:
                assert f.unit, f"{name}.{f.name} ({f.type}) has no [unit] in its comment"


def test_readme_interface_table_matches_msg():
    text = (ROOT / "README.md").read_text()
    inside = text.split(interface_table.BEGIN, 1)[1].split(interface_table.END, 1)[0].strip()
    assert inside == interface_table.table().strip(), (
        "README interface table is stale: python -m agra_ros.ros.interface_table --write README.md"
    )
    for name in NAMES:  # and the topic table names each type
        assert f"| agra_ros/msg/{name} |" in text, name


def test_constants_and_field_names_follow_the_core_vocabulary():
    from agra_ros.msg import GranularityCommand, PerceptionFeedback

    assert [getattr(GranularityCommand, f"LEVEL_{lv.upper().replace('-', '_')}") for lv in LEVELS] == list(
        range(len(LEVELS))
    )
    assert [getattr(GranularityCommand, f"TARGET_{t.upper()}") for t in EXECUTION_TARGETS] == list(
        range(len(EXECUTION_TARGETS))
    )
    assert set(FEEDBACK_FIELDS) <= set(PerceptionFeedback.get_fields_and_field_types())


# ---------------------------------------------------------------------------------------------- conversions
def test_command_round_trip_and_each_malformed_kind():
    from agra_ros.granularity.levels import GranularityCommandError
    from agra_ros.ros.interfaces import GranularityCommand, command_from_msg, command_to_msg, configuration_short

    for config in (
        GranularityConfig(("full", "partitioned", "neuron-75", "neuron-50", "neuron-25"), 0.75, "remote"),
        GranularityConfig.uniform("neuron-50", 9, 0.5),
    ):
        msg = command_to_msg(config, decision=42)
        assert msg.decision == 42 and list(msg.levels) == config.to_indices()[:-2]
        assert command_from_msg(msg, config.n_layers) == config
        assert configuration_short(msg) == config.short()

    def bad(**kw) -> GranularityCommand:
        base = {"levels": [0, 0, 0], "resolution_scale": 1.0, "execution_target": 0}
        return GranularityCommand(**{**base, **kw})

    cases = [
        ("wrong_length", bad(levels=[0, 0])),
        ("unknown_level", bad(levels=[0, 9, 0])),
        ("unknown_scale", bad(resolution_scale=0.6)),
        ("unknown_scale", bad(resolution_scale=float("nan"))),
        ("unknown_scale", bad(resolution_scale=float("inf"))),
        ("unknown_target", bad(execution_target=7)),
        ("unknown_interval", bad(keyframe_interval=5)),
    ]
    for kind, msg in cases:
        with pytest.raises(GranularityCommandError) as err:
            command_from_msg(msg, 3)
        assert err.value.kind == kind, (kind, err.value)
    assert configuration_short(bad(levels=[0, 9, 0])) == ""
    assert command_from_msg(bad(keyframe_interval=0), 3).keyframe_interval == 1  # a sender without the field


def test_feedback_from_a_frame_and_back_rejecting_non_finite_numbers():
    from types import SimpleNamespace

    from std_msgs.msg import Header

    from agra_ros.limits import InputRejected
    from agra_ros.ros.interfaces import command_from_msg, feedback_from_msg, feedback_to_msg, workload_from_msg
    from agra_ros.workload.features import EMBEDDING_DIM

    config = GranularityConfig.uniform("neuron-25", 4).with_keyframe_interval(3)
    res = SimpleNamespace(
        fps=12.5, latency_ms=8.0, detector_energy_per_frame_j=0.25, power_w=6.0, accuracy_proxy=float("nan"), objects=3,
        mean_confidence=0.5, config=config, tracked=True, motion=2.5, resolution_mpix=0.3,
        embedding=np.linspace(-1, 1, EMBEDDING_DIM, dtype=np.float32),
    )  # fmt: skip
    msg = feedback_to_msg(res, Header(frame_id="cam"), "model:x86_generic", decision=7, fallback=False)
    assert msg.configuration.decision == 7 and msg.header.frame_id == "cam" and msg.objects == 3
    assert msg.tracked and msg.motion == pytest.approx(2.5) and msg.configuration.keyframe_interval == 3
    assert command_from_msg(msg.configuration, 4) == config  # the interval survives the wire
    fb = feedback_from_msg(msg)
    assert (fb.fps, fb.latency_ms, fb.detector_energy_per_frame_j, fb.power_w, fb.objects) == (12.5, 8.0, 0.25, 6.0, 3)
    assert msg.system_energy_per_frame_j == pytest.approx(6.0 / 12.5)  # core.reward.system_energy_per_frame_j
    assert math.isnan(fb.accuracy_proxy) and not fb.has_accuracy
    for name, value in (("fps", float("nan")), ("latency_ms", -1.0), ("power_w", float("inf")),
                        ("accuracy_proxy", 1.5), ("mean_confidence", float("-inf"))):  # fmt: skip
        bad = feedback_to_msg(res, Header(), "x")
        setattr(bad, name, value)
        with pytest.raises(InputRejected):
            feedback_from_msg(bad)
    # W travels with the feedback; a missing, short or non-finite embedding is a rejected input of kind embedding
    w = workload_from_msg(msg, fb)
    assert np.allclose(w.embedding, res.embedding) and w.motion == pytest.approx(2.5) and w.objects == 3
    assert w.resolution_mpix == pytest.approx(0.3)
    for embedding in ([], [0.1] * (EMBEDDING_DIM - 1), [float("nan")] * EMBEDDING_DIM):
        bad = feedback_to_msg(res, Header(), "x")
        bad.workload_embedding = embedding
        with pytest.raises(InputRejected) as err:
            workload_from_msg(bad, fb)
        assert err.value.kind == "embedding"
    bad = feedback_to_msg(SimpleNamespace(**{**vars(res), "embedding": None}), Header(), "x")
    assert len(bad.workload_embedding) == 0  # before the detector ran: empty, and the policy keeps the last W


def test_catalogue_from_the_runtime_content():
    from agra_ros.limits import InputRejected
    from agra_ros.ros.interfaces import GranularityCatalogue, catalogue_layers_levels, catalogue_to_msg

    content = {
        "layers": ["a", "b"],
        "levels": list(LEVELS),
        "resolution_scales": list(RESOLUTION_SCALES),
        "execution_targets": list(EXECUTION_TARGETS),
        "detector": "net",
        "classes": ["person", "dog"],
        "fallback_configuration": "55/1/local",
    }
    msg = catalogue_to_msg(content)
    assert catalogue_layers_levels(msg) == (("a", "b"), LEVELS)
    assert list(msg.safe_configuration.levels) == [3, 3] and msg.safe_configuration.decision == 0
    assert list(msg.resolution_scales) == list(RESOLUTION_SCALES) and msg.class_names == ["person", "dog"]
    with pytest.raises(InputRejected):
        catalogue_layers_levels(GranularityCatalogue(level_names=["full"]))


# ---------------------------------------------------------------------------------------------- two processes
ECHO = textwrap.dedent(
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from agra_ros.msg import GranularityCatalogue, GranularityCommand, PerceptionFeedback

    rclpy.init()
    node = Node("interface_echo")
    for cls in (GranularityCatalogue, GranularityCommand, PerceptionFeedback):
        pub = node.create_publisher(cls, f"echo/out/{cls.__name__}", 10)
        node.create_subscription(cls, f"echo/in/{cls.__name__}", lambda m, p=pub: p.publish(m), 10)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    """
)


def _samples() -> dict[str, object]:
    """One message of each type with every field set to a value float32 holds exactly (the comparison is by repr,
    so NaN compares equal)."""
    from agra_ros.msg import GranularityCatalogue, GranularityCommand, PerceptionFeedback
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    header = Header(stamp=Time(sec=1700000000, nanosec=250), frame_id="camera")
    cmd = GranularityCommand(
        header=header, levels=[0, 1, 2, 3, 4], resolution_scale=0.75, execution_target=1, decision=2**40 + 3
    )
    return {
        "GranularityCommand": cmd,
        "PerceptionFeedback": PerceptionFeedback(
            header=header,
            fps=29.5,
            latency_ms=12.25,
            detector_energy_per_frame_j=0.125,
            system_energy_per_frame_j=0.25,
            power_w=7.5,
            energy_source="model:x86_generic",
            accuracy_proxy=float("nan"),
            objects=17,
            mean_confidence=0.625,
            configuration=cmd,
            fallback=True,
        ),  # fmt: skip
        "GranularityCatalogue": GranularityCatalogue(
            header=header,
            detector="ssd-mobilenetv2-oidv4",
            class_names=["Person", "Dog"],
            layer_names=["b1", "b2", "b3_5", "b6_9", "head"],
            level_names=list(LEVELS),
            resolution_scales=[1.0, 0.75, 0.5],
            execution_targets=list(EXECUTION_TARGETS),
            safe_configuration=cmd,
        ),  # fmt: skip
    }


@pytest.mark.ros
def test_each_message_round_trips_through_a_second_process(tmp_path):
    from ros_harness import probe, stop_process, wait_for

    samples = _samples()
    log = open(tmp_path / "echo.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", ECHO], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        with probe("interface_rt") as pr:
            got: dict[str, object] = {}
            lock = threading.Lock()

            def keep(name: str, msg) -> None:
                with lock:
                    got[name] = msg

            pubs = {}
            for name, msg in samples.items():
                cls = type(msg)
                pubs[name] = pr.node.create_publisher(cls, f"echo/in/{name}", 10)
                pr.node.create_subscription(cls, f"echo/out/{name}", lambda m, n=name: keep(n, m), 10)

            def all_back() -> bool:
                for name, msg in samples.items():
                    if name not in got:
                        pubs[name].publish(msg)
                return len(got) == len(samples)

            # generous: the echo process imports rclpy and discovers us on a loaded 2-core machine
            assert wait_for(all_back, 120, period=0.25), (
                f"echoed back: {sorted(got)}\n" + (tmp_path / "echo.log").read_text()[-3000:]
            )
        for name, msg in samples.items():
            assert repr(got[name]) == repr(msg), name
    finally:
        stop_process(proc, timeout=15)
        log.close()


# ---------------------------------------------------------------------------------------------- set-up failures
def _bare_machine(tmp_path: Path, without: tuple[str, ...]) -> tuple[Path, Path]:
    """(a PATH folder with every tool of /usr/local/bin and /usr/bin but ``without``, a fresh venv as set-up sees
    it: no stamp yet)."""
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin"):
        for tool in Path(folder).iterdir():
            link = fakebin / tool.name
            if tool.name not in without and not link.exists():
                link.symlink_to(tool)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return fakebin, venv


@pytest.mark.parametrize("missing", ["cmake", "c++"])
def test_setup_without_a_build_tool_stops_with_one_line_naming_it(tmp_path, missing):
    """scripts/build_interfaces.sh on a machine without cmake (or a compiler): one line, before any CMake runs."""
    fakebin, venv = _bare_machine(tmp_path, (missing,))
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_interfaces.sh"), str(venv)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": str(fakebin), "AGRA_NO_APT": "1"},  # apt-get not allowed: the one-line stop
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[setup] cannot generate the interfaces in msg/:"), out.stderr
    assert missing in lines[0], lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get runs without asking only as root (or passwordless sudo)")
def test_setup_installs_a_missing_build_tool_with_apt_get_when_it_may(tmp_path):
    """As root, a missing cmake is installed with apt-get (here a stand-in that records its calls and provides the
    tool), and the build goes on past the check."""
    fakebin, venv = _bare_machine(tmp_path, ("cmake", "apt-get"))
    calls = tmp_path / "apt-calls"
    real_cmake = shutil.which("cmake") or "/bin/false"
    (fakebin / "apt-get").write_text(
        f'#!/bin/bash\necho "$*" >> {calls}\nif [[ "$*" == *install* ]]; then ln -sf {real_cmake} {fakebin}/cmake; fi\n'
    )
    (fakebin / "apt-get").chmod(0o755)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_interfaces.sh"), str(venv)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "AGRA_NO_APT"}, "PATH": str(fakebin), "ROS_DISTRO": "x"},
    )
    recorded = calls.read_text().splitlines()
    assert recorded[0].startswith("update") and "install" in recorded[1] and "cmake" in recorded[1], recorded
    assert "installing the build tools the interfaces need with apt-get: cmake" in out.stderr
    assert "cmake not found" not in out.stderr, out.stderr
