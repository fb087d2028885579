"""What an MCAP recording cut short still holds, read as a stream from its start.

A recorder that loses power or is killed with SIGKILL leaves an MCAP file without its summary and footer, and may
leave its last chunk half written. rosbags (like any indexed MCAP reader) refuses such a file as a whole, though
everything before the cut is intact. :func:`salvage` reads the data section record by record (the MCAP format:
an opcode byte, a little-endian u64 length, the content) and stops at the first record that is not whole; a chunk
cut in the middle gives the whole records it holds, decompressed as far as its bytes go (uncompressed chunks to
the last whole message; zstd and lz4 ones to the last whole compressed block). What it returns says where the
file ends.

Core code: no ROS. Messages stay CDR bytes; :func:`typestore_of` builds the rosbags type store that decodes them from
the message definitions the file embeds, as rosbags does for a whole file.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MAGIC = b"\x89MCAP0\r\n"
_HEADER, _FOOTER, _SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _DATA_END = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F
_IDL_SEPARATOR = "=" * 80 + "\n"


@dataclass
class Salvage:
    """The whole records found before the cut."""

    size: int
    """Bytes of the file."""
    data_end: bool = False
    """The data section's end was found: the cut went through the summary after it, every message is there."""
    footer: bool = False
    """The file ends as a whole MCAP file does (the closing magic): it is not cut short."""
    cut_chunk_messages: int = 0
    """Messages recovered from a chunk the cut went through."""
    schemas: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    """Schema id -> (message type, encoding, definition text)."""
    channels: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Channel id -> (topic, schema id)."""
    messages: list[tuple[int, int, bytes | None]] = field(default_factory=list)
    """(log time ns, channel id, CDR bytes or None where not kept) in file order."""

    def msgtype(self, channel: int) -> str:
        """The message type of a channel ("" for one without a schema)."""
        return self.schemas.get(self.channels[channel][1], ("", "", ""))[0]

    def where_it_ends(self) -> str:
        """One line for a report: that the file was cut short, where, and what was recovered up to the cut."""
        where = f", inside a chunk that gave {self.cut_chunk_messages} whole messages" * (self.cut_chunk_messages > 0)
        if self.data_end:
            where = ", in its summary after the end of its data: every message is there"
        told = f"truncated at byte {self.size} (no MCAP footer: the recorder never closed it){where}"
        if not self.messages:
            return f"{told}: no whole message before the cut"
        t0, t1 = min(m[0] for m in self.messages), max(m[0] for m in self.messages)
        last = datetime.fromtimestamp(t1 / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return (
            f"{told}: {len(self.messages)} messages recovered, the last {(t1 - t0) / 1e9:.1f} s after the first "
            f"(log time {last} UTC)"
        )


def _string(buf, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, at)
    return bytes(buf[at + 4 : at + 4 + n]).decode(), at + 4 + n


def _decompress(kind: str, data: bytes) -> bytes:
    """As much of a chunk's records as ``data`` (maybe cut short) decompresses to; b"" for an unknown compression."""
    if kind == "":
        return data
    try:
        if kind == "zstd":
            try:
                from compression import zstd  # Python 3.14
            except ImportError:
                from backports import zstd  # rosbags' own dependency
            return zstd.ZstdDecompressor().decompress(data)
        if kind == "lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor().decompress(data)
    except Exception:  # noqa: BLE001 - a damaged chunk: nothing of it is readable, the records before it are
        return b""
    return b""


