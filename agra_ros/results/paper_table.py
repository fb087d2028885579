"""The AGRA paper's table (static / rule-based / AGRA on a Jetson Nano), and ours beside it.

One place for the paper's figures, the goals issue 14 sets against them, and the Markdown/CSV tables that both the
live benchmark (``agra-ros bench paper``, rows from recordings) and the simulated one (rows from the simulator) write.
Core code: no rclpy, no simulator import; callers hand in :class:`AlgorithmRow` values.

Absolute milliwatts and FPS depend on the device, so the comparison with the paper is by ratios: agra against
static (full-layer) and against rule-based, on power, FPS, energy per frame and FPS per watt.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from agra_ros.core.reward import system_energy_per_frame_j
from agra_ros.limits import ACCURACY_FLOOR

PAPER_DEVICE = "Jetson Nano, object detection, 500 sampled inputs, 10-minute runs"
PAPER_TABLE: dict[str, dict[str, float]] = {
    "static": {"power_mw": 350.0, "fps": 10.0, "fps_per_mw": 0.029},
    "rule": {"power_mw": 320.0, "fps": 12.0, "fps_per_mw": 0.038},
    "agra": {"power_mw": 260.0, "fps": 13.0, "fps_per_mw": 0.050},
}
"""The seed paper's table: average power, FPS and FPS per milliwatt per algorithm."""

ALGORITHMS: tuple[str, ...] = ("static", "rule", "agra", "a2c", "bandit")
"""The algorithms of the comparison, in table order: the paper's three, then Infer-EDGE's A2C and AutoScale's
bandit as further learned baselines."""


@dataclass(frozen=True)
class PaperGoals:
    """Issue 14's goals for agra, as ratios to the baselines (the paper reached 0.57x / 0.75x energy per frame)."""

    energy_vs_static: float = 0.6
    energy_vs_rule: float = 0.85
    attainment: float = 0.95
    attainment_oracle_slack: float = 0.02
    accuracy: float = ACCURACY_FLOOR
    """agra's accuracy proxy at least the default accuracy floor."""
    fps_per_w_gain_static: float = PAPER_TABLE["agra"]["fps_per_mw"] / PAPER_TABLE["static"]["fps_per_mw"] - 1.0
    fps_per_w_gain_rule: float = PAPER_TABLE["agra"]["fps_per_mw"] / PAPER_TABLE["rule"]["fps_per_mw"] - 1.0


@dataclass
class AlgorithmRow:
    """What one algorithm reached in one run (live or simulated); NaN where a quantity was not measured."""

    algorithm: str
    power_w: float
    fps: float
    attainment: float
    """Share of samples (live) or decisions (simulated) that met the target FPS (core.reward.target_met)."""
    system_energy_per_frame_j: float
    """Mean power / mean FPS (:func:`agra_ros.core.reward.system_energy_per_frame_j`): the paper's FPS per mW,
    inverted, idle power included."""
    accuracy: float
    """Accuracy proxy: live, the mean of perception's shadow agreement, the confident agreement of each shadow frame
    with the full configuration (:func:`agra_ros.perception.agreement.confident_frame_agreement`, uncalibrated);
    simulated, the accuracy model's ratio (the agreement table's measure: the earlier form until it is re-shipped)."""
    power_p5: float = math.nan
    power_p95: float = math.nan
    fps_p5: float = math.nan
    fps_p95: float = math.nan
    system_energy_p5: float = math.nan
    system_energy_p95: float = math.nan
    samples: int = 0
    duration_s: float = math.nan
    power_source: str = ""
    """Where the power figures come from: a sensor (jtop, NVML, RAPL) or ``model:<profile>``."""
    detector_energy_per_frame_j: float = math.nan
    """Perception's detector energy per frame (its modelled dynamic joules: busy time and MACs of the configuration
    that ran), without the rest of the device: on a machine whose CPU the whole graph saturates, device power sits
    at its peak for every algorithm and only this shows what the granularity saved."""
    notes: list[str] = field(default_factory=list)

    @property
    def fps_per_w(self) -> float:
        return self.fps / self.power_w if self.power_w > 0 else math.nan


