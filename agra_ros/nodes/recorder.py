"""recorder: writes the graph's topics into a rosbag2 recording with MCAP storage (ROS 2 tools and Foxglove open it).

``ros2 bag record`` is not on PyPI, so this node records for pip installs (and works the same in a distro): it
subscribes with ``raw=True`` (the CDR bytes are written as they came, nothing is decoded), discovers each topic's
type and its publishers' QoS as they appear (latched topics are subscribed transient-local so their last message is
in the recording; best-effort publishers best-effort), and thins image topics to ``image_rate_hz``. The recording
is closed (MCAP summary, metadata.yaml) on Ctrl-C, SIGTERM or after ``duration``; ``agra-ros report`` rebuilds the
run's table and plot from it alone.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from agra_ros.paths import run_dir
from agra_ros.record.bag import BagWriter, RecordingError
from agra_ros.record.replay import IMAGE_TYPES
from agra_ros.ros import params as ros_params
from agra_ros.ros.spin import spin_node

DEFAULT_TOPICS = [
    "image_annotated",
    "detections",
    "agra/feedback",
    "agra/granularity",
    "agra/granularity_catalogue",
    "agra/configuration",
    "agra/target_fps",
    "agra/trace_target_fps",
    "agra/reward",
    "/diagnostics",
]

SPECS = [
    ros_params.ParamSpec(
        "out",
        "",
        "Folder of the recording (rosbag2: metadata.yaml + <name>.mcap); it must not exist. Empty: "
        "runs/recordings/agra_<date>_<time>.",
        read_only=True,
    ),
    ros_params.ParamSpec(
        "topics", DEFAULT_TOPICS, "Topics to record (relative names resolve in the node's namespace).", read_only=True
    ),
    ros_params.ParamSpec(
        "image_rate_hz",
        1.0,
        "Most images per second recorded per image topic (0: none). Images dominate a recording's size.",
        range=(0.0, 60.0, 0.0),
    ),
    ros_params.ParamSpec(
        "duration",
        0.0,
        "Seconds after which the recording ends and the node exits (0: until Ctrl-C).",
        range=(0.0, 86400.0, 0.0),
    ),
    ros_params.ParamSpec(
        "metadata",
        [""],
        "key=value pairs stored in metadata.yaml's custom_data as agra_ros.<key> (e.g. algorithm=agra).",
        read_only=True,
    ),
]


def subscription_qos(offered: list[QoSProfile], image: bool) -> QoSProfile:
    """QoS that matches every publisher: transient-local only when all publishers latch (to get their last message),
    best-effort when any publisher is (a reliable subscription would not match it)."""
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    best_effort = image or any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1 if latched else (5 if image else 100),
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class Recorder(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("recorder", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        p = ros_params.values(self, self._specs)
        out = (
            Path(p["out"]).expanduser()
            if p["out"]
            else run_dir("recordings") / datetime.now().strftime("agra_%Y%m%d_%H%M%S")
        )
        self.bag = BagWriter(out)  # raises RecordingError when it exists: never overwrite a recording
        for item in p["metadata"]:
            if item:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise RecordingError(f"metadata item {item!r} is not key=value")
                self.bag.set_metadata(key.strip(), value.strip())
        self._wanted = {self.resolve_topic_name(t): t for t in p["topics"] if t}
        self._last_image: dict[str, float] = {}
        self._image_topics: set[str] = set()
        self._subs: dict = {}
        self.done = False
        self._t0 = time.monotonic()
        self._discover()
        self.create_timer(1.0, self._discover)
        self.get_logger().info(
            f"recording {len(self._wanted)} topics into {self.bag.path} (images at most {p['image_rate_hz']:g} Hz"
            + (f", for {p['duration']:g} s)" if p["duration"] > 0 else ", until Ctrl-C)")
        )

    def _discover(self) -> None:
        """Subscribe to every wanted topic that has appeared, with its type and a QoS its publishers match."""
        duration = float(self.get_parameter("duration").value)
        if duration > 0 and time.monotonic() - self._t0 >= duration:
            self.done = True
            return
        for topic, types in self.get_topic_names_and_types():
            if topic not in self._wanted or topic in self._subs:
                continue
            if len(types) != 1:
                self.get_logger().warning(f"{topic} has {len(types)} types {types}: not recorded")
                self._subs[topic] = None
                continue
            msgtype = types[0]
            image = msgtype in IMAGE_TYPES
            try:
                self.bag.add_topic(topic, msgtype)
                cls = _message_class(msgtype)
            except (RecordingError, ImportError, AttributeError, ValueError) as exc:
                self.get_logger().error(f"cannot record {topic} ({msgtype}): {exc}")
                self._subs[topic] = None
                continue
            offered = [i.qos_profile for i in self.get_publishers_info_by_topic(topic)]
            if image:
                self._image_topics.add(topic)
            self._subs[topic] = self.create_subscription(
                cls, topic, lambda data, t=topic: self._write(t, data), subscription_qos(offered, image), raw=True
            )
            self.get_logger().info(f"recording {topic} ({msgtype})")

    def _write(self, topic: str, data: bytes) -> None:
        now = time.monotonic()
        if topic in self._image_topics:
            rate = float(self.get_parameter("image_rate_hz").value)
            if rate <= 0 or now - self._last_image.get(topic, -1e9) < 1.0 / rate:
                return
            self._last_image[topic] = now
        self.bag.write(topic, time.time_ns(), data)

    def destroy_node(self) -> None:
        """Close the recording (summary + metadata.yaml): without this the MCAP file is truncated."""
        try:
            self.bag.close()
            counts = ", ".join(f"{t} {n}" for t, n in sorted(self.bag.counts.items()))
            self.get_logger().info(f"recording closed: {self.bag.path} ({counts or 'no messages'})")
        finally:
            super().destroy_node()


def _message_class(msgtype: str):
    """The rclpy message class of ``pkg/msg/Name``."""
    import importlib

    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def main(args: list[str] | None = None) -> None:
    spin_node("recorder", Recorder, startup_errors=(RecordingError,), args=args)


if __name__ == "__main__":
    main()
