"""The AGRA paper's table in the simulator, on the paper's device and every other shipped profile.

For each device profile, each algorithm of the paper's comparison (static full-layer, rule-based, agra, and the
learned baselines a2c and bandit; :data:`agra_ros.results.paper_table.ALGORITHMS`) and the oracle (for the attainment
goal where the device cannot reach 95 %) acts greedily in the simulator for exactly ``--inputs`` sampled inputs:
consecutive decisions over episodes of ``--trace``, local execution (the shipped setting), every episode started
from a seed derived from ``--seed``, the same episodes for every algorithm and profile. Per decision it keeps
power, FPS, system energy per frame, the accuracy model's ratio and whether the target was met (the rule of
:func:`agra_ros.policy.evaluate.met_target`), and summarises them as the paper's table (mean with p5/p95; power
from the profile's power model, ``model:<profile>``).

agra is the shipped policy (agra_ros/data/policy_agra.pt); a2c and bandit are the shipped pretrained baselines
(``agra-ros train-policy --algorithm a2c|bandit --ship``), trained briefly here with a warning where they are
absent. Writes into the run folder ``paper_sim_<profile>.md`` / ``.csv`` per profile
(:func:`agra_ros.results.paper_table.write_tables`), ``paper_sim.md`` (agra's ratios to static and rule on every profile
beside the paper's, and the goals met), and ``paper_sim.png``; with ``--ship`` the PNG also into docs/.
Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agra_ros.bench.policy_compare import BENCH_PROFILES
from agra_ros.core.reward import system_energy_per_frame_j
from agra_ros.device.profiles import ProfileError, load_profile
from agra_ros.paths import PACKAGE_DIR, docs_dir, run_dir
from agra_ros.policy.evaluate import met_target, rollout
from agra_ros.policy.registry import Policy, load_policy, make_policy, shipped_policy_path
from agra_ros.progress import progress
from agra_ros.results.paper_table import (
    ALGORITHMS,
    PAPER_DEVICE,
    PAPER_TABLE,
    AlgorithmRow,
    PaperGoals,
    goal_rows,
    paper_ratios,
    ratio_text,
    ratios,
    row_from_samples,
    write_tables,
)
from agra_ros.sim.env import AgraEnv
from agra_ros.workload.trace import Trace, TraceError

DESCRIPTION = """The AGRA paper's table (average power, FPS, target attainment, energy per frame, FPS per W, accuracy
proxy, with p5/p95 and the source of every power figure; agra's ratios to static and to rule beside the paper's)
in the simulator, on the paper's Jetson Nano (5 W and MAXN) and the other shipped device profiles.

Every algorithm (static full-layer, rule-based, agra, a2c, bandit; the oracle for its attainment) acts greedily
for exactly --inputs consecutive decisions over episodes of --trace seeded from --seed, the same for all, local
execution. agra, a2c and bandit are the shipped pretrained policies (agra_ros/data/policy_*.pt). Writes into the
run folder paper_sim_<profile>.md/.csv per profile, paper_sim.md (every profile in one table, goals met) and
paper_sim.png."""

PAPER_PROFILES: tuple[str, ...] = ("jetson_nano_5w", "jetson_nano_maxn")
"""The paper's device: a Jetson Nano, in its 5 W and its MAXN power mode."""
DEFAULT_PROFILES: tuple[str, ...] = (*PAPER_PROFILES, *(p for p in BENCH_PROFILES if p not in PAPER_PROFILES))
"""The paper's device first, then the other shipped profiles and the held-out one."""
SIM_ALGORITHMS: tuple[str, ...] = (*ALGORITHMS, "oracle")
LEARNED_BASELINES: tuple[str, ...] = ("a2c", "bandit")
FALLBACK_STEPS = 20_000
"""Steps of the brief training of a learned baseline whose shipped file is absent."""


@dataclass
class Samples:
    """Per-decision outcomes of one algorithm on one profile."""

    power_w: np.ndarray
    fps: np.ndarray
    system_energy_j: np.ndarray
    accuracy: np.ndarray
    met: np.ndarray