def mean_p5_p95(x: np.ndarray) -> tuple[float, float, float]:
    """Mean, 5th and 95th percentile of the finite values (NaN where there are none)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    p5, p95 = np.percentile(x, [5, 95])
    return float(np.mean(x)), float(p5), float(p95)


def row_from_samples(
    algorithm: str,
    power_w: np.ndarray,
    fps: np.ndarray,
    system_energy_j: np.ndarray,
    accuracy: np.ndarray,
    attainment: float,
    **extra,
) -> AlgorithmRow:
    """The row of one run from its samples (live: time samples; simulated: decisions), one definition for both:
    means with p5/p95 of power and FPS, system energy per frame = mean power / mean FPS (the paper's FPS per mW,
    inverted) with the p5/p95 of the per-sample ``system_energy_j``, the mean accuracy proxy. ``extra``: the other
    fields."""
    p, p5, p95 = mean_p5_p95(power_w)
    f, f5, f95 = mean_p5_p95(fps)
    _, e5, e95 = mean_p5_p95(system_energy_j)
    return AlgorithmRow(
        algorithm=algorithm,
        power_w=p,
        fps=f,
        attainment=attainment,
        system_energy_per_frame_j=float(system_energy_per_frame_j(p, f)) if f > 0 else math.nan,
        accuracy=mean_p5_p95(accuracy)[0],
        power_p5=p5,
        power_p95=p95,
        fps_p5=f5,
        fps_p95=f95,
        system_energy_p5=e5,
        system_energy_p95=e95,
        **extra,
    )


def _f(v: float, fmt: str = ".3g") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)


def ratio_text(v: float) -> str:
    """A ratio, ``0.94x``, or n/a."""
    return "n/a" if not math.isfinite(v) else f"{v:.3g}x"


def _num(v: float) -> str:
    """Three significant digits, without exponents for the milliwatts of a 45 W machine."""
    return f"{v:.0f}" if math.isfinite(v) and abs(v) >= 1000 else _f(v)


def _range(lo: float, hi: float, scale: float = 1.0) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f" [{_num(lo * scale)}, {_num(hi * scale)}]"


def table_markdown(rows: Sequence[AlgorithmRow]) -> list[str]:
    """Per algorithm: mean power, FPS, attainment, system energy per frame (each with p5/p95), FPS per W, accuracy,
    source; the detector energy column only where a row has it (live runs)."""
    det = any(math.isfinite(r.detector_energy_per_frame_j) for r in rows)
    head = ["algorithm", "power mW [p5, p95]", "FPS [p5, p95]", "target attainment"]
    head += ["system energy / frame mJ [p5, p95]", "FPS per W", "accuracy proxy"]
    head += [*(["detector energy / frame mJ"] if det else []), "samples", "power source"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r.algorithm,
            f"{_num(1e3 * r.power_w)}{_range(r.power_p5, r.power_p95, 1e3)}",
            f"{_f(r.fps)}{_range(r.fps_p5, r.fps_p95)}",
            f"{_f(100 * r.attainment, '.1f')} %",
            f"{_num(1e3 * r.system_energy_per_frame_j)}{_range(r.system_energy_p5, r.system_energy_p95, 1e3)}",
            _f(r.fps_per_w),
            _f(r.accuracy),
            *([_f(1e3 * r.detector_energy_per_frame_j)] if det else []),
            str(r.samples),
            r.power_source or "n/a",
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


def ratios(rows: Sequence[AlgorithmRow], of: str = "agra") -> dict[str, dict[str, float]]:
    """``{baseline: {quantity: ours_of / ours_baseline}}`` for static and rule (the paper's two baselines)."""
    by = {r.algorithm: r for r in rows}
    if of not in by:
        return {}
    a = by[of]
    out: dict[str, dict[str, float]] = {}
    for base in ("static", "rule"):
        if base not in by:
            continue
        b = by[base]
        out[base] = {
            "power": _ratio(a.power_w, b.power_w),
            "fps": _ratio(a.fps, b.fps),
            "system_energy_per_frame": _ratio(a.system_energy_per_frame_j, b.system_energy_per_frame_j),
            "fps_per_w": _ratio(a.fps_per_w, b.fps_per_w),
            "detector_energy_per_frame": _ratio(a.detector_energy_per_frame_j, b.detector_energy_per_frame_j),
        }
    return out


def paper_ratios() -> dict[str, dict[str, float]]:
    """The same ratios from the paper's table (system energy per frame = power / FPS)."""
    p = PAPER_TABLE
    out = {}
    for base in ("static", "rule"):
        a, b = p["agra"], p[base]
        out[base] = {
            "power": a["power_mw"] / b["power_mw"],
            "fps": a["fps"] / b["fps"],
            "system_energy_per_frame": system_energy_per_frame_j(a["power_mw"], a["fps"])
            / system_energy_per_frame_j(b["power_mw"], b["fps"]),
            "fps_per_w": a["fps_per_mw"] / b["fps_per_mw"],
        }
    return out


def ratio_markdown(rows: Sequence[AlgorithmRow]) -> list[str]:
    """agra / static and agra / rule here, side by side with the paper's (lower is better for power and energy)."""
    ours, paper = ratios(rows), paper_ratios()
    out = [
        "| agra / baseline | power (ours) | power (paper) | FPS (ours) | FPS (paper) | system energy/frame (ours) "
        "| system energy/frame (paper) | FPS per W (ours) | FPS per W (paper) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for base in ("static", "rule"):
        o, p = ours.get(base, {}), paper[base]
        cells = []
        for q in ("power", "fps", "system_energy_per_frame", "fps_per_w"):
            cells += [ratio_text(o.get(q, math.nan)), ratio_text(p[q])]
        out.append(f"| agra / {base} | " + " | ".join(cells) + " |")
    det = [f"agra / {b} {ratio_text(ours[b]['detector_energy_per_frame'])}" for b in ("static", "rule") if b in ours]
    if det and any("n/a" not in d for d in det):
        out += ["", "Detector energy per frame (perception's model): " + ", ".join(det) + "."]
    return out


def goal_rows(
    rows: Sequence[AlgorithmRow], goals: PaperGoals = PaperGoals(), oracle_attainment: float | None = None
) -> list[tuple[str, str, str, bool | None]]:
    """(goal, required, reached, met) for agra; met is None where the run lacks what the goal needs.

    Attainment: >= 95 %, or within 2 points of the oracle's where the oracle (simulator only) cannot reach 95 %.
    """
    by = {r.algorithm: r for r in rows}
    a = by.get("agra")
    if a is None:
        return []
    rat = ratios(rows)
    out: list[tuple[str, str, str, bool | None]] = []

    def check(name: str, need: str, value: float, ok: bool, fmt: str = ".3g", suffix: str = "x") -> None:
        if not math.isfinite(value):
            out.append((name, need, "n/a", None))
        else:
            out.append((name, need, f"{value:{fmt}}{suffix}", ok))

    e_s = rat.get("static", {}).get("system_energy_per_frame", math.nan)
    e_r = rat.get("rule", {}).get("system_energy_per_frame", math.nan)
    check("system energy per frame vs static", f"<= {goals.energy_vs_static}x", e_s, e_s <= goals.energy_vs_static)
    check("system energy per frame vs rule", f"<= {goals.energy_vs_rule}x", e_r, e_r <= goals.energy_vs_rule)
    need_att = goals.attainment
    need_txt = f">= {100 * goals.attainment:.0f} %"
    if oracle_attainment is not None and math.isfinite(oracle_attainment) and oracle_attainment < goals.attainment:
        need_att = oracle_attainment - goals.attainment_oracle_slack
        need_txt = f">= oracle {100 * oracle_attainment:.1f} % - {100 * goals.attainment_oracle_slack:.0f} points"
    check("target attainment", need_txt, 100 * a.attainment, a.attainment >= need_att - 1e-9, ".1f", " %")
    check("accuracy proxy", f">= {goals.accuracy}", a.accuracy, a.accuracy >= goals.accuracy, ".3g", "")
    g_s = rat.get("static", {}).get("fps_per_w", math.nan) - 1.0
    g_r = rat.get("rule", {}).get("fps_per_w", math.nan) - 1.0
    check(
        "FPS per W gain over static",
        f">= +{100 * goals.fps_per_w_gain_static:.0f} %",
        100 * g_s,
        g_s >= goals.fps_per_w_gain_static,
        "+.0f",
        " %",
    )
    check(
        "FPS per W gain over rule",
        f">= +{100 * goals.fps_per_w_gain_rule:.0f} %",
        100 * g_r,
        g_r >= goals.fps_per_w_gain_rule,
        "+.0f",
        " %",
    )
    return out


def goal_markdown(goal_list: Sequence[tuple[str, str, str, bool | None]]) -> list[str]:
    out = ["| agra goal | required | reached | met |", "|---|---|---|---|"]
    for name, need, got, ok in goal_list:
        out.append(f"| {name} | {need} | {got} | {'n/a' if ok is None else ('yes' if ok else 'NO')} |")
    return out


def write_tables(
    rows: Sequence[AlgorithmRow],
    out_dir: Path,
    title: str,
    preamble: Sequence[str] = (),
    oracle_attainment: float | None = None,
    stem: str = "paper_table",
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` (table, ratios beside the paper's, goals) and ``<stem>.csv`` (one row per algorithm)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", *preamble, ""] if preamble else [f"# {title}", ""]
    md += table_markdown(rows)
    md += ["", f"Ratios beside the paper's ({PAPER_DEVICE}; absolute milliwatts differ by device):", ""]
    md += ratio_markdown(rows)
    goals = goal_rows(rows, oracle_attainment=oracle_attainment)
    if goals:
        md += ["", *goal_markdown(goals)]
    notes = [f"- {r.algorithm}: {n}" for r in rows for n in r.notes]
    if notes:
        md += ["", "Notes:", *notes]
    md_path = out_dir / f"{stem}.md"
    md_path.write_text("\n".join(md) + "\n")
    csv_path = out_dir / f"{stem}.csv"
    with open(csv_path, "w", newline="") as f:
        fields = [k for k in asdict(rows[0]) if k != "notes"] + ["fps_per_w"] if rows else []
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            d = {k: v for k, v in asdict(r).items() if k != "notes"}
            d["fps_per_w"] = r.fps_per_w
            w.writerow(d)
    return md_path, csv_path
