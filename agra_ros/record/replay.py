"""Reading a recording back (a rosbag2 folder or its ``.mcap`` file) with rosbags, no ROS install needed.

Every failure is a :class:`~agra_ros.record.bag.RecordingError` that names the file: missing, not a recording,
corrupt, or lacking the topics a caller needs. A recording cut short (an MCAP without its summary and footer, as a
recorder killed or a robot that lost power leaves it) is read up to the cut (:mod:`agra_ros.record.salvage`) and
says so: :attr:`Recording.truncated` tells where it ends; one cut inside its header is an error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from agra_ros.record.bag import RecordingError
from agra_ros.record.salvage import Salvage, salvage, typestore_of

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclass
class Recording:
    """What a recording holds: its topics (type, message count), its metadata and its time span."""

    path: Path
    topics: dict[str, tuple[str, int]] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    truncated: str = ""
    """Where a recording cut short ends and what it still held (:meth:`Salvage.where_it_ends`); "" when whole."""

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9)

    def find(self, key: str) -> str | None:
        """The recorded topic whose name is ``key`` or ends with ``/key`` (any namespace)."""
        for t in self.topics:
            if t == key or t.endswith("/" + key.lstrip("/")):
                return t
        return None

    def require(self, keys: Sequence[str]) -> None:
        """Raise :class:`RecordingError` naming the file and the missing topics unless all ``keys`` have messages."""
        missing = [k for k in keys if (t := self.find(k)) is None or self.topics[t][1] == 0]
        if missing:
            held = ", ".join(f"{t} ({n})" for t, (_, n) in sorted(self.topics.items())) or "nothing"
            raise RecordingError(f"{self.path}: no messages on {', '.join(missing)}; the recording holds {held}")


def _resolve(path: Path) -> Path:
    """The path rosbags should open: a rosbag2 folder with metadata.yaml, else the MCAP file itself."""
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such recording")
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return path
        mcaps = sorted(path.glob("*.mcap"))
        if len(mcaps) == 1:
            return mcaps[0]
        raise RecordingError(f"{path}: a folder without metadata.yaml and with {len(mcaps)} .mcap files")
    if path.suffix != ".mcap":
        raise RecordingError(f"{path}: not an MCAP file (expected a .mcap file or a rosbag2 folder)")
    return path


def find_recordings(path: Path | str) -> list[Path]:
    """The recordings a path holds: itself when it is one (a rosbag2 folder or an .mcap file), else every
    recording in the folders below it (a bench run's ``<algorithm>/recording/`` folders, a folder of runs).

    A folder is one recording when it has metadata.yaml or exactly one .mcap file; the search does not descend into
    a recording. Raises :class:`RecordingError` when the path does not exist or holds none."""
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such recording or folder")
    if not path.is_dir():
        _resolve(path)
        return [path]
    if (path / "metadata.yaml").is_file() or len(list(path.glob("*.mcap"))) == 1:
        return [path]
    found = [f for f in sorted(path.glob("*.mcap"))]  # several loose MCAP files: each its own recording
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        try:
            found += find_recordings(sub)
        except RecordingError:
            continue
    if not found:
        raise RecordingError(f"{path}: no recordings in this folder or below (rosbag2 folders or .mcap files)")
    return found


def _metadata(path: Path) -> dict[str, str]:
    """The recorder's custom keys (``agra_ros.*``) of metadata.yaml, when the recording is a rosbag2 folder."""
    meta = path / "metadata.yaml" if path.is_dir() else path.parent / "metadata.yaml"
    if not meta.is_file():
        return {}
    import yaml

    try:
        info = (yaml.safe_load(meta.read_text()) or {}).get("rosbag2_bagfile_information", {})
    except yaml.YAMLError as exc:
        raise RecordingError(f"{meta}: unreadable metadata: {exc}") from None
    custom = info.get("custom_data") or {}
    return {str(k).removeprefix("agra_ros."): str(v) for k, v in custom.items()}


def _salvaged(path: Path | str, src: Path, exc: Exception, keep=lambda msgtype: False) -> Salvage:
    """What the MCAP file of a recording rosbags refused (``exc``) holds up to its cut; a RecordingError when it is
    not cut short but corrupt, or holds no whole message."""
    mcaps = sorted(src.glob("*.mcap")) if src.is_dir() else [src]
    refused = f"{path}: unreadable recording (truncated or corrupt?): {type(exc).__name__}: {exc}"
    if len(mcaps) != 1:
        raise RecordingError(refused)
    try:
        found = salvage(mcaps[0], keep)
    except ValueError as why:
        raise RecordingError(f"{path}: truncated or corrupt recording: {why}") from None
    if found.footer:  # it ends as a whole file does: damaged, not cut short
        raise RecordingError(refused)
    if not found.messages:
        raise RecordingError(f"{path}: {found.where_it_ends()}: nothing to report")
    return found


def open_recording(path: Path | str) -> Recording:
    """Inspect a recording (topics, counts, span) without decoding messages; one cut short is read to its cut."""
    src = _resolve(Path(path))
    rec = Recording(Path(path), metadata=_metadata(src))
    try:
        with AnyReader([src]) as reader:
            for c in reader.connections:
                _, n = rec.topics.get(c.topic, (c.msgtype, 0))
                rec.topics[c.topic] = (c.msgtype, n + c.msgcount)
            rec.start_ns, rec.end_ns = reader.start_time, reader.end_time
    except RecordingError:
        raise
    except Exception as exc:  # rosbags raises several types for truncated/corrupt files; all mean the same here
        found = _salvaged(path, src, exc)
        counts = Counter(found.channels[cid][0] for _, cid, _ in found.messages)
        rec.topics = {topic: (found.msgtype(cid), counts[topic]) for cid, (topic, _) in found.channels.items()}
        rec.start_ns, rec.end_ns = min(m[0] for m in found.messages), max(m[0] for m in found.messages)
        rec.truncated = found.where_it_ends()
    if not rec.topics:
        raise RecordingError(f"{path}: the recording holds no topics")
    if rec.end_ns < rec.start_ns or math.isinf(rec.duration_s):
        rec.start_ns = rec.end_ns = 0
    return rec


def messages(path: Path | str, skip_images: bool = True) -> Iterator[tuple[str, int, Any]]:
    """(topic, log time ns, decoded message) in time order; images are skipped unless asked for (they are large
    and no table needs them). Decoding errors raise :class:`RecordingError` naming the file and topic."""
    src = _resolve(Path(path))
    try:
        reader = AnyReader([src])
        reader.open()
    except Exception as exc:  # cut short: what it holds up to the cut (open_recording said so)
        yield from _salvaged_messages(path, src, exc, skip_images)
        return
    try:
        conns = [c for c in reader.connections if not (skip_images and c.msgtype in IMAGE_TYPES)]
        for conn, stamp, raw in reader.messages(connections=conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:
                raise RecordingError(
                    f"{path}: a {conn.msgtype} message on {conn.topic} does not decode: {exc}"
                ) from None
            yield conn.topic, int(stamp), msg
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(
            f"{path}: unreadable recording (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None
    finally:
        reader.close()


def _salvaged_messages(
    path: Path | str, src: Path, exc: Exception, skip_images: bool
) -> Iterator[tuple[str, int, Any]]:
    """:func:`messages` of a recording cut short: its whole messages up to the cut, in time order."""
    found = _salvaged(path, src, exc, keep=lambda msgtype: not (skip_images and msgtype in IMAGE_TYPES))
    try:
        store = typestore_of(found.schemas)
    except Exception as why:  # noqa: BLE001 - a definition rosbags cannot parse: the file's, not ours
        raise RecordingError(f"{path}: its message definitions do not parse: {why}") from None
    for stamp, cid, raw in sorted((m for m in found.messages if m[2] is not None), key=lambda m: m[0]):
        topic, msgtype = found.channels[cid][0], found.msgtype(cid)
        try:
            msg = store.deserialize_cdr(raw, msgtype)
        except Exception as why:
            raise RecordingError(f"{path}: a {msgtype} message on {topic} does not decode: {why}") from None
        yield topic, int(stamp), msg
