"""Soak test: the demo graph for N minutes, the memory of every process sampled, deaths and error lines counted.

Starts the nodes ``agra-ros demo`` starts (camera_source, device_monitor, perception, policy: the same
config/agra.yaml and the same camera choice, real video where fetched) without the dashboard's live console, each
in its own process with its log in ``<out>/logs``. Every ``--interval`` seconds it samples the resident set size
(psutil) of each node process and of each process a node started (the policy's learner, multiprocessing helpers).
A node that exits before the end is a death: it is logged, its log kept as ``<node>.<n>.log`` and the node
started again (at most ``--max-restarts`` times), so the soak goes on; a child process whose pid changes (the
policy restarting its learner) is counted as a restart. At the end every node is stopped with SIGINT, as Ctrl-C
does, and each node's logs are searched for ERROR/FATAL lines and tracebacks (shutdown included).

Prints per process: RSS at start (median of the first samples after ``--warmup``), at end (median of the last
samples), growth in % (goal: below 5 %), deaths or restarts, and error lines; writes ``samples.csv`` (every
sample), ``rss.png`` (RSS over time per process) and ``summary.md`` into ``--out`` (runs/soak). Exit code 1 when
a node died, else 0. Run: ``agra-ros bench soak --minutes 30``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.contrib.logging import logging_redirect_tqdm

from agra_ros.launcher import Supervisor, node_command
from agra_ros.paths import config_file, run_dir
from agra_ros.progress import advance_to, progress

log = logging.getLogger("agra_ros.bench.soak")

ERROR_LINE = re.compile(r"\[(ERROR|FATAL)\]|\bERROR\b:|Traceback \(most recent call last\)")
"""A log line that counts as an error: a ROS ERROR/FATAL line, a Python logging ERROR line, a traceback."""

GROWTH_GOAL_PCT = 5.0
EDGE_SAMPLES = 5
"""RSS at start/end is the median of this many samples at each end of the measured span (one sample is noisy)."""


@dataclass
class Series:
    """RSS samples of one process label (a node, or ``node/child``)."""

    label: str
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    deaths: int = 0
    restarts: int = 0
    errors: int = 0


def parse_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """``node.param=value`` items -> {node: {param: value}}; values are YAML scalars (numbers, booleans, text)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise ValueError(f"--set wants node.param=value, got {item!r}")
        parsed = yaml.safe_load(value) if value else ""
        out.setdefault(node, {})[param] = parsed if isinstance(parsed, (str, int, float, bool)) else value
    return out


def _child_label(node: str, proc: Any, index: int) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:  # noqa: BLE001 - gone or not ours: a generic label
        cmd = ""
    if "resource_tracker" in cmd:
        return f"{node}/resource_tracker"
    if "multiprocessing" in cmd or "spawn" in cmd:
        return f"{node}/learner" if node == "policy" else f"{node}/worker{index}"
    return f"{node}/child{index}"


def sample(sup: Supervisor) -> dict[str, tuple[int, float]]:
    """{label: (pid, RSS in MiB)} of every running node process and the processes it started."""
    import psutil

    out: dict[str, tuple[int, float]] = {}
    for p in sup.procs:
        if p.popen is None or p.popen.poll() is not None:
            continue
        try:
            proc = psutil.Process(p.popen.pid)
            out[p.name] = (proc.pid, proc.memory_info().rss / 2**20)
            children = sorted(proc.children(recursive=True), key=lambda c: c.pid)
        except psutil.Error:
            continue
        for i, child in enumerate(children):
            try:
                label = _child_label(p.name, child, i)
                if label in out:
                    label = f"{label}{i}"
                out[label] = (child.pid, child.memory_info().rss / 2**20)
            except psutil.Error:
                continue
    return out


def count_errors(paths: list[Path]) -> int:
    n = 0
    for path in paths:
        if path.is_file():
            with open(path, errors="replace") as f:
                n += sum(1 for line in f if ERROR_LINE.search(line))
    return n


def _edge(values: list[float], first: bool) -> float:
    if not values:
        return math.nan
    part = values[:EDGE_SAMPLES] if first else values[-EDGE_SAMPLES:]
    return statistics.median(part)


