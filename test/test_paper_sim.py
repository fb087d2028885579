"""agra-ros bench paper sim: the AGRA paper's table in the simulator, small here (the real run: 500 inputs per
algorithm on every profile)."""

from __future__ import annotations

import csv

import pytest

from agra_ros.bench import paper_sim
from agra_ros.policy.registry import make_policy
from agra_ros.results.paper_table import ALGORITHMS
from agra_ros.sim.env import AgraEnv

PROFILE = "jetson_nano_5w"
ARGS = ["--profiles", PROFILE, "--inputs", "40", "--seed", "3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper_sim")
    assert paper_sim.main([*ARGS, "--out", str(out)]) == 0
    return out


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_writes_the_table_of_every_algorithm_and_the_summary(run):
    rows = _rows(run / f"paper_sim_{PROFILE}.csv")
    assert [r["algorithm"] for r in rows] == list(ALGORITHMS)
    for r in rows:
        assert int(r["samples"]) == 40 and r["power_source"] == f"model:{PROFILE}"
        assert (
            0.0 <= float(r["attainment"]) <= 1.0
            and float(r["power_w"]) > 0
            and float(r["system_energy_per_frame_j"]) > 0
        )
        assert float(r["power_p5"]) <= float(r["power_w"]) <= float(r["power_p95"])
    static = next(r for r in rows if r["algorithm"] == "static")
    assert float(static["accuracy"]) == pytest.approx(1.0)  # full everywhere is the accuracy reference
    md = (run / f"paper_sim_{PROFILE}.md").read_text()
    assert all(f"| {a} |" in md for a in ALGORITHMS) and "agra goal" in md and "oracle" in md
    summary = (run / "paper_sim.md").read_text()
    assert f"| {PROFILE} |" in summary and "| paper (Jetson Nano) |" in summary and "Goals met:" in summary
    assert (run / "paper_sim.png").stat().st_size > 10_000


def test_same_seed_gives_the_same_tables_another_seed_other_inputs(run, tmp_path):
    assert paper_sim.main([*ARGS, "--out", str(tmp_path / "again")]) == 0
    for name in (f"paper_sim_{PROFILE}.csv", f"paper_sim_{PROFILE}.md", "paper_sim.md"):
        assert (tmp_path / "again" / name).read_bytes() == (run / name).read_bytes(), name
    other = [*ARGS[:-1], "4", "--out", str(tmp_path / "other")]
    assert paper_sim.main(other) == 0
    assert (tmp_path / "other" / f"paper_sim_{PROFILE}.csv").read_bytes() != (
        run / f"paper_sim_{PROFILE}.csv"
    ).read_bytes()


def test_exactly_the_asked_inputs_across_episodes():
    env = AgraEnv(trace="heldout", device=PROFILE, allow_remote=False)
    n = env.settings.max_steps + 2
    seeds = paper_sim.episode_seeds(0, n, env.settings.max_steps)
    assert len(seeds) == 2 and seeds == paper_sim.episode_seeds(0, n, env.settings.max_steps)
    s = paper_sim.sample(make_policy("static", env=env), env, seeds, n)
    assert len(s.fps) == n and s.met.dtype == float


def test_an_unknown_profile_is_named_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        paper_sim.main(["--profiles", PROFILE, "no_such_board", "--inputs", "5", "--out", str(tmp_path / "out")])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "no_such_board" in err and PROFILE in err  # the bad name, and the known ones
    assert not (tmp_path / "out").exists()


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        paper_sim.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(opt in out for opt in ("--profiles", "--inputs", "--seed", "--trace", "--out", "--ship"))


def test_absent_baselines_are_trained_briefly_with_a_warning(tmp_path, monkeypatch, capsys):
    real = paper_sim.shipped_policy_path
    monkeypatch.setattr(paper_sim, "shipped_policy_path", lambda n: real(n) if n == "agra" else tmp_path / "none.pt")
    monkeypatch.setattr(paper_sim, "FALLBACK_STEPS", 320)
    assert paper_sim.main(["--profiles", PROFILE, "--inputs", "10", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "WARNING: no shipped a2c policy" in err and "WARNING: no shipped bandit policy" in err
    md = (tmp_path / "out" / f"paper_sim_{PROFILE}.md").read_text()
    assert "a2c: no shipped policy: trained here for 320 steps" in md
