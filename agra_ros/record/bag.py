"""Writing rosbag2 recordings (MCAP storage) of already-serialised ROS 2 messages, with rosbags.

Core code: no rclpy. The recorder node hands in CDR bytes exactly as they came off DDS (``raw=True``
subscriptions), so nothing is deserialised and re-encoded on the robot. rosbags writes a rosbag2 folder
(``metadata.yaml`` + ``<name>.mcap``) that ``ros2 bag info/play`` and Foxglove open; every connection carries its
full message definition, so :mod:`agra_ros.record.replay` (and any MCAP reader) decodes it with no ROS install.

Message definitions come from rosbags' built-in Jazzy type store (std_msgs, sensor_msgs, diagnostic_msgs,
visualization_msgs, ...); types it lacks (this package's msg/, vision_msgs where installed) are read from the
``.msg`` files of the installation and registered with their dependencies.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from agra_ros.paths import share_dir


class RecordingError(RuntimeError):
    """A recording cannot be written or read; the message names the file."""


def _share_roots() -> list[Path]:
    """Folders that may hold ``<package>/msg/<Type>.msg``: this package's, the venv's, every ament prefix."""
    roots = [share_dir().parent, Path(sys.prefix) / "share"]
    roots += [Path(p) / "share" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return roots


def _msg_file(msgtype: str) -> Path | None:
    """The ``.msg`` file of ``pkg/msg/Name`` in this installation, if any."""
    pkg, _, name = msgtype.split("/")
    if pkg == "agra_ros":  # the source tree keeps msg/ at the top, next to config/
        own = share_dir() / "msg" / f"{name}.msg"
        if own.is_file():
            return own
    for root in _share_roots():
        cand = root / pkg / "msg" / f"{name}.msg"
        if cand.is_file():
            return cand
    return None


def register_type(store: Typestore, msgtype: str, _seen: set[str] | None = None) -> None:
    """Make ``msgtype`` (``pkg/msg/Name``) and its dependencies known to ``store``.

    Raises :class:`RecordingError` when a definition is found nowhere (the topic cannot be recorded faithfully).
    """
    seen = _seen if _seen is not None else set()
    if msgtype in store.fielddefs or msgtype in seen:
        return
    seen.add(msgtype)
    path = _msg_file(msgtype)
    if path is None:
        raise RecordingError(f"no message definition for {msgtype} in {', '.join(map(str, _share_roots()))}")
    types = get_types_from_msg(path.read_text(), msgtype)
    for _, fields in types.values():
        for _, desc in fields:
            for dep in _nested_types(desc):
                if "/" in dep:
                    register_type(store, dep if "/msg/" in dep else dep.replace("/", "/msg/", 1), seen)
    store.register(types)


def _nested_types(desc: object) -> list[str]:
    """Type names referenced by a rosbags field description (nested message, or array/sequence of one)."""
    out: list[str] = []
    if isinstance(desc, tuple) and len(desc) == 2:
        kind, rest = desc
        if getattr(kind, "name", "") == "NAME" and isinstance(rest, str):
            out.append(rest)
        elif isinstance(rest, tuple):
            out += _nested_types(rest[0] if rest and isinstance(rest[0], tuple) else rest)
    return out


def typestore() -> Typestore:
    """A Jazzy type store; further types are registered on demand by :func:`register_type`."""
    return get_typestore(Stores.ROS2_JAZZY)


@dataclass
class BagWriter:
    """One rosbag2 recording with MCAP storage; topics are added as they are discovered.

    ``path`` is the recording's folder (it must not exist yet: a recording is never overwritten).
    """

    path: Path
    store: Typestore = field(default_factory=typestore)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.exists():
            raise RecordingError(f"{self.path} exists already; a recording is never overwritten")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._conns: dict[str, object] = {}

    @property
    def mcap_file(self) -> Path:
        return self.path / f"{self.path.name}.mcap"

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Register ``topic`` of ``msgtype`` (``pkg/msg/Name``); no-op when it is known already."""
        if topic in self._conns:
            return
        register_type(self.store, msgtype)
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.store)
        self.counts[topic] = 0

    def has_topic(self, topic: str) -> bool:
        return topic in self._conns

    def set_metadata(self, key: str, value: str) -> None:
        """A custom key of metadata.yaml (the run's algorithm, trace, command line)."""
        self._writer.set_custom_data(f"agra_ros.{key}", str(value))

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        self._writer.write(self._conns[topic], int(stamp_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Write the MCAP summary and metadata.yaml; a recording is only complete after this."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
