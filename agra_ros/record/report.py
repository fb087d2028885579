"""`agra-ros report RUN.mcap [RUN2.mcap ...]`: a run's table and plot from its recording alone.

A recording made on a robot (by the recorder node, or by ``agra-ros bench paper``) is analysed on any machine with
this package, no ROS needed: for each recording the same summary, series and plot the live dashboard writes; for
several (one per algorithm) the paper's table with ratios to static and rule, and one PNG comparing them over time.

What a row holds (see :func:`algorithm_row`): the device's power as the device monitor reported it (its source is
named: jtop, NVML, RAPL, or ``model:<profile>``), perception's FPS, the share of samples that met the target
(:func:`agra_ros.core.reward.target_met`), the system energy per frame as device power / FPS
(:func:`agra_ros.core.reward.system_energy_per_frame_j`: the paper's FPS per mW, inverted, idle power included),
perception's detector energy per frame beside it, and perception's accuracy proxy (agreement of shadow-run frames
with the full configuration). Samples are taken every ``--sample-period`` seconds of recording time, after
``--warmup`` seconds from perception's first feedback, for the recording's planned measurement span where its
metadata names one (``measure``, set by ``agra-ros bench paper``), so that the report of a benchmark's recordings is
the benchmark's table.

Errors name the file: missing or corrupt recordings, recordings without the needed topics, and runs cut short
(perception's feedback stops before the end, or a whole recording is shorter than its planned duration). A table is
only written when every recording given is complete. A recording whose file was cut short (a recorder killed, a
robot that lost power: an MCAP without its summary and footer) is reported up to the cut, and the report says where
it ends (:attr:`~agra_ros.record.replay.Recording.truncated`); one cut inside its header is an error.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agra_ros.core.reward import system_energy_per_frame_j
from agra_ros.paths import run_dir
from agra_ros.record.bag import RecordingError
from agra_ros.record.replay import Recording, find_recordings, messages, open_recording
from agra_ros.record.sampler import DIAGNOSTICS_TOPIC, FEEDBACK_TOPIC, GraphSampler, topic_key
from agra_ros.results.paper_table import ALGORITHMS, AlgorithmRow, mean_p5_p95, row_from_samples, write_tables
from agra_ros.results.run_record import RunRecord, save_figure

REQUIRED_TOPICS: tuple[str, ...] = (FEEDBACK_TOPIC, DIAGNOSTICS_TOPIC, "agra/target_fps")
MAX_FEEDBACK_GAP_S = 10.0
"""Perception's feedback silent this long before the recording ends means perception stopped: the run is cut short."""
MIN_SHARE_OF_PLANNED = 0.9
"""A recording shorter than this share of its planned duration (metadata ``duration``) is incomplete."""


@dataclass
class ReplayedRun:
    """One recording, replayed into the series of a run."""

    recording: Recording
    sampler: GraphSampler
    algorithm: str

    @property
    def record(self) -> RunRecord:
        return self.sampler.record


def replay(path: Path | str, sample_period: float = 0.5, warmup_s: float = 10.0) -> ReplayedRun:
    """Replay a recording through :class:`GraphSampler`; raises :class:`RecordingError` when it is incomplete."""
    if not (sample_period > 0 and math.isfinite(sample_period)):
        raise ValueError(f"sample period must be a positive number of seconds, got {sample_period}")
    rec = open_recording(path)
    rec.require(REQUIRED_TOPICS)
    planned = float(rec.metadata.get("duration", "nan"))
    if math.isfinite(planned) and rec.duration_s < MIN_SHARE_OF_PLANNED * planned and not rec.truncated:
        raise RecordingError(
            f"{path}: covers {rec.duration_s:.0f} s of the planned {planned:.0f} s: the run was cut short"
        )
    sampler = GraphSampler()
    t_start: float | None = None
    last_feedback = next_sample = -math.inf
    t = 0.0
    for topic, stamp, msg in messages(path):
        t = (stamp - rec.start_ns) / 1e9
        if t_start is not None:
            while next_sample <= t:
                sampler.sample(next_sample - t_start)
                next_sample += sample_period
        sampler.feed(topic, msg)
        if topic_key(topic) == FEEDBACK_TOPIC:
            last_feedback = t
            if t_start is None:
                t_start = t + warmup_s
                next_sample = t_start
    if t - last_feedback > MAX_FEEDBACK_GAP_S:
        raise RecordingError(
            f"{path}: perception's feedback stops {t - last_feedback:.0f} s before the end of the recording "
            "(did the perception node die? see its log)"
        )
    measure = float(rec.metadata.get("measure", "nan"))
    if math.isfinite(measure):  # a benchmark's run: every algorithm measured over the same span after warm-up
        sampler.record.truncate(measure)
    if len(sampler.record.t) < 2:
        raise RecordingError(f"{path}: fewer than two samples after the {warmup_s:g} s warm-up: too short to report")
    algorithm = rec.metadata.get("algorithm") or sampler.algorithm or rec.path.stem
    return ReplayedRun(rec, sampler, algorithm)


def system_energy_per_sample_j(record: RunRecord) -> np.ndarray:
    """The system energy per frame of every sample (:func:`~agra_ros.core.reward.system_energy_per_frame_j` of the
    device power and perception FPS); NaN for a sample without frames."""
    power, fps = record.series("power_w"), record.series("fps")
    with np.errstate(invalid="ignore"):
        return np.where(fps > 0, system_energy_per_frame_j(power, fps), np.nan)


