"""What the perception and policy nodes report on /diagnostics, built by the core (perception/status.py,
online/status.py) and the image checks they share (ros/image.py), without spinning a node."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from sensor_msgs.msg import Image
from simfixtures import write_fixture_tables

from agra_ros.bad_inputs import BadInputCounter
from agra_ros.core.contract import Contract, observation_layout
from agra_ros.core.device import DeviceSim
from agra_ros.granularity.levels import LEVELS, GranularityConfig
from agra_ros.online.agent import AgentSettings, OnlineAgent
from agra_ros.online.checkpoint import CheckpointSpec
from agra_ros.online.lifecycle import CheckpointKeeper, TargetArbiter
from agra_ros.online.stats import AttainmentWindow, LatencyWindow
from agra_ros.online.status import catalogue_mismatch, policy_status
from agra_ros.perception.runtime import PerceptionRuntime
from agra_ros.perception.status import FrameCounters, perception_status
from agra_ros.ros.image import ImageConversionError, error_kind, header_problem
from agra_ros.tables.search import load_config_model


def test_frame_counters_flag_a_window_where_most_frames_were_lost():
    c = FrameCounters()
    c.received, c.lost = 10, 2
    assert not c.mostly_lost_since_last_report()
    c.received, c.lost = 11, 20  # 1 more received, 18 more lost since the last report
    assert c.mostly_lost_since_last_report()
    assert not c.mostly_lost_since_last_report()  # nothing new since


class _Detector:
    """Two switchable layers, never asked to detect here."""

    class_names = ("a",)

    def switchable_layer_names(self) -> list[str]:
        return ["l0", "l1"]

    def set_config(self, config: GranularityConfig) -> None:
        pass

    def detect(self, images, score_threshold=0.3):
        raise AssertionError("not called")


def test_perception_status_names_the_fallback_and_an_empty_input():
    now = [100.0]
    rt = PerceptionRuntime(
        _Detector(), GranularityConfig.uniform("full", 2), fallback_timeout_s=1.0, clock=lambda: now[0]
    )
    frames = FrameCounters()
    s = perception_status(rt, now[0], frames, None, None, None, BadInputCounter(), "cpu", 1)
    values = dict(s.values)
    assert values["fallback_configuration"] == rt.fallback_config.short() and values["frames_received"] == 0
    assert math.isnan(values["detector_energy_per_frame_j"]) and values["pacing_hz"] == 0.0
    assert s.warnings == ["no frames received on image_raw"] and s.ok.startswith("processing at")
    now[0] += 2.0
    rt.check_fallback()
    frames.received = 5
    s = perception_status(rt, now[0], frames, None, 10.0, 10.0, BadInputCounter(), "cpu", 1)
    assert s.warnings == [f"no granularity command: fallback configuration {rt.fallback_config.short()}"]


def test_catalogue_mismatch_says_why():
    assert catalogue_mismatch(("a", "b"), LEVELS, ("a", "b")) == ""
    assert "will not fit" in catalogue_mismatch(("a",), LEVELS, ("a", "b"))
    assert "will not fit" in catalogue_mismatch(("a", "b"), LEVELS[:2], ("a", "b"))


def test_policy_status_before_the_first_frame():
    tables = write_fixture_tables(Path(tempfile.mkdtemp(prefix="agra_status_test_")))
    model = load_config_model(str(tables[0]), str(tables[1]))
    ref = Contract(layout=observation_layout(), model=model, device=DeviceSim("x86_generic"))
    agent = OnlineAgent(AgentSettings(algorithm="static", start_from_shipped=False), ref)
    keeper = CheckpointKeeper(None, CheckpointSpec("static", agent.layout.dim, agent.nvec))
    s = policy_status(
        agent,
        last_config=GranularityConfig.uniform("full", agent.n_layers).short(),
        latency=LatencyWindow(),
        target=TargetArbiter(),
        follow_trace=True,
        attainment=AttainmentWindow(),
        rejections=BadInputCounter(),
        learner=None,
        checkpoint=keeper,
        device_seen=False,
        catalogue_error="layers differ",
    )
    values = dict(s.values)
    assert values["algorithm"] == "static" and values["learner_state"] == "none" and values["safety"] == "normal"
    assert values["rejected_total"] == 0 and all(f"rejected.{k}" in values for k in ("embedding", "catalogue"))
    assert s.summaries == [("warn", "waiting for perception's feedback (W comes with it)"), ("error", "layers differ")]


def test_image_header_problems_and_error_kinds():
    ok = Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(12))
    assert header_problem(ok) == ""
    assert header_problem(Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8))).startswith("unsupported")
    assert header_problem(Image(height=0, width=2, encoding="rgb8", step=6)).startswith("zero-size")
    assert header_problem(Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(5))).startswith("truncated")
    for text, kind in (
        ("unsupported encoding 'x'", "encoding"),
        ("zero-size image (0x2)", "zero_size"),
        ("truncated image: 5 bytes", "truncated"),
        ("step 2 shorter than one row", "step"),
        ("image 9000x2 larger than 8192 px per side", "too_large"),
        ("something else", "invalid"),
    ):
        assert error_kind(ImageConversionError(text)) == kind
