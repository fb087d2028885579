"""The detector's parameters, declared once for every node that runs it (perception_node on the robot,
perception_server_node on an edge machine): a robot and its server must accept the same names and values, since
the server runs the robot's network and the robot checks that it does."""

from __future__ import annotations

from agra_ros.core.contract import SCORE_THRESHOLD
from agra_ros.detectors import registry
from agra_ros.ros import params as ros_params


def detector_specs() -> list[ros_params.ParamSpec]:
    """device, detector, weights, score_threshold and threads, in that order."""
    return [
        ros_params.ParamSpec(
            "device", "cpu", "Where the detector runs (cuda only where a CUDA GPU is usable).", choices=("cpu", "cuda")
        ),
        ros_params.ParamSpec(
            "detector",
            registry.DEFAULT_DETECTOR,
            "Detector: ssd (real SSD-MobileNetV2, 23 Open Images classes) or synthetic (test double of synthetic "
            "shapes).",
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
        ros_params.ParamSpec("threads", 1, "torch intra-op threads of the detector.", range=(1, 64, 1)),
    ]