def episode_seeds(seed: int, inputs: int, per_episode: int) -> list[int]:
    """Seeds of the episodes that hold ``inputs`` consecutive decisions, derived from ``seed``."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(math.ceil(inputs / per_episode))]


def sample(policy: Policy, env: AgraEnv, seeds: list[int], inputs: int) -> Samples:
    """Exactly ``inputs`` greedy decisions of ``policy`` over the episodes ``seeds``."""
    rows = [
        (info["power_w"], info["fps"], info["system_energy_per_frame_j"], info["accuracy_ratio"], met_target(info))
        for _, _, info in rollout(policy, env, seeds, decisions=inputs)
    ]
    if len(rows) != inputs:
        raise RuntimeError(f"{len(rows)} decisions from {len(seeds)} episodes, {inputs} asked")
    cols = [np.asarray(c, dtype=float) for c in zip(*rows)]
    return Samples(*cols)


def algorithm_row(name: str, s: Samples, profile: str, dt_s: float, notes: list[str] | None = None) -> AlgorithmRow:
    """The paper's row from per-decision samples (:func:`~agra_ros.results.paper_table.row_from_samples`), the power model
    as the source."""
    return row_from_samples(
        name,
        s.power_w,
        s.fps,
        s.system_energy_j,
        s.accuracy,
        float(s.met.mean()),
        samples=len(s.fps),
        duration_s=len(s.fps) * dt_s,
        power_source=f"model:{profile}",
        notes=list(notes or []),
    )


def _origin(policy: Policy, path: Path) -> str:
    meta = getattr(policy, "meta", None) or {}
    counts = getattr(policy, "counts", None)  # the bandit's table counts its training decisions
    steps = (
        f", {meta['steps']} training steps"
        if "steps" in meta
        else (f", {int(counts.sum())} training decisions" if counts is not None else "")
    )
    try:
        where = path.resolve().relative_to(PACKAGE_DIR.parent)
    except ValueError:
        where = path
    return f"policy {where}{steps}"


def learned_policies(env: AgraEnv, seed: int) -> tuple[dict[str, Policy], dict[str, list[str]]]:
    """agra, a2c and bandit as shipped (a baseline whose file is absent is trained here briefly, with a warning),
    and a note per policy saying where it came from."""
    path = shipped_policy_path("agra")
    if not path.is_file():
        raise SystemExit(f"no policy at {path}: run agra-ros train-policy --ship")
    pols: dict[str, Policy] = {"agra": load_policy(path, env)}
    notes = {"agra": [_origin(pols["agra"], path)]}
    for name in LEARNED_BASELINES:
        path = shipped_policy_path(name)
        if path.is_file():
            pols[name] = load_policy(path, env)
            notes[name] = [_origin(pols[name], path)]
            continue
        from agra_ros.training.policy import SHIPPED_ENV, train_a2c, train_bandit

        print(
            f"WARNING: no shipped {name} policy at {path}; training one for {FALLBACK_STEPS} steps here "
            f"(ship one with: agra-ros train-policy --algorithm {name} --ship)",
            file=sys.stderr,
        )
        train = train_a2c if name == "a2c" else train_bandit
        pols[name] = train(FALLBACK_STEPS, seed, **SHIPPED_ENV)[0]
        notes[name] = [f"no shipped policy: trained here for {FALLBACK_STEPS} steps (seed {seed})"]
    return pols, notes


def run_profile(
    profile: str, trace: str, inputs: int, seed: int, learned: dict[str, Policy], notes: dict[str, list[str]], bar
) -> tuple[list[AlgorithmRow], AlgorithmRow]:
    """The table's rows on one profile, and the oracle's row; ``bar`` counts the decisions (simulator steps)."""
    env = AgraEnv(trace=trace, device=profile, allow_remote=False)
    seeds = episode_seeds(seed, inputs, env.settings.max_steps)
    rows: dict[str, AlgorithmRow] = {}
    for name in SIM_ALGORITHMS:
        bar.set_postfix_str(f"{profile}: {name}")
        pol = learned[name] if name in learned else make_policy(name, env=env)
        rows[name] = algorithm_row(name, sample(pol, env, seeds, inputs), profile, env.settings.dt_s, notes.get(name))
        bar.update(inputs)
    oracle = rows.pop("oracle")
    return [rows[a] for a in ALGORITHMS], oracle


# ------------------------------------------------------------------------------------------------- summary
RATIO_QUANTITIES: tuple[tuple[str, str], ...] = (
    ("system_energy_per_frame", "system energy/frame"),
    ("fps_per_w", "FPS per W"),
    ("power", "power"),
    ("fps", "FPS"),
)


def summary_markdown(
    tables: dict[str, tuple[list[AlgorithmRow], AlgorithmRow]], preamble: list[str]
) -> tuple[list[str], dict[str, dict[str, bool | None]]]:
    """agra / static and agra / rule on every profile beside the paper's, agra's attainment beside the oracle's,
    goals met per profile; then per goal the profiles that meet and miss it. Also returns ``{profile: {goal:
    met}}``."""
    head = ["profile"]
    for _, label in RATIO_QUANTITIES:
        head += [f"{label} vs static", f"{label} vs rule"]
    head += ["attainment agra (oracle)", "accuracy agra", "goals met"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    met: dict[str, dict[str, bool | None]] = {}
    for prof, (rows, oracle) in tables.items():
        rat = ratios(rows)
        goals = goal_rows(rows, oracle_attainment=oracle.attainment)
        met[prof] = {g[0]: g[3] for g in goals}
        agra = next(r for r in rows if r.algorithm == "agra")
        cells = [prof]
        for q, _ in RATIO_QUANTITIES:
            cells += [ratio_text(rat.get(b, {}).get(q, math.nan)) for b in ("static", "rule")]
        n_met = sum(1 for g in goals if g[3])
        n_known = sum(1 for g in goals if g[3] is not None)
        cells += [
            f"{100 * agra.attainment:.1f} % ({100 * oracle.attainment:.1f} %)",
            f"{agra.accuracy:.3g}",
            f"{n_met}/{n_known}",
        ]
        out.append("| " + " | ".join(cells) + " |")
    pap = paper_ratios()
    cells = ["paper (Jetson Nano)"]
    for q, _ in RATIO_QUANTITIES:
        cells += [ratio_text(pap[b][q]) for b in ("static", "rule")]
    out.append("| " + " | ".join(cells + ["n/a", "n/a", ""]) + " |")
    goal_names = list(dict.fromkeys(g for m in met.values() for g in m))
    out += ["", "| agra goal | met on | missed on |", "|---|---|---|"]
    for g in goal_names:
        yes = [p for p in met if met[p].get(g) is True]
        no = [p for p in met if met[p].get(g) is False]
        out.append(
            f"| {g} | {len(yes)}/{len(met)}{': ' + ', '.join(yes) if yes else ''} "
            f"| {len(no)}/{len(met)}{': ' + ', '.join(no) if no else ''} |"
        )
    total = sum(1 for m in met.values() for v in m.values() if v)
    known = sum(1 for m in met.values() for v in m.values() if v is not None)
    out += ["", f"Goals met: {total} of {known} (goals x profiles)."]
    return [*preamble, "", *out], met


def plot(tables: dict[str, tuple[list[AlgorithmRow], AlgorithmRow]], path: Path, title: str) -> None:
    """Per profile and algorithm: system energy per frame and FPS per W as multiples of static's (the paper's agra and rule
    marked), target attainment (the oracle's marked) and the accuracy proxy (what the savings cost)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profs = list(tables)
    panels = (
        (
            "system energy per frame / static's (lower is better)",
            lambda r, st: r.system_energy_per_frame_j / st.system_energy_per_frame_j,
        ),
        ("FPS per W / static's (higher is better)", lambda r, st: r.fps_per_w / st.fps_per_w),
        ("target attainment %", lambda r, st: 100 * r.attainment),
        ("accuracy proxy (share of full's)", lambda r, st: r.accuracy),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(19, 4.8))
    width = 0.8 / len(ALGORITHMS)
    x0 = np.arange(len(profs))
    tops = [0.0] * len(panels)
    for k, name in enumerate(ALGORITHMS):
        x = x0 + (k - (len(ALGORITHMS) - 1) / 2) * width
        for i, (_, value) in enumerate(panels):
            ys = []
            for p in profs:
                by = {r.algorithm: r for r in tables[p][0]}
                ys.append(value(by[name], by["static"]))
            axes[i].bar(x, ys, width, label=name)
            tops[i] = max(tops[i], np.nanmax(ys))
    pap = paper_ratios()["static"]
    st, ru = PAPER_TABLE["static"], PAPER_TABLE["rule"]
    paper_rule = (
        system_energy_per_frame_j(ru["power_mw"], ru["fps"]) / system_energy_per_frame_j(st["power_mw"], st["fps"]),
        ru["fps_per_mw"] / st["fps_per_mw"],
    )
    for ax, agra_v, rule_v in zip(axes, (pap["system_energy_per_frame"], pap["fps_per_w"]), paper_rule):
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(agra_v, color="tab:green", linestyle="--", linewidth=1, label=f"paper agra / static {agra_v:.2f}x")
        ax.axhline(rule_v, color="tab:orange", linestyle=":", linewidth=1, label=f"paper rule / static {rule_v:.2f}x")
    axes[2].scatter(
        x0, [100 * tables[p][1].attainment for p in profs], marker="_", s=600, color="black", label="oracle", zorder=3
    )
    goals = PaperGoals()
    axes[2].axhline(
        100 * goals.attainment, color="grey", linestyle="--", linewidth=1, label=f"goal {100 * goals.attainment:.0f} %"
    )
    axes[3].axhline(goals.accuracy, color="grey", linestyle="--", linewidth=1, label=f"goal {goals.accuracy:g}")
    for i, (ax, (t, _)) in enumerate(zip(axes, panels)):
        ax.set_xticks(x0, profs, rotation=20, fontsize=8)
        ax.set_title(t, fontsize=10)
        ax.set_ylim(0, 118 if i == 2 else 1.45 * max(tops[i], 1.0))
        handles, labels = ax.get_legend_handles_labels()
        extra = [(h, lab) for h, lab in zip(handles, labels) if lab not in ALGORITHMS]
        if extra:
            ax.legend(*zip(*extra), fontsize=7, loc="upper right")
    handles, labels = axes[0].get_legend_handles_labels()
    algo = [(h, lab) for h, lab in zip(handles, labels) if lab in ALGORITHMS]
    fig.legend(*zip(*algo), loc="upper left", ncol=len(ALGORITHMS), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="agra-ros bench paper sim",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: agra-ros bench paper sim --seed 0   (the defaults: 500 inputs per algorithm on every profile; "
        "a few minutes on one CPU thread)",
    )
    ap.add_argument(
        "--profiles",
        nargs="+",
        default=list(DEFAULT_PROFILES),
        metavar="PROFILE",
        help=f"device profiles, config/devices/<name>.yaml (default: {' '.join(DEFAULT_PROFILES)})",
    )
    ap.add_argument(
        "--inputs",
        type=int,
        default=500,
        help="sampled inputs (decisions) per algorithm and profile (default: 500, the paper's)",
    )
    ap.add_argument(
        "--seed", type=int, default=0, help="seed the episodes derive from (default: 0; same seed, same tables)"
    )
    ap.add_argument(
        "--trace",
        default="heldout_rel",
        help="workload trace, config/traces/<name>.yaml (default: heldout_rel, never trained on, targets relative to "
        "each device's full rate: the paper's setting of a target just above what static reaches, on every profile)",
    )
    ap.add_argument("--out", default=None, help="run folder (default: runs/paper_sim)")
    ap.add_argument("--ship", action="store_true", help="also draw the PNG into docs/paper_sim.png")
    args = ap.parse_args(argv)
    if args.inputs < 1:
        ap.error(f"--inputs must be at least 1, got {args.inputs}")
    for prof in args.profiles:
        try:
            load_profile(prof)
        except ProfileError as exc:
            ap.error(f"--profiles: {exc}")
    try:
        Trace.load(args.trace)
    except TraceError as exc:
        ap.error(f"--trace: {exc}")
    out = Path(args.out) if args.out else run_dir("paper_sim")
    torch.set_num_threads(1)
    t0 = time.time()
    command = (
        f"agra-ros bench paper sim --profiles {' '.join(args.profiles)} --inputs {args.inputs} --seed {args.seed} "
        f"--trace {args.trace}"
    )
    learned, notes = learned_policies(AgraEnv(trace=args.trace, allow_remote=False), args.seed)
    tables: dict[str, tuple[list[AlgorithmRow], AlgorithmRow]] = {}
    runs = len(args.profiles) * len(SIM_ALGORITHMS)
    with progress(total=runs * args.inputs, desc="paper sim", unit="step") as bar:
        for prof in args.profiles:
            rows, oracle = run_profile(prof, args.trace, args.inputs, args.seed, learned, notes, bar)
            tables[prof] = (rows, oracle)
            write_tables(
                rows,
                out,
                f"The AGRA paper's table in the simulator: {prof}",
                preamble=[
                    f"`{command}`",
                    "",
                    f"Device profile `{prof}` (power from its power model), trace `{args.trace}`, {args.inputs} sampled "
                    f"inputs per algorithm (consecutive greedy decisions over episodes seeded from {args.seed}; the same "
                    "for every algorithm), local execution. The oracle (per-decision best, knowing the tables) meets "
                    f"the target on {100 * oracle.attainment:.1f} % of them.",
                ],
                oracle_attainment=oracle.attainment,
                stem=f"paper_sim_{prof}",
            )
    preamble = [
        "# The AGRA paper's table in the simulator: agra against static and rule on every profile",
        "",
        f"`{command}`",
        "",
        f"Ratios of agra's means to static's and rule's (lower is better for energy and power), beside the paper's "
        f"({PAPER_DEVICE}); per-profile tables with p5/p95 and the power source: paper_sim_<profile>.md.",
    ]
    md, _ = summary_markdown(tables, preamble)
    (out / "paper_sim.md").write_text("\n".join(md) + "\n")
    png = out / "paper_sim.png"
    title = f"AGRA paper's comparison in the simulator ({args.trace} trace, {args.inputs} inputs, seed {args.seed})"
    plot(tables, png, title)
    if args.ship:
        shutil.copyfile(png, docs_dir() / "paper_sim.png")
    print("\n".join(md))
    print(
        f"\nwrote {out}/paper_sim.md, paper_sim.png and paper_sim_<profile>.md/.csv for {len(tables)} profiles "
        f"in {time.time() - t0:.0f} s" + (f"; shipped {docs_dir() / 'paper_sim.png'}" if args.ship else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
