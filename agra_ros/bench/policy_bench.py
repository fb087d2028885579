"""Policy benchmarks in the simulator (real cost table and accuracy model): ``python -m agra_ros.bench.policy_bench
{sim,latency,sb3,compare,continual,all}``. Each prints its numbers; sb3 and continual write a PNG under docs/.

- sim: simulator steps per second with random actions (median of 5 runs; the issue asks for >= 5,000).
- latency: GPN decision time for one state on this CPU (p50/p99, 1 thread).
- sb3: our PPO against stable-baselines3 PPO (dev dependency) on the same env, step budget, seeds and settings.
- compare: agra against the oracle, rule-based, static, A2C and the bandit on the held-out trace, all trained and
  judged in one world: local execution only (the shipped setting) or, with ``--allow-remote``, with a remote node.
- continual: train on trace_a, then trace_b, with and without EWC; return on trace_a before and after.

Returns are negative costs, so "x % of the oracle" is reported two ways: the oracle's return over the policy's
(cost ratio) and (R - R_random) / (R_oracle - R_random) (share of the achievable improvement over random).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from agra_ros.paths import docs_dir, run_dir
from agra_ros.policy.baselines import a2c_settings
from agra_ros.policy.evaluate import evaluate
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.ppo import PPOSettings
from agra_ros.policy.registry import GPNPolicy, layout_from_checkpoint, make_policy, shipped_policy_path
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.sim.env import AgraEnv

PLOTS = run_dir("policy_bench")
"""Where sb3 and continual draw their PNGs (docs/ with --ship)."""


class RandomPolicy:
    name = "random"

    def __init__(self, env: AgraEnv, seed: int = 0) -> None:
        self.nvec = env.action_space.nvec
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return self.rng.integers(0, self.nvec)


def _plot(curves: dict[str, list[tuple[int, float]]], path: Path, title: str, ylabel: str = "episodic return"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, pts in curves.items():
        if not pts:
            continue
        x, y = zip(*pts)
        y = np.asarray(y)
        k = max(1, len(y) // 40)
        ax.plot(np.asarray(x)[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"), label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------------------- sim speed
def bench_sim(n: int = 20_000, repeats: int = 5) -> dict[str, float]:
    """Simulator steps per second with random actions (median of ``repeats`` runs; issue 4 asks for >= 5,000)."""
    env = AgraEnv(trace="bench")
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(256)]
    for a in actions:  # warm the lookup cache as a policy's repeated choices would
        env.step(a)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            _, _, term, trunc, _ = env.step(actions[i % 256])
            if term or trunc:
                env.reset()
        rates.append(n / (time.perf_counter() - t0))
    out = {"median_steps_per_s": float(np.median(rates)), "min_steps_per_s": float(np.min(rates))}
    print(
        f"simulator: median {out['median_steps_per_s']:.0f} steps/s, worst {out['min_steps_per_s']:.0f} steps/s "
        f"({repeats} runs x {n} random steps, 1 thread)"
    )
    return out


# ------------------------------------------------------------------------------------------------- latency
def bench_latency(n: int = 2000) -> dict[str, float]:
    env = AgraEnv(trace="bench")
    pol = make_policy("agra") if shipped_policy_path().is_file() else make_policy("agra", env=env)
    obs, _ = env.reset(seed=0)
    for _ in range(100):
        pol.act(obs)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        pol.act(obs)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    out = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}
    print(
        f"GPN decision latency (validate + forward, 1 thread, {n} calls): p50 {out['p50_ms']:.3f} ms, "
        f"p99 {out['p99_ms']:.3f} ms"
    )
    return out


# ------------------------------------------------------------------------------------------------- sb3
def bench_sb3(steps: int, seeds: tuple[int, ...], trace: str = "default") -> dict[str, list[float]]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    results: dict[str, list[float]] = {"ours": [], "sb3": []}
    curves: dict[str, list[tuple[int, float]]] = {}
    for seed in seeds:
        s = PPOSettings(total_timesteps=steps, seed=seed, memory_capacity=0)
        t0 = time.time()
        trainer = PPOTrainer([lambda: AgraEnv(trace=trace)] * s.num_envs, s)
        trainer.train()
        env = AgraEnv(trace=trace)
        ours = GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn)
        r_ours = evaluate(ours, env, episodes=5, seed=10_000).mean_return
        t_ours = time.time() - t0
        curves[f"ours seed {seed}"] = trainer.metrics["charts/episodic_return"]

        class Curve(BaseCallback):
            def __init__(self):
                super().__init__()
                self.points: list[tuple[int, float]] = []

            def _on_step(self) -> bool:
                for info in self.locals.get("infos", []):
                    if "episode" in info:
                        self.points.append((self.num_timesteps, float(info["episode"]["r"])))
                return True

        from stable_baselines3.common.monitor import Monitor

        t0 = time.time()
        venv = DummyVecEnv([lambda: Monitor(AgraEnv(trace=trace))] * s.num_envs)
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=s.num_steps,
            batch_size=s.minibatch_size,
            n_epochs=s.update_epochs,
            learning_rate=s.learning_rate,
            gamma=s.gamma,
            gae_lambda=s.gae_lambda,
            clip_range=s.clip_coef,
            ent_coef=s.ent_coef,
            vf_coef=s.vf_coef,
            max_grad_norm=s.max_grad_norm,
            target_kl=s.target_kl,
            policy_kwargs={"net_arch": [s.hidden, s.hidden]},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        cb = Curve()
        model.learn(steps, callback=cb)
        t_sb3 = time.time() - t0

        class SB3Act:
            def __init__(self, sb3_model):
                self.model = sb3_model

            def act(self, obs):
                return self.model.predict(obs, deterministic=True)[0]

        r_sb3 = evaluate(SB3Act(model), env, episodes=5, seed=10_000).mean_return
        curves[f"sb3 seed {seed}"] = cb.points
        results["ours"].append(r_ours)
        results["sb3"].append(r_sb3)
        print(f"seed {seed}: ours {r_ours:.2f} ({t_ours:.0f} s)   sb3 {r_sb3:.2f} ({t_sb3:.0f} s)")
    print(
        f"mean eval return over seeds {seeds}, {steps} steps each, trace {trace}: "
        f"ours {np.mean(results['ours']):.2f} +- {np.std(results['ours']):.2f}, "
        f"sb3 {np.mean(results['sb3']):.2f} +- {np.std(results['sb3']):.2f}"
    )
    _plot(curves, PLOTS / "policy_ppo_vs_sb3.png", f"PPO: ours vs stable-baselines3 ({trace})")
    return results


# ------------------------------------------------------------------------------------------------- compare
def _load_agra(path: Path) -> GPNPolicy:
    layout, n_layers = layout_from_checkpoint(path)
    pol = GPNPolicy("agra", layout, n_layers)
    pol.load(path)
    return pol


def bench_compare(
    baseline_steps: int,
    trace: str = "heldout",
    episodes: int = 3,
    policy: str | None = None,
    allow_remote: bool = False,
) -> dict[str, dict]:
    """agra (``policy``: a policy_train output, default the shipped one) against the oracle and the baselines, all
    trained and judged in the same world: local execution only unless ``allow_remote``."""
    from agra_ros.bench.policy_train import SHIPPED_ENV, TRAIN_TRACES

    sim = dict(SHIPPED_ENV, allow_remote=allow_remote)
    env = AgraEnv(trace=trace, **sim)
    path = Path(policy) if policy else shipped_policy_path()
    if not path.is_file():
        raise SystemExit(f"no policy at {path}: run python -m agra_ros.bench.policy_train")
    pols = {
        "agra": _load_agra(path),
        "oracle": make_policy("oracle", env=env),
        "rule": make_policy("rule", env=env),
        "static": make_policy("static", env=env),
        "random": RandomPolicy(env),
    }
    fns = [lambda t=t: AgraEnv(trace=t, **sim) for t in TRAIN_TRACES] * 2
    a2c = PPOTrainer(fns, a2c_settings(baseline_steps))
    a2c.train()
    pols["a2c"] = GPNPolicy("a2c", env.layout, env.n_layers, gpn=a2c.gpn)
    bandit = make_policy("bandit", env=env)
    for i, t in enumerate(TRAIN_TRACES):
        bandit.train(AgraEnv(trace=t, **sim), baseline_steps // len(TRAIN_TRACES), seed=i)
    pols["bandit"] = bandit
    res = {name: evaluate(p, env, episodes=episodes, seed=20_000) for name, p in pols.items()}
    r_or, r_rand = res["oracle"].mean_return, res["random"].mean_return
    print(f"{'remote allowed' if allow_remote else 'local execution only'}; policy {path}")
    print(f"held-out trace {trace!r}, {episodes} episodes x {env.settings.max_steps} decisions, same seeds")
    print(
        f"{'policy':8s} {'return':>9s} {'oracle/R':>9s} {'norm':>6s} {'FPS met':>8s} {'J/frame':>8s} "
        f"{'acc ratio':>9s} {'remote':>6s}"
    )
    for name, r in res.items():
        ratio = r_or / r.mean_return if r.mean_return < 0 else float("nan")
        norm = (r.mean_return - r_rand) / (r_or - r_rand)
        print(
            f"{name:8s} {r.mean_return:9.2f} {ratio:9.3f} {norm:6.3f} {r.target_met:8.3f} "
            f"{r.energy_per_frame_j:8.4f} {r.accuracy_ratio:9.3f} {r.remote_share:6.2f}"
        )
    return {k: vars(v) for k, v in res.items()}


# ------------------------------------------------------------------------------------------------- continual
def bench_continual(steps: int, seed: int = 0, strength: float = 10.0, episodes: int = 5) -> dict[str, float]:
    env_a, env_b = AgraEnv(trace="trace_a"), AgraEnv(trace="trace_b")
    s = PPOSettings(total_timesteps=steps, seed=seed)
    trainer_a = PPOTrainer([lambda: AgraEnv(trace="trace_a")] * s.num_envs, s)
    trainer_a.train()
    gpn_a = trainer_a.gpn

    def ret(gpn, env):
        return evaluate(GPNPolicy("agra", env.layout, env.n_layers, gpn=gpn), env, episodes, seed=30_000).mean_return

    r_rand_a = evaluate(RandomPolicy(env_a, seed), env_a, episodes, seed=30_000).mean_return
    r_a_before = ret(gpn_a, env_a)
    out = {"random_A": r_rand_a, "A_before": r_a_before, "B_before": ret(gpn_a, env_b)}
    curves = {}
    for use_ewc in (False, True):
        gpn = copy.deepcopy(gpn_a)
        ewc = None
        if use_ewc:
            ewc = OnlineEWC(strength=strength)
            states, _, _ = trainer_a.memory.sample(ewc.fisher_samples)
            ewc.consolidate(gpn, states, seed=seed)
        tb = PPOTrainer(
            [lambda: AgraEnv(trace="trace_b")] * s.num_envs,
            PPOSettings(total_timesteps=steps, seed=seed),
            gpn=gpn,
            ewc=ewc,
        )
        tb.train()
        tag = "ewc" if use_ewc else "no_ewc"
        out[f"A_after_{tag}"] = ret(gpn, env_a)
        out[f"B_after_{tag}"] = ret(gpn, env_b)
        out[f"retained_{tag}"] = (out[f"A_after_{tag}"] - r_rand_a) / (r_a_before - r_rand_a)
        curves[f"B training, {tag}"] = tb.metrics["charts/episodic_return"]
    print(f"continual A=trace_a -> B=trace_b, {steps} steps each, seed {seed}, EWC strength {strength}")
    for k, v in out.items():
        print(f"  {k:16s} {v:9.3f}")
    _plot(curves, PLOTS / "policy_continual.png", "Training on B after A (episodic return on B)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="AGRA policy benchmarks in the simulator")
    ap.add_argument("which", choices=["sim", "latency", "sb3", "compare", "continual", "all"])
    ap.add_argument("--steps", type=int, default=100_000, help="training steps per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument(
        "--ewc-strength", type=float, default=10.0, help="pull of an average parameter (mean-normalised Fisher)"
    )
    ap.add_argument("--policy", help="compare: agra policy file (default: the shipped one)")
    ap.add_argument("--allow-remote", action="store_true", help="compare: with a remote perception node")
    ap.add_argument("--ship", action="store_true", help="draw the PNGs into docs/ (default runs/policy_bench/)")
    args = ap.parse_args(argv)
    global PLOTS
    PLOTS = docs_dir() if args.ship else PLOTS
    torch.set_num_threads(1)
    if args.which in ("sim", "all"):
        bench_sim()
    if args.which in ("latency", "all"):
        bench_latency()
    if args.which in ("sb3", "all"):
        bench_sb3(args.steps, tuple(args.seeds))
    if args.which in ("compare", "all"):
        bench_compare(args.steps, policy=args.policy, allow_remote=args.allow_remote)
    if args.which in ("continual", "all"):
        bench_continual(args.steps, args.seeds[0], args.ewc_strength)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
