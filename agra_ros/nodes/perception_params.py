"""perception_node's parameters: name, default, meaning and accepted values (the README's parameter table is printed
from them: agra_ros.ros.param_table)."""

from __future__ import annotations

from agra_ros.core.contract import SCORE_THRESHOLD
from agra_ros.detectors import registry
from agra_ros.ros import params as ros_params

SPECS = [
    ros_params.ParamSpec(
        "device", "cpu", "Where the detector runs (cuda only where a CUDA GPU is usable).", choices=("cpu", "cuda")
    ),
    ros_params.ParamSpec(
        "detector",
        registry.DEFAULT_DETECTOR,
        "Detector: ssd (real SSD-MobileNetV2, 23 Open Images classes) or synthetic (test double of synthetic shapes).",
        choices=tuple(registry.DETECTORS),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "weights",
        "",
        "Detector weights file; empty: the detector's weights shipped in the package.",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "score_threshold", SCORE_THRESHOLD, "Detections below this score are dropped.", range=(0.0, 1.0, 0.0)
    ),
    ros_params.ParamSpec(
        "shadow_share",
        0.1,
        "Share of frames on which the full configuration also runs to measure the accuracy proxy (0: never).",
        range=(0.0, 1.0, 0.0),
    ),
    ros_params.ParamSpec(
        "fallback_timeout_s",
        2.0,
        "Run the fallback configuration when no valid agra/granularity command arrived for this long.",
        range=(0.1, 3600.0, 0.0),
    ),
    ros_params.ParamSpec(
        "fallback_configuration",
        "",
        "What runs while no valid command is in force, in short form (e.g. 555555555/1/local); empty: the "
        "detector's measured fallback configuration.",
    ),
    ros_params.ParamSpec(
        "device_profile",
        "x86_generic",
        "Device profile of the power model behind detector_energy_per_frame_j and power_w.",
    ),
    ros_params.ParamSpec("threads", 1, "torch intra-op threads of the detector.", range=(1, 64, 1)),
    ros_params.ParamSpec(
        "pace_to_target",
        True,
        "Process at most agra/target_fps frames per second (spend no work beyond the target).",
    ),
    ros_params.ParamSpec(
        "max_fps", 0.0, "Upper bound on processed frames per second; 0: no bound.", range=(0.0, 1000.0, 0.0)
    ),
    ros_params.ParamSpec(
        "annotate_every",
        1,
        "Publish image_annotated for every Nth processed frame (only while someone subscribes); 0: never.",
        range=(0, 1000, 1),
    ),
    ros_params.ParamSpec(
        "reliability",
        "best_effort",
        "Reliability of the image_raw subscription (best_effort also receives from reliable publishers).",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
]
