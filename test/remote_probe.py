"""A robot-side probe for the remote-execution tests, run as its own process (inside a network namespace):
commands the configuration a control file names, publishes the target FPS, and writes every PerceptionFeedback
(and every catalogue) as one JSON line with the time it arrived (time.monotonic, the same clock in every network
namespace).

python test/remote_probe.py OUT.jsonl TARGET_FPS CONTROL_FILE

The control file holds <level>-<target>, e.g. full-local or full-remote: every layer at that level, resolution 1.0,
commanded at 5 Hz (as the policy does); read again before every command. Anything else (e.g. listen) commands
nothing: the policy node does.
"""

from __future__ import annotations

import json
import math
import sys
import time

import rclpy
from agra_ros.msg import GranularityCatalogue, GranularityCommand, PerceptionFeedback
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import Float32

from agra_ros.granularity.levels import GranularityConfig
from agra_ros.ros.interfaces import command_to_msg
from agra_ros.ros.qos import command_qos, latched_qos

FIELDS = (
    "fps",
    "latency_ms",
    "detector_energy_per_frame_j",
    "system_energy_per_frame_j",
    "power_w",
    "accuracy_proxy",
    "objects",
    "fallback",
    "remote_server",
    "remote_miss",
    "remote_rtt_ms",
    "radio_energy_per_frame_j",
    "server_compute_ms",
    "server_energy_per_frame_j",
    "link_rtt_ms",
    "link_uplink_mbps",
    "link_loss",
    "server_queue",
)


def _num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class RemoteProbe(Node):
    def __init__(self, out: str, target_fps: float, control: str) -> None:
        super().__init__("remote_probe")
        self.out = open(out, "a", buffering=1)
        self.control = control
        self.n_layers = 0
        self.decision = 0
        self.cmd = self.create_publisher(GranularityCommand, "agra/granularity", command_qos(10))
        tgt = self.create_publisher(Float32, "agra/target_fps", latched_qos())
        tgt.publish(Float32(data=float(target_fps)))
        self._tgt = tgt
        self.create_subscription(GranularityCatalogue, "agra/granularity_catalogue", self._on_catalogue, latched_qos())
        self.create_subscription(PerceptionFeedback, "agra/feedback", self._on_feedback, command_qos(50))
        self.create_timer(0.2, self._command)

    def _on_catalogue(self, msg: GranularityCatalogue) -> None:
        self.n_layers = len(msg.layer_names)
        self.out.write(json.dumps({"t": time.monotonic(), "catalogue": list(msg.execution_targets)}) + "\n")

    def _command(self) -> None:
        if not self.n_layers:
            return
        try:
            with open(self.control) as f:
                text = f.read().strip()
            level, target = text.rsplit("-", 1)
        except (OSError, ValueError):
            return  # e.g. "listen": another node (the policy) commands
        self.decision += 1
        config = GranularityConfig((level,) * self.n_layers, 1.0, target)
        self.cmd.publish(command_to_msg(config, self.decision))

    def _on_feedback(self, msg: PerceptionFeedback) -> None:
        row = {"t": time.monotonic(), "target": int(msg.configuration.execution_target)}
        row["decision"] = int(msg.configuration.decision)
        row["levels"] = list(msg.configuration.levels)
        row["energy_source"] = str(msg.energy_source)
        row.update({f: _num(getattr(msg, f)) for f in FIELDS})
        self.out.write(json.dumps(row) + "\n")


def main() -> None:
    rclpy.init()
    node = RemoteProbe(sys.argv[1], float(sys.argv[2]), sys.argv[3])
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.out.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
