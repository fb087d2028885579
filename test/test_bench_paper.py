"""`agra-ros bench paper` live: the whole graph per algorithm, recorded, the table built from the recordings; a node
that dies ends it with an error naming the node, and no table."""

from __future__ import annotations

import logging

import pytest

from agra_ros.bench.paper_bench import live_main
from agra_ros.record.replay import open_recording

pytestmark = pytest.mark.ros


def test_live_paper_bench_builds_the_table_from_its_recordings(tmp_path, capsys):
    out = tmp_path / "paper"
    argv = ["--duration", "6", "--warmup", "2", "--startup", "20", "--source", "synthetic", "--out", str(out)]
    assert live_main([*argv, "--algorithms", "static", "rule"]) == 0
    text = (out / "paper_table.md").read_text()
    assert "| static |" in text and "| rule |" in text and "model:" in text  # the power source is named
    assert "| agra / rule |" in text  # the ratio rows exist even when agra did not run (shown as n/a)
    for alg in ("static", "rule"):
        rec = open_recording(out / alg / "recording")
        assert rec.metadata["algorithm"] == alg
        for topic in ("/agra/feedback", "/agra/granularity", "/diagnostics", "/agra/target_fps", "/detections"):
            assert rec.topics.get(topic, ("", 0))[1] > 0, f"{alg}: nothing on {topic}: {rec.topics}"
        assert (out / alg / "run.png").is_file()
    assert (out / "paper_compare.png").stat().st_size > 10_000
    assert "static" in capsys.readouterr().out


def test_a_node_that_dies_ends_the_bench_without_a_table(tmp_path, caplog):
    out = tmp_path / "paper"
    argv = ["--duration", "5", "--algorithms", "static", "--device-profile", "no_such_device", "--out", str(out)]
    with caplog.at_level(logging.ERROR, logger="agra_ros.results.paper_table"):
        assert live_main([*argv, "--source", "synthetic"]) == 1
    assert any("died during the run" in r.message and "log:" in r.message for r in caplog.records), caplog.text
    assert not (out / "paper_table.md").exists()
