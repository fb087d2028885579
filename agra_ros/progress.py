"""Progress with an estimate of the time left, one rule for every long command (train-policy, the benches,
evaluate-ssd, distill-detector, profile-ssd, calibrate-agreement).

On a terminal: a live tqdm bar on stderr (done/total, elapsed<time left, rate). Elsewhere (CI logs, a pipe, a file):
no animated bar, but one plain line ``desc: done/total unit (pct %), elapsed 01:02, ETA 03:04`` at most every
:data:`LOG_PERIOD_S` seconds (never more often than every :data:`MIN_LOG_INTERVAL_S`), plus the first and the last,
so a log shows progress without being flooded. ``AGRA_PROGRESS=bar|log|off`` overrides the choice. The time left
is the remaining count at the average rate since the start. A bar only observes what it counts: it draws no
random numbers and changes no result.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm

ENV = "AGRA_PROGRESS"
"""Environment variable that overrides the mode: ``bar`` (live bar even in a pipe), ``log`` (lines even on a
terminal) or ``off``."""
MODES: tuple[str, ...] = ("bar", "log", "off")
LOG_PERIOD_S = 30.0
"""Seconds between two progress lines when stderr is not a terminal."""
MIN_LOG_INTERVAL_S = 5.0
"""The shortest period a caller may ask for when not on a terminal."""
BAR_INTERVAL_S = 0.5
"""Seconds between two redraws of a live bar."""
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f} %), elapsed {elapsed}, ETA {remaining}{postfix}"
LOG_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit}, elapsed {elapsed}{postfix}"


def progress_mode(file: IO[str] | None = None) -> str:
    """``bar`` on a terminal, ``log`` elsewhere, unless :data:`ENV` names a mode."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in MODES:
        return forced
    isatty = getattr(file or sys.stderr, "isatty", None)
    try:
        return "bar" if callable(isatty) and isatty() else "log"
    except (OSError, ValueError):  # a closed or odd stream
        return "log"


class _Lines:
    """A file for tqdm that turns each redraw (``\\r`` + text) into one line, and drops a repeat of the last."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line and line != self.last:
            self.out.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        flush = getattr(self.out, "flush", None)
        if callable(flush):
            flush()


def progress(
    iterable: Iterable[Any] | None = None,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    *,
    initial: float = 0,
    period_s: float = LOG_PERIOD_S,
    mode: str | None = None,
    file: IO[str] | None = None,
) -> tqdm:
    """A tqdm over ``iterable`` (or a manual one to :meth:`~tqdm.tqdm.update`) that follows the module's rule.

    ``total`` defaults to ``len(iterable)``; ``initial`` is work done before (a resumed run), which the time left
    does not count as this run's rate; ``period_s`` is the line period off a terminal (at least
    :data:`MIN_LOG_INTERVAL_S`); ``mode`` and ``file`` (default stderr) are for tests and callers that must force
    one."""
    out = file if file is not None else sys.stderr
    mode = mode or progress_mode(out)
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r} is not one of {MODES}")
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    common: dict[str, Any] = {
        "total": total,
        "desc": desc,
        "unit": unit,
        "initial": initial,
        "smoothing": 0.0,  # the average rate since the start: a steadier time left than a moving average
        "disable": mode == "off",
    }
    if mode == "bar":
        return tqdm(iterable, file=out, mininterval=BAR_INTERVAL_S, dynamic_ncols=True, **common)
    period = max(MIN_LOG_INTERVAL_S, float(period_s))
    return tqdm(
        iterable,
        file=_Lines(out),
        mininterval=period,
        maxinterval=max(period, 10.0),
        miniters=1,
        bar_format=LOG_FORMAT if total else LOG_FORMAT_NO_TOTAL,
        **common,
    )


def advance_to(bar: tqdm, n: float) -> None:
    """Move ``bar`` forward to ``n`` done (never back): for counts read off the work itself (a trainer's step)."""
    if n > bar.n:
        bar.update(n - bar.n)


def echo(text: str) -> None:
    """Print a line on stdout without tearing a live bar on the terminal."""
    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


@contextmanager
def clock(bar: tqdm, seconds: float, every_s: float = 1.0) -> Iterator[tqdm]:
    """Count ``bar`` (in seconds) forward with the wall clock through a stretch planned to last ``seconds`` (a live
    run that blocks), from a background thread that only reads the time; on leaving, the bar stands at the
    stretch's end whether it ended early or late."""
    start, t0, stop = int(bar.n), time.monotonic(), threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            advance_to(bar, start + int(min(seconds, time.monotonic() - t0)))

    thread = threading.Thread(target=tick, name="progress-clock", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
        advance_to(bar, start + int(seconds))
