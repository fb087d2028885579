"""perception_node's parameters: name, default, meaning and accepted values (the README's parameter table is printed
from them: agra_ros.ros.param_table)."""

from __future__ import annotations

from agra_ros.nodes.detector_params import detector_specs
from agra_ros.ros import params as ros_params

SPECS = [
    *detector_specs(),
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
        "remote_deadline_s",
        0.0,
        "How long a frame sent to a perception server waits for its reply before it runs here in the fallback "
        "configuration; 0: 1.5x the frame budget 1/target FPS (1 s while no target is known).",
        range=(0.0, 30.0, 0.0),
    ),
    ros_params.ParamSpec(
        "remote_jpeg_quality", 80, "JPEG quality of frames sent to a perception server.", range=(1, 100, 1)
    ),
    ros_params.ParamSpec(
        "remote_server_timeout_s",
        3.0,
        "A perception server counts as present for this long after its last announcement (it announces every second).",
        range=(0.5, 600.0, 0.0),
    ),
    ros_params.ParamSpec(
        "remote_miss_limit",
        2,
        "After this many requests in a row unanswered (or answered later than the frame budget) the link counts as "
        "down, as it does when two of about four fail: frames run here until link probes, the first sent "
        "remote_retry_s later, are answered in time about six in a row.",
        range=(1, 1000, 1),
    ),
    ros_params.ParamSpec(
        "remote_retry_s",
        2.0,
        "While the link is down, a link probe goes out this long after the last failure (doubling, up to 4x, while "
        "they go unanswered; after an answered one the next goes with the next frame).",
        range=(0.1, 600.0, 0.0),
    ),
    ros_params.ParamSpec(
        "remote_probe_period_s",
        2.0,
        "While frames run here and a perception server announces itself, one frame in this period is also sent to it "
        "as a link probe (its reply is measured, never published), so the policy sees the link it could offload to; "
        "the period doubles, up to 4x, while probes go unanswered. 0: no probes (a link that is down is still "
        "probed after remote_retry_s).",
        range=(0.0, 600.0, 0.0),
    ),
    ros_params.ParamSpec(
        "remote_radio",
        "wifi",
        "Radio model of the energy of frames sent to a perception server (Huang et al., MobiSys 2012).",
        choices=("wifi", "lte"),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "power_counts_processes",
        False,
        "Count the CPU time of this robot's perception and policy processes on this machine (same ROS_DOMAIN_ID "
        "and network namespace; the learner included; psutil, 1 s windows) as busy time in power_w and the system "
        "energy per frame, so what offloading saves of everything the robot runs shows (energy source "
        "model:<profile>+process_cpu); off: the frames' own busy time and the radio.",
    ),
    ros_params.ParamSpec(
        "reliability",
        "best_effort",
        "Reliability of the image_raw subscription (best_effort also receives from reliable publishers).",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
]