def summarise(series: dict[str, Series], warmup_s: float) -> list[dict[str, Any]]:
    rows = []
    for s in series.values():
        measured = [r for t, r in zip(s.t, s.rss_mb) if t >= warmup_s]
        start, end = _edge(measured, True), _edge(measured, False)
        growth = (end - start) / start * 100.0 if start and not math.isnan(start) else math.nan
        rows.append(
            {
                "process": s.label,
                "rss_start_mb": start,
                "rss_end_mb": end,
                "growth_pct": growth,
                "deaths": s.deaths,
                "restarts": s.restarts,
                "error_lines": s.errors,
                "samples": len(measured),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| process | RSS start MiB | RSS end MiB | growth % | deaths | restarts | error lines |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['process']} | {r['rss_start_mb']:.1f} | {r['rss_end_mb']:.1f} | {r['growth_pct']:+.2f} "
            f"| {r['deaths']} | {r['restarts']} | {r['error_lines']} |"
        )
    return lines


def plot(series: dict[str, Series], warmup_s: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for s in series.values():
        ax.plot([t / 60.0 for t in s.t], s.rss_mb, label=s.label, lw=1.2)
    ax.axvline(warmup_s / 60.0, color="grey", ls="--", lw=0.8, label="end of warm-up")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def soak(
    minutes: float,
    out: Path,
    overrides: dict[str, dict[str, Any]] | None = None,
    interval: float = 5.0,
    warmup: float | None = None,
    max_restarts: int = 5,
    source: str = "video",
    domain_id: int | None = None,
) -> int:
    from agra_ros.demo import available_nodes, camera_settings

    duration = minutes * 60.0
    warmup_s = min(60.0, 0.2 * duration) if warmup is None else warmup
    if warmup_s >= duration:
        raise ValueError(f"warm-up ({warmup_s:.0f} s) must be shorter than the run ({duration:.0f} s)")
    out = out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    params_file = config_file("agra.yaml")
    node_over: dict[str, dict[str, Any]] = {"camera_source": camera_settings(source, None)}
    # keep the soak's learning out of the user's checkpoint (~/.ros/agra_ros): it starts from the shipped policy
    node_over["policy"] = {"checkpoint_dir": str(out / "checkpoints")}
    for node, params in (overrides or {}).items():
        node_over.setdefault(node, {}).update(params)
    nodes = available_nodes()
    unknown = set(node_over) - set(nodes)
    if unknown:
        raise ValueError(f"--set names node(s) {sorted(unknown)} not in the graph {nodes}")
    sup = Supervisor(log_dir=logs, domain_id=domain_id)
    cam = node_over["camera_source"]
    log.info(
        "soak: %s for %.1f min (warm-up %.0f s, a sample every %.1f s), camera %s, trace %r; logs in %s",
        ", ".join(nodes),
        minutes,
        warmup_s,
        interval,
        cam.get("source"),
        cam.get("trace"),
        logs,
    )
    for name in nodes:
        sup.start(name, node_command(name, params_file, node_over.get(name)))
    series: dict[str, Series] = {}
    old_logs: dict[str, list[Path]] = {n: [] for n in nodes}
    t0 = time.monotonic()
    next_sample = t0
    bar = progress(total=int(duration), desc="bench soak", unit="s")  # seconds of the run
    try:
        with bar, logging_redirect_tqdm():
            while True:
                now = time.monotonic()
                advance_to(bar, int(now - t0))
                if now - t0 >= duration:
                    break
                for p in list(sup.procs):
                    if p.popen is None or p.popen.poll() is None:
                        continue
                    s = series.setdefault(p.name, Series(p.name))
                    s.deaths += 1
                    log.error(
                        "soak: node %s exited with code %s after %.0f s (log %s)",
                        p.name,
                        p.popen.returncode,
                        now - t0,
                        p.log_path,
                    )
                    sup.procs.remove(p)
                    if p.log_path is not None and p.log_path.is_file():
                        kept = p.log_path.with_name(f"{p.name}.{s.deaths}.log")
                        p.log_path.rename(kept)
                        old_logs[p.name].append(kept)
                    if s.deaths <= max_restarts:
                        sup.start(p.name, node_command(p.name, params_file, node_over.get(p.name)))
                        s.restarts += 1
                if now >= next_sample:
                    t = now - t0
                    for label, (pid, rss) in sample(sup).items():
                        s = series.setdefault(label, Series(label))
                        if s.pids and s.pids[-1] != pid and "/" in label:
                            s.restarts += 1  # a node restarted this child (the policy's learner after a crash)
                        s.t.append(t)
                        s.rss_mb.append(rss)
                        s.pids.append(pid)
                    next_sample += interval
                time.sleep(min(0.5, max(0.05, next_sample - time.monotonic())))
    except KeyboardInterrupt:
        log.warning("soak: Ctrl-C, stopping early after %.0f s", time.monotonic() - t0)
    codes = sup.stop(timeout=20.0)
    for name in nodes:
        s = series.setdefault(name, Series(name))
        s.errors = count_errors([*old_logs[name], logs / f"{name}.log"])
    bad_exit = {n: c for n, c in codes.items() if c not in (0, -2, 130)}
    if bad_exit:
        log.warning("soak: nodes ended with non-zero codes at shutdown: %s", bad_exit)

    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "process", "pid", "rss_mb"])
        for s in series.values():
            for t, pid, rss in zip(s.t, s.pids, s.rss_mb):
                w.writerow([f"{t:.2f}", s.label, pid, f"{rss:.2f}"])
    title = f"agra_ros soak: {minutes:g} min, camera {cam.get('source')}, trace {cam.get('trace')!r}"
    plot(series, warmup_s, out / "rss.png", title)
    rows = summarise(series, warmup_s)
    deaths = sum(r["deaths"] for r in rows)
    worst = max((r["growth_pct"] for r in rows if not math.isnan(r["growth_pct"])), default=math.nan)
    errors = sum(r["error_lines"] for r in rows)
    verdict = (
        f"{deaths} death(s), {errors} error line(s), largest RSS growth {worst:+.2f} % "
        f"(goal < {GROWTH_GOAL_PCT:g} %, 0 deaths, 0 error lines)"
    )
    settings = ", ".join(f"{n}.{k}={v}" for n, ps in node_over.items() for k, v in ps.items())
    lines = [
        f"# {title}",
        "",
        f"RSS at start: median of the first {EDGE_SAMPLES} samples after a {warmup_s:.0f} s warm-up; at end: median "
        f"of the last {EDGE_SAMPLES}; a sample every {interval:g} s. Settings: {settings}.",
        "",
        *table(rows),
        "",
        verdict,
        "",
    ]
    (out / "summary.md").write_text("\n".join(lines))
    print("\n".join(table(rows)))
    print(verdict)
    print(f"samples: {out / 'samples.csv'}  plot: {out / 'rss.png'}  logs: {logs}")
    return 1 if deaths else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="agra-ros bench soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the run in minutes (default 30)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    ap.add_argument(
        "--warmup", type=float, default=None, help="seconds before the start RSS (default: 20 %% of the run, max 60)"
    )
    ap.add_argument(
        "--source",
        choices=("video", "synthetic"),
        default="video",
        help="camera as agra-ros demo's --source (default video; synthetic where the clips are absent)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter, e.g. perception.detector=synthetic (repeatable)",
    )
    ap.add_argument("--max-restarts", type=int, default=5, help="restarts of a dead node before it stays down")
    ap.add_argument("--out", type=Path, default=run_dir("soak"), help="run folder (default runs/soak)")
    ap.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the graph")
    a = ap.parse_args(argv)
    if not (math.isfinite(a.minutes) and a.minutes > 0) or not (math.isfinite(a.interval) and a.interval > 0):
        ap.error("--minutes and --interval must be positive")
    try:
        overrides = parse_set(a.set)
        return soak(
            a.minutes,
            a.out,
            overrides,
            interval=a.interval,
            warmup=a.warmup,
            max_restarts=a.max_restarts,
            source=a.source,
            domain_id=a.domain_id,
        )
    except ValueError as exc:
        ap.error(str(exc))
    return 2
