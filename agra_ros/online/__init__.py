"""On-robot continual learning (no rclpy): the acting agent, the background learner process, checkpoints, safety.

The policy node (agra_ros/nodes/policy.py) is a thin ROS adapter around :class:`OnlineAgent` and
:class:`LearnerSupervisor`.
"""

from agra_ros.limits import InputRejected, parse_target_fps
from agra_ros.online.checkpoint import (
    CheckpointError,
    CheckpointSpec,
    CorruptCheckpointError,
    IncompatibleCheckpointError,
    load_checkpoint,
    load_or_quarantine,
    save_checkpoint,
)
from agra_ros.online.experience import ExperienceBatch
from agra_ros.online.inputs import Feedback, parse_feedback
from agra_ros.online.learner import OnlineLearner
from agra_ros.online.learner_process import LearnerSupervisor
from agra_ros.online.learner_settings import LearnerSettings, LearnerState
from agra_ros.online.safety import SafetyGuard, safety_override_configuration

__all__ = [
    "CheckpointError",
    "CheckpointSpec",
    "CorruptCheckpointError",
    "ExperienceBatch",
    "Feedback",
    "IncompatibleCheckpointError",
    "InputRejected",
    "LearnerSettings",
    "LearnerState",
    "LearnerSupervisor",
    "OnlineLearner",
    "SafetyGuard",
    "load_checkpoint",
    "load_or_quarantine",
    "parse_feedback",
    "parse_target_fps",
    "safety_override_configuration",
    "save_checkpoint",
]
