"""Bad start-up settings of every node end in one clear line and exit code 2, never a traceback (real processes)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from contextlib import ExitStack

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ros_harness import node_process, probe, read_log, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Header

from agra_ros.ros.image import rgb_to_msg
from agra_ros.ros.interfaces import GranularityCatalogue, GranularityCommand, PerceptionFeedback
from agra_ros.ros.qos import command_qos, image_qos, latched_qos

pytestmark = pytest.mark.ros

SYNTHETIC = {"detector": "synthetic"}  # fast to load; the check happens before any detector is built anyway
BAD_SETTINGS = [
    ("perception", {**SYNTHETIC, "device": "tpu"}, "device='tpu' is not one of cpu, cuda"),
    ("perception", {**SYNTHETIC, "reliability": "sometimes"}, "reliability='sometimes' is not one of"),
    ("perception", {**SYNTHETIC, "threads": 0}, "threads=0 is outside [1, 64]"),
    ("perception", {**SYNTHETIC, "threads": "abc"}, "threads='abc' is not an integer"),
    ("perception", {**SYNTHETIC, "score_threshold": 2.0}, "score_threshold=2.0 is outside [0.0, 1.0]"),
    ("perception", {**SYNTHETIC, "fallback_timeout_s": 0.0}, "fallback_timeout_s=0.0 is outside"),
    ("policy", {"algorithm": "foo"}, "algorithm='foo' is not one of"),
    ("policy", {"device_profile": "nope"}, "unknown device profile 'nope'"),
    ("policy", {"algorithm": "sometimes"}, "algorithm='sometimes' is not one of"),
    ("policy", {"target_fps": 1000.0}, "target_fps=1000.0 is outside [0.5, 240.0]"),
    ("policy", {"target_fps": "fast"}, "target_fps='fast' is not a number"),
    ("policy", {"decision_rate_hz": 0.0}, "decision_rate_hz=0.0 is outside"),
    ("policy", {"rollout_steps": 1}, "rollout_steps=1 is outside [8, 4096]"),
    ("camera_source", {"reliability": "sometimes"}, "reliability='sometimes' is not one of"),
    ("camera_source", {"trace": "nonexistent"}, "trace 'nonexistent' not found"),
    ("camera_source", {"width": 0}, "width=0 is outside [32, 3840]"),
    ("device_monitor", {"rate_hz": 0.0}, "rate_hz=0.0 is outside"),
]


def test_bad_startup_settings_of_every_node_exit_2_with_one_line(tmp_path):
    """All at once (each exits by itself within seconds), so the list costs one start-up, not seventeen."""
    with ExitStack() as stack:
        procs = [
            (stack.enter_context(node_process(mod, params, tmp_path, f"{mod}-{i}")), mod, params, text)
            for i, (mod, params, text) in enumerate(BAD_SETTINGS)
        ]
        for proc, _, _, _ in procs:
            proc.wait(timeout=240)
    for proc, mod, params, text in procs:
        log = read_log(proc)
        assert proc.returncode == 2, f"{mod} {params}: exit {proc.returncode}\n{log}"
        assert "Traceback" not in log and f"cannot start: {text}" in log, f"{mod} {params}:\n{log}"
        assert log.count("cannot start") == 1, log


def test_a_trace_with_a_target_outside_the_bounds_is_a_startup_error(tmp_path):
    trace = tmp_path / "fast.yaml"
    trace.write_text(
        "name: fast\nphases:\n  - {name: blur, duration_s: 5, density: 2, resolution: [320, 240], target_fps: 500}\n"
    )
    with node_process("camera_source", {"source": "synthetic", "trace": str(trace)}, tmp_path) as proc:
        assert proc.wait(timeout=120) == 2
    log = read_log(proc)
    assert "phase 'blur'" in log and "outside [0.5, 240]" in log and "Traceback" not in log, log


@pytest.mark.parametrize("argv", [["demo", "--duration", "0"], ["launch", "--duration", "-1"]])
def test_cli_durations_must_be_positive(argv):
    out = subprocess.run([sys.executable, "-m", "agra_ros.cli", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "must be a positive number of seconds" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


# ----------------------------------------------------------------------------------------- fuzz
FUZZ_SEED = 11
FUZZ_MESSAGES = 400


def _fuzz_messages(rng: random.Random) -> list[tuple[str, object]]:
    """FUZZ_MESSAGES malformed (or borderline) messages of every type perception and the policy subscribe to."""

    def number() -> float:
        return rng.choice(
            [float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e-30, 1e30, 3.4e38, rng.uniform(-1e3, 1e3)]
        )

    def text() -> str:
        return rng.choice(["", "{", "{}", '{"layers": 3}', '{"layers": [1, 2]}', "null", "\x00\xff", "x" * 5000])

    def image() -> Image:
        w, h = rng.choice([0, 1, 7, 64, 9000]), rng.choice([0, 1, 5, 48, 9000])
        enc = rng.choice(["rgb8", "bgr8", "mono8", "rgba8", "32FC1", "", "RGB8", "weird"])
        return Image(
            width=w,
            height=h,
            encoding=enc,
            step=rng.choice([0, 1, w, w * 3, 2**31]),
            data=rng.randbytes(rng.randint(0, 4096)),
        )

    def command() -> GranularityCommand:
        return GranularityCommand(
            levels=[
                rng.randint(0, 255) if rng.random() < 0.3 else rng.randint(0, 4)
                for _ in range(rng.choice([0, 3, 9, 11, 50]))
            ],
            resolution_scale=rng.choice([number(), 1.0, 0.75, 0.5]),
            execution_target=rng.choice([0, 1, 2, 255]),
            decision=rng.randint(0, 2**64 - 1),
        )

    def feedback() -> PerceptionFeedback:
        msg = PerceptionFeedback(energy_source=text()[:100], objects=rng.choice([0, 3, 2**32 - 1]))
        names = ("fps", "latency_ms", "detector_energy_per_frame_j", "system_energy_per_frame_j", "power_w")
        for name in (*names, "accuracy_proxy", "mean_confidence"):
            setattr(msg, name, number())
        msg.configuration = command()
        return msg

    def catalogue() -> GranularityCatalogue:
        def names() -> list[str]:
            return [text()[:50] for _ in range(rng.choice([0, 1, 9, 200]))]

        return GranularityCatalogue(
            detector=text()[:50],
            class_names=names(),
            layer_names=names(),
            level_names=names(),
            resolution_scales=[number() for _ in range(rng.choice([0, 3, 100]))],
            execution_targets=names(),
            safe_configuration=command(),
        )

    def diagnostics() -> DiagnosticArray:
        names = [
            "device_monitor: device",
            "jetson_stats/power/VDD_IN",
            "jetson_stats/temp/CPU",
            "jetson_stats temp",
            "x",
        ]
        st = DiagnosticStatus(name=rng.choice(names), message=text()[:100])
        st.values = [
            KeyValue(
                key=rng.choice(["temp_c", "power_w", "Power", "cpu_util", "k"]),
                value=rng.choice(["nan", "-5", "1e99", "hot", "", "5.2W"]),
            )
            for _ in range(rng.randint(0, 20))
        ]
        return DiagnosticArray(status=[st])

    makers = {
        "image_raw": image,
        "agra/granularity": command,
        "agra/target_fps": lambda: Float32(data=number()),
        "agra/trace_target_fps": lambda: Float32(data=number()),
        "agra/feedback": feedback,
        "/diagnostics": diagnostics,
        "agra/granularity_catalogue": catalogue,
    }
    topics = sorted(makers)
    return [(t, makers[t]()) for t in (rng.choice(topics) for _ in range(FUZZ_MESSAGES))]


def test_seeded_fuzz_of_every_subscribed_type_leaves_perception_and_policy_up_and_producing(tmp_path):
    """Bounded: one seed, FUZZ_MESSAGES messages on loopback (the test domain), then it stops by itself."""
    rng = random.Random(FUZZ_SEED)
    fuzz = _fuzz_messages(rng)
    perception = {"detector": "synthetic", "threads": 1, "reliability": "reliable", "fallback_timeout_s": 1.0}
    policy = {"checkpoint_dir": "", "learning": False, "decision_rate_hz": 10.0}
    with (
        node_process("perception", perception, tmp_path) as per,
        node_process("policy", policy, tmp_path) as pol,
        probe("fuzz") as pr,
    ):
        feedback, commands = [], []
        pr.node.create_subscription(
            PerceptionFeedback, "agra/feedback", lambda m: feedback.append(time.monotonic()), command_qos(50)
        )
        pr.node.create_subscription(
            GranularityCommand, "agra/granularity", lambda m: commands.append(time.monotonic()), command_qos(50)
        )
        pubs = {
            "image_raw": pr.node.create_publisher(Image, "image_raw", image_qos("reliable")),
            "agra/granularity": pr.node.create_publisher(GranularityCommand, "agra/granularity", command_qos(10)),
            "agra/target_fps": pr.node.create_publisher(Float32, "agra/target_fps", latched_qos()),
            "agra/trace_target_fps": pr.node.create_publisher(Float32, "agra/trace_target_fps", latched_qos()),
            "agra/feedback": pr.node.create_publisher(PerceptionFeedback, "agra/feedback", command_qos(50)),
            "/diagnostics": pr.node.create_publisher(DiagnosticArray, "/diagnostics", 20),
            "agra/granularity_catalogue": pr.node.create_publisher(
                GranularityCatalogue, "agra/granularity_catalogue", latched_qos()
            ),
        }
        good = rgb_to_msg(np.random.default_rng(FUZZ_SEED).integers(0, 255, (96, 128, 3), dtype=np.uint8), Header())

        def send_good() -> None:
            pubs["image_raw"].publish(good)

        assert wait_for(lambda: send_good() or (feedback and commands), 120, 0.1), (
            "graph did not start\n" + read_log(per)[-2000:] + read_log(pol)[-2000:]
        )
        for i, (topic, msg) in enumerate(fuzz):
            pubs[topic].publish(msg)
            if i % 5 == 0:
                send_good()
            time.sleep(0.01)
        t = time.monotonic()
        assert wait_for(
            lambda: send_good() or (sum(x > t for x in feedback) >= 3 and sum(x > t for x in commands) >= 3), 30, 0.1
        ), "no output after the fuzz\n" + read_log(per)[-3000:] + read_log(pol)[-3000:]
        assert per.poll() is None and pol.poll() is None
    for proc in (per, pol):
        assert proc.returncode == 0 and "Traceback" not in read_log(proc), read_log(proc)[-3000:]
