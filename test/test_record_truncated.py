"""A recording cut short (a robot that lost power mid-run: an MCAP without its summary and footer, maybe with its
last chunk half written) is reported up to the cut, and the report says where it ends (issue 23, bad input)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_record import write_run

from agra_ros.record.bag import RecordingError
from agra_ros.record.replay import messages, open_recording
from agra_ros.record.report import main, replay

MAGIC = b"\x89MCAP0\r\n"


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> Path:
    """Twelve minutes of a steady run: two chunks (rosbags closes one at 1 MiB)."""
    path = write_run(tmp_path_factory.mktemp("rec") / "long", fps=10.0, power_w=4.0, seconds=720, algorithm="agra")
    return path / "long.mcap"


def _whole_before(mcap: Path, cut: int) -> int:
    """How many messages of the whole file ``mcap`` lie entirely before byte ``cut``: from the file's own index,
    read by the mcap library (an independent reader), for uncompressed chunks."""
    from mcap.reader import make_reader

    data = mcap.read_bytes()
    with open(mcap, "rb") as f:
        summary = make_reader(f).get_summary()
    n = 0
    for chunk in summary.chunk_indexes:
        assert chunk.compression == ""
        records = chunk.chunk_start_offset + 9 + 28 + 4 + 8  # record head, fixed fields, "" compression, length
        for offset in chunk.message_index_offsets.values():
            # a MessageIndex record: opcode, length, channel id (u16), then (log time, offset) pairs (u32 length)
            (length,) = struct.unpack_from("<I", data, offset + 9 + 2)
            pairs = struct.iter_unpack("<QQ", data[offset + 15 : offset + 15 + length])
            for _, at in pairs:
                (size,) = struct.unpack_from("<Q", data, records + at + 1)
                n += records + at + 9 + size <= cut
    return n


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level chunk record."""
    pos, out = len(MAGIC), []
    while pos + 9 <= len(data):
        op, n = struct.unpack_from("<BQ", data, pos)
        if op == 0x06:
            out.append((pos, pos + 9 + n))
        pos += 9 + n
    return out


def _cut(src: Path, folder: Path, n: int) -> Path:
    dst = folder / f"cut_{n}.mcap"
    dst.write_bytes(src.read_bytes()[:n])
    return dst


def test_a_recording_cut_short_gives_every_whole_message_before_the_cut_and_says_where_it_ends(long_run, tmp_path):
    whole = list(messages(long_run))
    data = long_run.read_bytes()
    (_, end1), (start2, end2) = _chunks(data)
    # at 60 % (inside the first chunk), right after the first chunk, inside the second, in the summary
    for n in (int(0.6 * len(data)), start2, (start2 + end2) // 2, len(data) - 30):
        cut = _cut(long_run, tmp_path, n)
        rec = open_recording(cut)
        got = list(messages(cut))
        expect = _whole_before(long_run, n)
        assert 0 < len(got) == expect and [(t, s) for t, s, _ in got] == [(t, s) for t, s, _ in whole[:expect]]
        assert sum(count for _, count in rec.topics.values()) == len(got)
        assert repr(got[-1][2]) == repr(whole[len(got) - 1][2])  # decoded alike, from the definitions the file holds
        assert rec.truncated.startswith(f"truncated at byte {n} (no MCAP footer")
        last_s = (got[-1][1] - got[0][1]) / 1e9
        assert f"{len(got)} messages recovered, the last {last_s:.1f} s after the first" in rec.truncated
        assert rec.duration_s == pytest.approx(last_s)
    assert expect == len(whole)  # cut in the summary: every message is there, and it says so
    assert "every message is there" in rec.truncated


def test_the_report_reports_a_cut_recording_up_to_the_cut(long_run, tmp_path, capsys):
    data = long_run.read_bytes()
    (_, end1), (start2, end2) = _chunks(data)
    cut = _cut(long_run, tmp_path, (start2 + end2) // 2)  # a point inside the second chunk
    run = replay(cut, warmup_s=2.0)
    assert run.algorithm == "rule"  # from the policy's diagnostics: a bare MCAP has no metadata.yaml
    span = open_recording(cut).duration_s  # the first feedback to the last message before the cut
    assert 60 < span < 719  # a cut inside the second chunk: less than the whole 12 minutes
    assert run.record.t[-1] - run.record.t[0] == pytest.approx(span - 2.0, abs=0.5)  # sampled up to the cut
    out = tmp_path / "out"
    assert main([str(cut), "--out", str(out), "--warmup", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"truncated at byte {(start2 + end2) // 2}" in printed and "messages recovered" in printed
    summary = (out / "rule" / "summary.md").read_text()
    assert "truncated at byte" in summary and (out / "rule" / "run.png").is_file()
    # a rosbag2 folder with its metadata.yaml and an MCAP cut short reads the same way, its metadata kept
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "metadata.yaml").write_bytes((long_run.parent / "metadata.yaml").read_bytes())
    (folder / long_run.name).write_bytes(data[: int(0.6 * len(data))])
    rec = open_recording(folder)
    assert rec.truncated.startswith("truncated at byte") and rec.metadata["algorithm"] == "agra"


def test_a_file_cut_inside_its_header_or_before_any_message_is_one_clear_error(long_run, tmp_path, capsys):
    for n, why in ((5, "inside the MCAP header"), (30, "inside the MCAP header"), (60, "no whole message")):
        cut = _cut(long_run, tmp_path, n)
        with pytest.raises(RecordingError, match=f"cut_{n}.mcap: .*{why}"):
            open_recording(cut)
        assert main([str(cut), "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"cut_{n}.mcap" in err and why in err
    assert not (tmp_path / "out").exists()


def test_compressed_chunks_are_read_as_far_as_their_bytes_go(tmp_path):
    """zstd chunks (``ros2 bag record --compression-mode storage``): the first whole, the cut one to its last whole
    compressed block."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    string = store.types["std_msgs/msg/String"]
    writer = Writer(tmp_path / "z", version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        conn = writer.add_connection("/text", "std_msgs/msg/String", typestore=store)
        for i in range(12_000):  # 12,000 x ~170 bytes: two chunks, the first of eight 128 KiB zstd blocks
            text = f"{i:06d} " + "".join(chr(65 + (i * 7 + k * 13) % 26) for k in range(120))
            writer.write(conn, i * 10**6, store.serialize_cdr(string(data=text), "std_msgs/msg/String"))
    mcap = tmp_path / "z" / "z.mcap"
    data = mcap.read_bytes()
    (_, end1), (start2, end2) = _chunks(data)
    whole = list(messages(mcap))
    first = sum(1 for _ in messages(_cut(mcap, tmp_path, end1)))
    got = list(messages(_cut(mcap, tmp_path, (start2 + end2) // 2)))
    assert first < len(got) < len(whole)
    assert [m.data for _, _, m in got] == [m.data for _, _, m in whole[: len(got)]]
