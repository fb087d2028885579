"""`agra-ros bench soak`: a very short soak of the light demo graph (synthetic camera and detector) writes its
samples, plot and summary, samples every node process, and no node dies."""

from __future__ import annotations

import csv

import pytest

from agra_ros.bench import soak_bench


def test_parse_set():
    assert soak_bench.parse_set(["perception.detector=synthetic", "camera_source.fps=15", "policy.learning=false"]) == {
        "perception": {"detector": "synthetic"},
        "camera_source": {"fps": 15},
        "policy": {"learning": False},
    }
    for bad in ("perception", "detector=synthetic", ".x=1"):
        with pytest.raises(ValueError):
            soak_bench.parse_set([bad])


@pytest.mark.slow
@pytest.mark.ros
def test_short_soak_of_the_light_graph(tmp_path, capsys):
    out = tmp_path / "soak"
    rc = soak_bench.main(
        [
            "--minutes",
            "0.5",
            "--interval",
            "1",
            "--warmup",
            "10",
            "--out",
            str(out),
            "--set",
            "camera_source.source=synthetic",
            "--set",
            "camera_source.trace=default",
            "--set",
            "perception.detector=synthetic",
        ]
    )
    printed = capsys.readouterr().out
    logs = {p.name: p.read_text()[-3000:] for p in (out / "logs").glob("*.log")}
    assert rc == 0, f"a node died:\n{printed}\n{logs}"
    for name in ("samples.csv", "rss.png", "summary.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    processes = {r["process"] for r in rows}
    assert {"camera_source", "device_monitor", "perception", "policy"} <= processes, processes
    assert all(float(r["rss_mb"]) > 0 for r in rows)
    per_node = {p: sum(1 for r in rows if r["process"] == p) for p in ("camera_source", "perception", "policy")}
    assert min(per_node.values()) >= 20, per_node  # a sample a second for 30 s
    assert "0 death(s)" in printed