def _scan(buf, pos: int, stop: int, out: Salvage, keep: Callable[[int], bool], in_chunk: bool = False) -> int:
    """Parse the whole records of ``buf[pos:stop]`` into ``out``; returns where the last whole one ends."""
    while pos + 9 <= stop:
        op, n = struct.unpack_from("<BQ", buf, pos)
        body, nxt = pos + 9, pos + 9 + n
        if nxt > stop:
            if op == _CHUNK and not in_chunk:
                before = len(out.messages)
                _chunk(buf, body, stop, out, keep)
                out.cut_chunk_messages = len(out.messages) - before
            return pos
        if op == _SCHEMA:
            (sid,) = struct.unpack_from("<H", buf, body)
            name, at = _string(buf, body + 2)
            encoding, at = _string(buf, at)
            (dlen,) = struct.unpack_from("<I", buf, at)
            out.schemas[sid] = (name, encoding, bytes(buf[at + 4 : at + 4 + dlen]).decode())
        elif op == _CHANNEL:
            cid, sid = struct.unpack_from("<HH", buf, body)
            topic, _ = _string(buf, body + 4)
            out.channels[cid] = (topic, sid)
        elif op == _MESSAGE:
            cid, _seq, log_time = struct.unpack_from("<HIQ", buf, body)
            if cid in out.channels:  # a channel always comes before its messages; one that did not is unreadable
                out.messages.append((log_time, cid, bytes(buf[body + 22 : nxt]) if keep(cid) else None))
        elif op == _CHUNK and not in_chunk:
            _chunk(buf, body, nxt, out, keep)
        elif op in (_DATA_END, _FOOTER) and not in_chunk:  # the summary after it repeats what came before
            out.data_end = True
            return nxt
        pos = nxt
    return pos


def _chunk(buf, body: int, stop: int, out: Salvage, keep: Callable[[int], bool]) -> None:
    """The records of the chunk whose content starts at ``body``, as far as ``stop`` (the chunk's end or the cut)."""
    at = body + 28  # message start and end time, uncompressed size (u64 each), uncompressed CRC (u32)
    if at + 4 > stop:
        return
    compression, at = _string(buf, at)
    if at + 8 > stop:
        return
    (length,) = struct.unpack_from("<Q", buf, at)
    records = _decompress(compression, bytes(buf[at + 8 : min(stop, at + 8 + length)]))
    _scan(records, 0, len(records), out, keep, in_chunk=True)


def salvage(path: Path, keep: Callable[[str], bool] = lambda msgtype: False) -> Salvage:
    """The schemas, channels and messages of the MCAP file ``path`` up to its first incomplete record; message
    bytes are kept for the message types ``keep`` accepts. Raises ValueError when the file does not start as an
    MCAP file (magic and a whole header record)."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size < len(MAGIC) + 9:
            raise ValueError(f"it ends at byte {size}, inside the MCAP header: nothing to recover")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[: len(MAGIC)] != MAGIC:
                raise ValueError("not an MCAP file (its first bytes are not the MCAP magic)")
            op, n = struct.unpack_from("<BQ", buf, len(MAGIC))
            start = len(MAGIC) + 9 + n
            if op != _HEADER or start > size:
                raise ValueError(f"it ends at byte {size}, inside the MCAP header: nothing to recover")
            out = Salvage(size, footer=buf[size - len(MAGIC) :] == MAGIC)
            kept: dict[int, bool] = {}

            def keep_channel(cid: int) -> bool:
                if cid not in kept:
                    kept[cid] = keep(out.msgtype(cid))
                return kept[cid]

            try:
                _scan(buf, start, size, out, keep_channel)
            except (struct.error, UnicodeDecodeError) as exc:  # a whole record that does not parse: damaged
                raise ValueError(f"a whole record does not parse (damaged, not only cut short): {exc}") from None
    return out


def typestore_of(schemas: dict[int, tuple[str, str, str]]) -> Typestore:
    """A type store of the definitions a file embeds (ROS 2 .msg or IDL), as rosbags' AnyReader builds it."""
    types: dict = {}
    for name, encoding, text in schemas.values():
        if encoding == "ros2msg":
            types.update(get_types_from_msg(text, name))
        elif encoding == "ros2idl":
            several = text.startswith(f"{_IDL_SEPARATOR}IDL: ")  # "IDL: <name>" line, then its IDL, for each
            for idl in [part.split("\n", 1)[1] for part in text.split(_IDL_SEPARATOR)[1:]] if several else [text]:
                types.update(get_types_from_idl(idl))
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    return store