def algorithm_row(run: ReplayedRun) -> AlgorithmRow:
    """The paper's quantities for one run (:func:`~agra_ros.results.paper_table.row_from_samples` over the time samples,
    :func:`system_energy_per_sample_j`), with perception's detector energy per frame beside them."""
    r = run.record
    power, fps = r.series("power_w"), r.series("fps")
    det, d5, d95 = mean_p5_p95(r.series("detector_energy_per_frame_j"))
    notes = []
    if math.isfinite(det):
        src = r.sources.get("detector_energy_per_frame_j", "?")
        notes.append(f"detector energy per frame {1e3 * det:.3g} mJ [{1e3 * d5:.3g}, {1e3 * d95:.3g}] ({src})")
    notes += [f"configurations used: {row[2]}, {row[5]}" for row in r.summary_rows() if row[0] == "configurations used"]
    return row_from_samples(
        run.algorithm,
        power,
        fps,
        system_energy_per_sample_j(r),
        r.series("accuracy_proxy"),
        r.target_attainment(),
        samples=len(r.t),
        duration_s=r.t[-1] - r.t[0],
        power_source=r.sources.get("power_w", ""),
        detector_energy_per_frame_j=det,
        notes=notes,
    )


def order_runs(runs: Sequence[ReplayedRun]) -> list[ReplayedRun]:
    """The paper's order (static, rule, agra, a2c, bandit), then any other algorithm."""
    rank = {a: i for i, a in enumerate(ALGORITHMS)}
    return sorted(runs, key=lambda r: (rank.get(r.algorithm, len(rank)), r.algorithm))


def plot_comparison(runs: Sequence[ReplayedRun], path: Path, title: str) -> Path:
    """FPS against the target, device power and system energy per frame over time, one line per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    for i, run in enumerate(runs):
        r = run.record
        t = np.asarray(r.t) - r.t[0]
        color = f"C{i}"
        fps, power = r.series("fps"), r.series("power_w")
        axes[0].plot(t, fps, color=color, label=run.algorithm, lw=1.2)
        if i == 0:
            axes[0].step(t, r.series("target_fps"), where="post", color="k", ls="--", lw=1, label="target")
        axes[1].plot(t, 1e3 * power, color=color, label=run.algorithm, lw=1.2)
        axes[2].plot(t, 1e3 * system_energy_per_sample_j(r), color=color, label=run.algorithm, lw=1.2)
    src = runs[0].record.sources.get("power_w", "?") if runs else "?"
    axes[0].set_ylabel("perception FPS")
    axes[1].set_ylabel(f"device power mW\n({src})")
    axes[2].set_ylabel("system energy / frame mJ\n(power / FPS)")
    axes[2].set_xlabel("time after warm-up (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    return save_figure(fig, path, title)


def write_report(
    runs: Sequence[ReplayedRun], out: Path, title: str, preamble: Sequence[str] = ()
) -> tuple[Path, Path, Path] | None:
    """Per run: series.csv, summary.md, run.png under ``out/<algorithm>/``; for several runs also the paper table
    (``paper_table.md``/``.csv``) and ``paper_compare.png``. Returns the table and plot paths (None for one run)."""
    runs = order_runs(runs)
    for run in runs:
        sub = out / run.algorithm
        run.record.write_csv(sub / "series.csv")
        summary = run.record.write_summary(sub / "summary.md", f"{title}: {run.algorithm}")
        if run.recording.truncated:
            summary.write_text(summary.read_text() + f"\nRecording {run.recording.path}: {run.recording.truncated}.\n")
        run.record.plot(sub / "run.png", f"{title}: {run.algorithm}")
    if len(runs) < 2:
        return None
    rows = [algorithm_row(r) for r in runs]
    pre = [
        f"Recordings: {', '.join(str(r.recording.path) for r in runs)}.",
        *(f"{r.recording.path}: {r.recording.truncated}." for r in runs if r.recording.truncated),
        "Power: the device monitor's (source per row); system energy per frame = device power / perception FPS.",
        *preamble,
    ]
    md, csv_path = write_tables(rows, out, title, pre)
    png = plot_comparison(runs, out / "paper_compare.png", title)
    return md, csv_path, png


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="agra-ros report",
        description="Rebuild a run's table and plot from its recording(s) alone (no ROS needed). One recording: its "
        "summary, series and plot. Several (one per algorithm, e.g. from 'agra-ros bench paper'): also the AGRA "
        "paper's table with ratios to static and rule, and a PNG comparing them over time.",
    )
    ap.add_argument(
        "recordings",
        nargs="+",
        type=Path,
        help="recordings (rosbag2 folders or .mcap files) or folders holding them, e.g. a bench run's output folder",
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (default runs/report/<first recording>)")
    ap.add_argument("--title", default="agra_ros run", help="title of the tables and plots")
    ap.add_argument("--sample-period", type=float, default=0.5, help="seconds between samples of the series")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after perception's first feedback to skip")
    args = ap.parse_args(argv)
    try:
        paths = [r for p in args.recordings for r in find_recordings(p)]
        runs = [replay(p, args.sample_period, args.warmup) for p in paths]
    except (RecordingError, ValueError) as exc:
        print(f"agra-ros report: {exc}", file=sys.stderr)
        return 1
    names = [r.algorithm for r in runs]
    if len(set(names)) != len(names):
        print(f"agra-ros report: several recordings of the same algorithm ({', '.join(names)})", file=sys.stderr)
        return 1
    out = args.out or run_dir("report") / runs[0].recording.path.stem
    res = write_report(runs, out, args.title)
    for run in order_runs(runs):
        print(f"{run.algorithm}: {run.recording.path} ({run.recording.duration_s:.0f} s) -> {out / run.algorithm}")
        if run.recording.truncated:
            print(f"  {run.recording.truncated}")
    if res is not None:
        print(res[0].read_text())
        print(f"table: {res[0]}  csv: {res[1]}  plot: {res[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
