"""The comparison table: agra against A2C, the bandit, rule-based, static, tuned static (the best uniform
configuration in hindsight) and the oracle on the held-out trace, on every shipped device profile and the held-out
one (FPS met, energy per frame, accuracy, return), with its plot. It measures policies; the baselines it trains
come from :mod:`agra_ros.training.policy`, as the shipped ones do."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agra_ros.bench.policy_common import RandomPolicy
from agra_ros.granularity.levels import LEVELS, RESOLUTION_SCALES
from agra_ros.policy.evaluate import EvalResult, evaluate
from agra_ros.policy.registry import load_policy, make_policy, shipped_policy_path
from agra_ros.progress import advance_to, echo, progress
from agra_ros.sim.env import AgraEnv
from agra_ros.sim.randomise import HELDOUT_PROFILE, TRAINING_PROFILES


class UniformPolicy:
    """One fixed uniform configuration (every layer at one level, one scale, local): the candidates of tuned static."""

    def __init__(self, n_layers: int, level: int, scale: int) -> None:
        self.name = f"uniform {LEVELS[level]} x{RESOLUTION_SCALES[scale]:g}"
        self.action = np.array([level] * n_layers + [scale, 0, 0], dtype=np.int64)

    def act(self, obs):
        return self.action


def tuned_static(env: AgraEnv, episodes: int, seed: int, fps_met: float = 0.95) -> tuple[str, EvalResult] | None:
    """The cheapest uniform configuration, chosen in hindsight on this trace and device, that meets the target on at
    least ``fps_met`` of the decisions and the accuracy floor on average (what a careful user sets by hand); None
    when no uniform configuration does."""
    best: tuple[str, EvalResult] | None = None
    for level in range(len(LEVELS)):
        for scale in range(len(RESOLUTION_SCALES)):
            pol = UniformPolicy(env.n_layers, level, scale)
            r = evaluate(pol, env, episodes=episodes, seed=seed)
            ok = r.target_met >= fps_met and r.accuracy_ratio >= env.settings.accuracy_floor
            if ok and (best is None or r.system_energy_per_frame_j < best[1].system_energy_per_frame_j):
                best = (pol.name, r)
    return best


BENCH_PROFILES: tuple[str, ...] = (*TRAINING_PROFILES, HELDOUT_PROFILE)
"""Every shipped profile the policy trained around, then the held-out one."""
TABLE_POLICIES: tuple[str, ...] = ("agra", "a2c", "bandit", "rule", "static", "tuned static", "oracle")


def bench_compare(
    baseline_steps: int,
    trace: str = "heldout_rel",
    episodes: int = 3,
    policy: str | None = None,
    profiles: tuple[str, ...] = BENCH_PROFILES,
    out_dir: Path | None = None,
    allow_remote: bool = False,
) -> dict[str, dict[str, EvalResult | None]]:
    """agra (``policy``: a policy_train output, default the shipped one) against the baselines and the oracle on the
    held-out trace, on every profile, local execution. a2c trains once across randomised devices, as agra does; the
    bandit, an on-device learner, trains on each profile (on the training traces); tuned static is chosen in
    hindsight per profile. Prints one table and writes ``policy_compare.png``. ``allow_remote``: a remote perception
    node exists (for a policy trained with ``train-policy --allow-remote``)."""
    from agra_ros.training.policy import SHIPPED_ENV, train_a2c, train_bandit

    sim = dict(SHIPPED_ENV, allow_remote=allow_remote)
    path = Path(policy) if policy else shipped_policy_path()
    if not path.is_file():
        raise SystemExit(f"no policy at {path}: run agra-ros train-policy")
    agra = load_policy(path)
    t0 = time.time()
    with progress(total=baseline_steps, desc="bench compare: a2c", unit="step") as bar:
        a2c, _ = train_a2c(baseline_steps, on_step=lambda n: advance_to(bar, n), **sim)
    print(f"a2c: {baseline_steps} steps across randomised devices in {time.time() - t0:.0f} s")
    results: dict[str, dict[str, EvalResult | None]] = {}
    tuned_names: dict[str, str] = {}
    # then one profile at a time (the bandit's training and every evaluation): each costs about the same
    for prof in progress(profiles, desc="bench compare: profiles", unit="profile"):
        world = {"device": prof, "allow_remote": allow_remote}
        env = AgraEnv(trace=trace, **world)
        bandit, _ = train_bandit(baseline_steps // 2, **world)
        pols = {
            "agra": agra,
            "a2c": a2c,
            "bandit": bandit,
            "rule": make_policy("rule", env=env),
            "static": make_policy("static", env=env),
            "oracle": make_policy("oracle", env=env),
            "random": RandomPolicy(env),
        }
        res: dict[str, EvalResult | None] = {
            n: evaluate(p, env, episodes=episodes, seed=20_000) for n, p in pols.items()
        }
        tuned = tuned_static(env, episodes, 20_000)
        res["tuned static"] = tuned[1] if tuned else None
        tuned_names[prof] = tuned[0] if tuned else "none meets target and floor"
        results[prof] = res
        echo(f"  {prof}: done ({time.time() - t0:.0f} s)")
    print(
        f"held-out trace {trace!r}, {'remote node allowed' if allow_remote else 'local execution'}, {episodes} "
        f"episodes x {env.settings.max_steps} decisions, same seeds"
    )
    print(f"policy {path}")
    print_table(results, tuned_names)
    if out_dir is not None:
        plot_compare(results, out_dir / "policy_compare.png")
    return results


def _ratio(oracle: float, r: float) -> float:
    """The oracle's return over the policy's (returns are negative costs: 1.0 is the oracle, lower is worse)."""
    return oracle / r if r < 0 else float("nan")


def print_table(results: dict[str, dict[str, EvalResult | None]], tuned_names: dict[str, str]) -> None:
    """The issue's table: per profile and policy, FPS met, energy per frame, accuracy, return, oracle/return; and
    agra's energy against static, rule and tuned static."""
    print(
        f"| {'device profile':17s} | {'policy':12s} | FPS met | J/frame | acc ratio | {'return':>8s} | oracle/R |"
        "\n|---|---|---|---|---|---|---|"
    )
    for prof, res in results.items():
        r_or = res["oracle"].mean_return
        for name in TABLE_POLICIES:
            r = res[name]
            if r is None:
                print(f"| {prof:17s} | {name:12s} | {'-':>7s} | {'-':>7s} | {'-':>9s} | {'-':>8s} | {'-':>8s} |")
                continue
            print(
                f"| {prof:17s} | {name:12s} | {r.target_met:7.3f} | {r.system_energy_per_frame_j:7.4f} | "
                f"{r.accuracy_ratio:9.3f} | {r.mean_return:8.2f} | {_ratio(r_or, r.mean_return):8.3f} |"
            )
    print("\ntuned static (hindsight): " + "; ".join(f"{k}: {v}" for k, v in tuned_names.items()))
    print(
        f"\n| {'device profile':17s} | agra/oracle FPS met | oracle/agra return | agra J / static | "
        "agra J / rule (rule FPS met) | agra J / tuned static | agra R >= a2c, bandit |\n|---|---|---|---|---|---|---|"
    )
    for prof, res in results.items():
        ag, st, ru, tu, orc = res["agra"], res["static"], res["rule"], res["tuned static"], res["oracle"]
        e = ag.system_energy_per_frame_j
        vs_static = f"{e / st.system_energy_per_frame_j:.3f}" if st.target_met >= 0.95 else "(static misses)"
        vs_tuned = f"{e / tu.system_energy_per_frame_j:.3f}" if tu is not None else "(none)"
        beats = ag.mean_return >= res["a2c"].mean_return and ag.mean_return >= res["bandit"].mean_return
        print(
            f"| {prof:17s} | {ag.target_met:.3f} / {orc.target_met:.3f} | {_ratio(orc.mean_return, ag.mean_return):.3f}"
            f" | {vs_static} | {e / ru.system_energy_per_frame_j:.3f} ({ru.target_met:.3f}) | {vs_tuned} | "
            f"{'yes' if beats else 'no'} |"
        )


def plot_compare(results: dict[str, dict[str, EvalResult | None]], path: Path) -> None:
    """FPS met and energy per frame (relative to the oracle's) per profile and policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profs = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / len(TABLE_POLICIES)
    for k, name in enumerate(TABLE_POLICIES):
        x = np.arange(len(profs)) + k * width
        met = [results[p][name].target_met if results[p][name] else np.nan for p in profs]
        energy = [
            results[p][name].system_energy_per_frame_j / results[p]["oracle"].system_energy_per_frame_j
            if results[p][name]
            else np.nan
            for p in profs
        ]
        ret = [
            _ratio(results[p]["oracle"].mean_return, results[p][name].mean_return) if results[p][name] else np.nan
            for p in profs
        ]
        axes[0].bar(x, met, width, label=name)
        axes[1].bar(x, energy, width, label=name)
        axes[2].bar(x, ret, width, label=name)
    for ax, title in zip(axes, ("FPS met", "system energy per frame / oracle's", "oracle return / return")):
        ax.set_xticks(np.arange(len(profs)) + 0.4 - width / 2, profs, rotation=20, fontsize=8)
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle("held-out trace, local execution")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")
