"""Long commands show progress with the time left (agra_ros.progress): a live bar on a terminal, a plain line at a
modest period elsewhere, never a flood, and the bar changes nothing it counts."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
import tqdm.std

from agra_ros.progress import ENV, MIN_LOG_INTERVAL_S, advance_to, clock, progress, progress_mode


class FakeClock:
    """tqdm's clock, moved by the test: elapsed times and the time left come out exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(tqdm.std, "time", c)  # the clock every tqdm created from here on reads
    monkeypatch.delenv(ENV, raising=False)
    return c


def test_off_a_terminal_lines_report_total_elapsed_and_eta(fake_clock):
    out = io.StringIO()
    for _ in progress(range(6), desc="evaluate-ssd: configurations", unit="cfg", file=out, period_s=5):
        fake_clock.now += 10.0  # each configuration takes 10 s
    lines = out.getvalue().splitlines()
    assert lines[0] == "evaluate-ssd: configurations: 0/6 cfg (0 %), elapsed 00:00, ETA ?"
    # after two of six at 10 s each: 20 s spent, 40 s left
    assert "evaluate-ssd: configurations: 2/6 cfg (33 %), elapsed 00:20, ETA 00:40" in lines
    assert lines[-1] == "evaluate-ssd: configurations: 6/6 cfg (100 %), elapsed 01:00, ETA 00:00"
    assert "\r" not in out.getvalue()  # no redraws in a log


def test_off_a_terminal_it_never_floods(fake_clock):
    out = io.StringIO()
    bar = progress(total=600, desc="train-policy agra", unit="step", file=out, period_s=0.0)  # asks for too often
    for _ in range(600):
        fake_clock.now += 0.1  # 60 s in all
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) <= 60 / MIN_LOG_INTERVAL_S + 2, lines  # one per 5 s at most, plus the first and the last
    assert lines[-1].startswith("train-policy agra: 600/600 step (100 %)")


def test_the_mode_follows_the_stream_unless_the_environment_names_one(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv(ENV, raising=False)
    assert progress_mode(io.StringIO()) == "log"
    assert progress_mode(Tty()) == "bar"
    monkeypatch.setenv(ENV, "off")
    out = io.StringIO()
    assert list(progress(range(3), desc="quiet", file=out)) == [0, 1, 2]
    assert out.getvalue() == ""
    monkeypatch.setenv(ENV, "log")
    assert progress_mode(Tty()) == "log"


def test_a_live_run_is_counted_in_seconds_and_ends_at_its_planned_length(fake_clock):
    out = io.StringIO()
    bar = progress(total=20, desc="bench paper live", unit="s", file=out)
    with clock(bar, 10, every_s=0.01):
        time.sleep(0.05)  # ended early: the bar still stands at the run's planned end
    assert bar.n == 10
    advance_to(bar, 5)  # never back
    assert bar.n == 10
    bar.close()


def test_train_policy_shows_its_steps_and_eta_on_stderr_and_learns_the_same(tmp_path, capsys, monkeypatch):
    from agra_ros.training.policy import SHIPPED_ENV, TRAIN_TRACES, main, train_bandit

    monkeypatch.delenv(ENV, raising=False)
    assert main(["--algorithm", "bandit", "--steps", "2000", "--run", str(tmp_path)]) == 0
    err = capsys.readouterr().err  # not a terminal: plain lines
    assert re.search(r"^train-policy bandit: 0/2000 step \(0 %\), elapsed 00:00, ETA \?$", err, re.M), err
    assert re.search(r"^train-policy bandit: 2000/2000 step \(100 %\), elapsed \d\d:\d\d, ETA 00:00$", err, re.M), err
    seen: list[int] = []
    with_bar, returns = train_bandit(500, 3, on_step=seen.append, **SHIPPED_ENV)
    without, returns_without = train_bandit(500, 3, **SHIPPED_ENV)
    # one call per training trace, the remainder spread over the first ones, reaching exactly the steps asked
    assert seen == list(
        np.cumsum([500 // len(TRAIN_TRACES) + (i < 500 % len(TRAIN_TRACES)) for i in range(len(TRAIN_TRACES))])
    )
    assert seen[-1] == 500
    assert (with_bar.q == without.q).all() and (with_bar.counts == without.counts).all() and returns == returns_without
