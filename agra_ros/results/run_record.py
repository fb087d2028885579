"""Time series of a run (demo or benchmark), its summary table and its plot.

Core code: the dashboard node feeds a :class:`RunRecord` from topics; benchmarks feed it from the simulator.
The same summary and the same figure come out either way.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agra_ros.core.reward import TARGET_MET_SHARE, target_met

# series name -> (label, unit); the order is the order of the summary table
SERIES: dict[str, tuple[str, str]] = {
    "camera_hz": ("camera rate", "Hz"),
    "target_fps": ("target FPS", "fps"),
    "fps": ("perception FPS", "fps"),
    "latency_ms": ("latency", "ms"),
    "power_w": ("power", "W"),
    "detector_energy_per_frame_j": ("detector energy / frame", "J"),
    "accuracy_proxy": ("accuracy proxy", ""),
    "reward": ("reward", ""),
    "temperature_c": ("temperature", "C"),
    "cpu_util": ("CPU utilisation", ""),
    "mean_width": ("mean layer width", ""),
}


@dataclass
class RunRecord:
    """Samples of named scalar series over time, plus the configuration string at each sample."""

    t: list[float] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SERIES})
    configuration: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, t: float, sample: dict[str, float | None], configuration: str = "") -> None:
        self.t.append(float(t))
        for k in SERIES:
            v = sample.get(k)
            self.values[k].append(float("nan") if v is None else float(v))
        self.configuration.append(configuration)

    def truncate(self, span_s: float) -> None:
        """Keep the samples of the first ``span_s`` seconds (runs compared over the same span)."""
        if not self.t:
            return
        n = sum(1 for t in self.t if t - self.t[0] <= span_s + 1e-9)
        self.t = self.t[:n]
        self.values = {k: v[:n] for k, v in self.values.items()}
        self.configuration = self.configuration[:n]

    def series(self, name: str) -> np.ndarray:
        return np.asarray(self.values[name], dtype=float)

    def target_attainment(self) -> float:
        """Share of samples where perception FPS met the target (:func:`~agra_ros.core.reward.target_met`; NaN when
        unknown)."""
        fps, tgt = self.series("fps"), self.series("target_fps")
        ok = ~np.isnan(fps) & ~np.isnan(tgt) & (tgt > 0)
        return float(np.mean(target_met(fps[ok], tgt[ok]))) if ok.any() else float("nan")

    def summary_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(quantity, unit, median, p5, p95, source) for every series that has data."""
        rows = []
        for k, (label, unit) in SERIES.items():
            x = self.series(k)
            x = x[~np.isnan(x)]
            if x.size == 0:
                continue
            p5, med, p95 = np.percentile(x, [5, 50, 95])
            rows.append((label, unit, f"{med:.3g}", f"{p5:.3g}", f"{p95:.3g}", self.sources.get(k, "")))
        att = self.target_attainment()
        if not math.isnan(att):
            rule = f"FPS >= {100 * TARGET_MET_SHARE:g}% of target"
            rows.append((f"target attainment ({rule})", "", f"{100 * att:.1f} %", "", "", ""))
        configs = [c for c in self.configuration if c]
        if configs:
            uniq, counts = np.unique(configs, return_counts=True)
            top = uniq[np.argmax(counts)]
            rows.append(("configurations used", "", str(len(uniq)), "", "", f"most often {top}"))
        return rows

    def write_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", *SERIES, "configuration"])
            for i, t in enumerate(self.t):
                w.writerow([f"{t:.3f}", *(f"{self.values[k][i]:.6g}" for k in SERIES), self.configuration[i]])
        return path

    def write_summary(self, path: Path, title: str = "agra_ros run") -> Path:
        """Markdown table of :meth:`summary_rows`."""
        lines = [
            f"# {title}",
            "",
            f"duration: {self.t[-1] - self.t[0]:.1f} s, {len(self.t)} samples" if self.t else "",
            "",
        ]
        lines += ["| quantity | unit | median | p5 | p95 | source / note |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.summary_rows()]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    def plot(self, path: Path, title: str = "agra_ros run") -> Path:
        """FPS against target, power, and layer width of the configuration over time, as one PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.asarray(self.t) - (self.t[0] if self.t else 0.0)
        fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
        ax = axes[0]
        ax.plot(t, self.series("fps"), label="perception FPS", color="tab:blue")
        ax.step(t, self.series("target_fps"), where="post", label="target FPS", color="tab:red", linestyle="--")
        ax.set_ylabel("frames / s")
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
        ax = axes[1]
        ax.plot(t, self.series("power_w"), label=f"power ({self.sources.get('power_w', '?')})", color="tab:orange")
        ax.set_ylabel("W")
        ax2 = ax.twinx()
        ax2.plot(
            t,
            1e3 * self.series("detector_energy_per_frame_j"),
            label="detector energy / frame",
            color="tab:green",
            alpha=0.7,
        )
        ax2.set_ylabel("mJ / frame")
        ax.legend(loc="upper left")
        ax2.legend(loc="upper right")
        ax.grid(alpha=0.3)
        ax = axes[2]
        ax.plot(t, self.series("mean_width"), label="mean layer width", color="tab:purple")
        ax.plot(t, self.series("accuracy_proxy"), label="accuracy proxy", color="tab:gray", alpha=0.8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share")
        ax.set_xlabel("time (s)")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        return save_figure(fig, path, title)


def save_figure(fig, path: Path, title: str) -> Path:
    """Title, tight layout, write the PNG (creating its folder) and free the figure."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mean_width_of(short: str) -> float | None:
    """Mean output-channel share of a configuration in short form (``FFP55/0.75/local``)."""
    from agra_ros.granularity.levels import LEVEL_SHORT, LEVEL_WIDTH

    codes = short.split("/", 1)[0]
    inv = {v: k for k, v in LEVEL_SHORT.items()}
    widths = [LEVEL_WIDTH[inv[c]] for c in codes if c in inv]
    return float(np.mean(widths)) if widths else None


def format_rows(rows: Iterable[tuple[str, ...]]) -> str:
    return "\n".join("  ".join(r) for r in rows)
