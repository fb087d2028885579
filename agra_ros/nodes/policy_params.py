"""policy_node's parameters: name, default, meaning and accepted values (the README's parameter table is printed from
them: agra_ros.ros.param_table)."""

from __future__ import annotations

from agra_ros.limits import (
    ACCURACY_FLOOR,
    ACCURACY_FLOOR_RANGE,
    CRITICAL_TEMP_C,
    CRITICAL_TEMP_RANGE_C,
    RECOVER_MARGIN_C,
    RECOVER_MARGIN_RANGE_C,
    TARGET_FPS_RANGE,
)
from agra_ros.online.agent import ALGORITHMS
from agra_ros.online.budget import CPU_BUDGET_RANGE
from agra_ros.online.hold import (
    EXPLORE_SHARE_RANGE,
    MIN_HOLD_RANGE_S,
    MISSED_BADLY_SHARE,
    STICK_MARGIN_RANGE,
)
from agra_ros.online.learner_settings import LearnerSettings
from agra_ros.ros import params as ros_params

MAX_DEFER_S = LearnerSettings().max_defer_s

SPECS = [
    ros_params.ParamSpec("algorithm", "agra", "Decision algorithm.", choices=ALGORITHMS, read_only=True),
    ros_params.ParamSpec(
        "target_fps",
        30.0,
        "Target FPS, published (latched) on agra/target_fps. Set by anyone (ros2 param set, launch), it wins over "
        "the camera trace and turns follow_trace off; while follow_trace is true, agra/trace_target_fps sets it.",
        range=(*TARGET_FPS_RANGE, 0.0),
    ),
    ros_params.ParamSpec(
        "follow_trace",
        True,
        "Let a camera trace's target (agra/trace_target_fps) set target_fps; any outside set of target_fps turns "
        "this off. Set it true to follow the trace again.",
    ),
    ros_params.ParamSpec(
        "decision_rate_hz", 5.0, "Decisions (agra/granularity commands) per second.", range=(0.2, 50.0, 0.0)
    ),
    ros_params.ParamSpec(
        "learning", True, "Learn online (agra/a2c in the background learner process, bandit in place)."
    ),
    ros_params.ParamSpec(
        "checkpoint_dir",
        "~/.ros/agra_ros",
        "Folder of the learned policy's checkpoint policy_<algorithm>.pt; empty: no checkpoints.",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "checkpoint_period_s",
        60.0,
        "Seconds between periodic checkpoints (one is also written on shutdown).",
        range=(0.05, 86400.0, 0.0),
    ),
    ros_params.ParamSpec(
        "device_profile",
        "x86_generic",
        "Device profile of the energy reference (the same parameter as perception's and device_monitor's).",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "critical_temp_c",
        CRITICAL_TEMP_C,
        "Temperature at which the safety override configuration (the coarsest) is forced. The device's own critical "
        "level wins whenever it is reported (device_monitor's temp_critical_c: a thermal zone's trip point, else its "
        "device profile's), so this applies only to a device state without one (e.g. D from a jtop node alone).",
        range=(*CRITICAL_TEMP_RANGE_C, 0.0),
    ),
    ros_params.ParamSpec(
        "recover_margin_c",
        RECOVER_MARGIN_C,
        "The safety override ends this far below the critical temperature.",
        range=(*RECOVER_MARGIN_RANGE_C, 0.0),
    ),
    ros_params.ParamSpec(
        "accuracy_floor",
        ACCURACY_FLOOR,
        "Accuracy floor of the target P, as a share of the full configuration's accuracy.",
        range=(*ACCURACY_FLOOR_RANGE, 0.0),
    ),
    ros_params.ParamSpec(
        "live_accuracy",
        "table",
        "The live accuracy model (the shipped table corrected by this scene's shadow measurements) masks decisions "
        "it predicts below what is kept: table = the accuracy the table promised for the decision, capped at "
        "accuracy_floor (the policy's trade-offs stand where the table holds); floor = accuracy_floor itself (a hard "
        "floor); none = no mask. A masked decision runs the cheapest frontier configuration predicted to keep it.",
        choices=("table", "floor", "none"),
        read_only=True,
    ),
    ros_params.ParamSpec(
        "footage_table",
        "auto",
        "Footage table (agra-ros evaluate-footage's footage_eval.csv) the live accuracy model starts from: auto = "
        "the one --install put in this user's cache, if any; a path; empty = none (start from the shipped table).",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "calibrate_speed",
        True,
        "The state's slowdown against the cost table is this robot's running estimate from every latency perception "
        "measures (per configuration, shrunk toward the device's pooled figure), not the last decision's one "
        "measurement: a loaded or throttled robot reads as one steady device, not a different one each decision.",
    ),
    ros_params.ParamSpec(
        "allow_remote",
        False,
        "Let the policy choose remote execution. Even then it is masked to local until perception measures a "
        "perception server's link (a request or link probe answered), as the simulator masks it without a server.",
    ),
    ros_params.ParamSpec(
        "rollout_steps", 64, "Decisions per PPO update of the learner.", range=(8, 4096, 1), read_only=True
    ),
    ros_params.ParamSpec(
        "learner_cpu_budget",
        0.10,
        "Share of one core the learner process (niced, one torch thread) uses on average; beyond it, and while "
        f"perception misses its target, its updates wait (for a missed target at most {MAX_DEFER_S:g} s). "
        "/diagnostics reports the share measured, the time throttled and the updates deferred.",
        range=(*CPU_BUDGET_RANGE, 0.0),
    ),
    ros_params.ParamSpec(
        "min_hold_s",
        1.0,
        "A new configuration is commanded only once the one in force has been held this long (0: every decision); "
        "the safety override, a perception on its fallback configuration and a target missed badly (FPS under "
        f"{MISSED_BADLY_SHARE:.0%} of it) change it at once. /diagnostics counts the decisions held back.",
        range=(*MIN_HOLD_RANGE_S, 0.0),
    ),
    ros_params.ParamSpec(
        "explore_share",
        1.0,
        "While learning, the share of decisions that sample the policy (the learner's experience); the others take "
        "its mode, keeping a head's current choice within stick_margin of the best. 1: every decision samples "
        "(plain on-policy PPO); lower: fewer distinct configurations and less experience.",
        range=(*EXPLORE_SHARE_RANGE, 0.0),
    ),
    ros_params.ParamSpec(
        "stick_margin",
        1.0,
        "Nats of logit within which a head of the policy keeps its current choice over the best one (0: the plain "
        "mode), so near-tied choices do not flip the configuration from one decision to the next.",
        range=(*STICK_MARGIN_RANGE, 0.0),
    ),
    ros_params.ParamSpec(
        "publish_target_fps",
        True,
        "Publish the target_fps parameter on agra/target_fps (transient local: a perception started later gets "
        "it at once), so perception paces to it.",
    ),
    ros_params.ParamSpec("seed", 0, "Seed of exploration and the learner.", range=(0, 2**31 - 1, 1), read_only=True),
]
