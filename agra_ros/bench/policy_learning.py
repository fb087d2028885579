"""Learning benchmarks of the policy's algorithm: our PPO against stable-baselines3's on the same budget (sb3), and
continual learning with and without EWC (continual). Both train throwaway policies only to measure the algorithm;
nothing here is shipped (the shipped policy's trainer is :mod:`agra_ros.training.policy`)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from agra_ros.bench.policy_common import PLOTS, RandomPolicy, follow, plot_curves
from agra_ros.policy.evaluate import evaluate
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.ppo import PPOSettings
from agra_ros.policy.registry import GPNPolicy
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.progress import advance_to, echo, progress
from agra_ros.sim.env import AgraEnv


# ------------------------------------------------------------------------------------------------- sb3
def bench_sb3(
    steps: int, seeds: tuple[int, ...], trace: str = "default", out_dir: Path = PLOTS
) -> dict[str, list[float]]:
    """Our PPO against stable-baselines3 PPO (dev dependency) on the same env, step budget, seeds and settings;
    draws both learning curves into ``out_dir/policy_ppo_vs_sb3.png``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    results: dict[str, list[float]] = {"ours": [], "sb3": []}
    curves: dict[str, list[tuple[int, float]]] = {}
    # the bar counts training steps, ours then sb3's, for every seed
    bar = progress(total=2 * steps * len(seeds), desc="bench sb3", unit="step")
    for k, seed in enumerate(seeds):
        s = PPOSettings(total_timesteps=steps, seed=seed, memory_capacity=0)
        t0 = time.time()
        trainer = PPOTrainer([lambda: AgraEnv(trace=trace)] * s.num_envs, s)
        follow(bar, trainer, 2 * k * steps)
        trainer.train()
        env = AgraEnv(trace=trace)
        ours = GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn)
        r_ours = evaluate(ours, env, episodes=5, seed=10_000).mean_return
        t_ours = time.time() - t0
        curves[f"ours seed {seed}"] = trainer.metrics["charts/episodic_return"]

        class Curve(BaseCallback):
            def __init__(self, base: int):
                super().__init__()
                self.points: list[tuple[int, float]] = []
                self.base = base

            def _on_step(self) -> bool:
                for info in self.locals.get("infos", []):
                    if "episode" in info:
                        self.points.append((self.num_timesteps, float(info["episode"]["r"])))
                advance_to(bar, self.base + self.num_timesteps)
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
        cb = Curve((2 * k + 1) * steps)
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
        echo(f"seed {seed}: ours {r_ours:.2f} ({t_ours:.0f} s)   sb3 {r_sb3:.2f} ({t_sb3:.0f} s)")
    bar.close()
    print(
        f"mean eval return over seeds {seeds}, {steps} steps each, trace {trace}: "
        f"ours {np.mean(results['ours']):.2f} +- {np.std(results['ours']):.2f}, "
        f"sb3 {np.mean(results['sb3']):.2f} +- {np.std(results['sb3']):.2f}"
    )
    plot_curves(curves, out_dir / "policy_ppo_vs_sb3.png", f"PPO: ours vs stable-baselines3 ({trace})")
    return results


# ------------------------------------------------------------------------------------------------- continual
def bench_continual(
    steps: int, seed: int = 0, strength: float = 10.0, episodes: int = 5, out_dir: Path = PLOTS
) -> dict[str, float]:
    """Train on trace_a, then on trace_b with and without EWC; the return on trace_a before and after, and the share
    of its improvement over random that is kept. Draws the trace_b curves into ``out_dir/policy_continual.png``."""
    env_a, env_b = AgraEnv(trace="trace_a"), AgraEnv(trace="trace_b")
    s = PPOSettings(total_timesteps=steps, seed=seed)
    bar = progress(total=3 * steps, desc="bench continual", unit="step")  # training steps: A, then B twice
    trainer_a = PPOTrainer([lambda: AgraEnv(trace="trace_a")] * s.num_envs, s)
    follow(bar, trainer_a, 0)
    trainer_a.train()
    gpn_a = trainer_a.gpn

    def ret(gpn, env):
        return evaluate(GPNPolicy("agra", env.layout, env.n_layers, gpn=gpn), env, episodes, seed=30_000).mean_return

    r_rand_a = evaluate(RandomPolicy(env_a, seed), env_a, episodes, seed=30_000).mean_return
    r_a_before = ret(gpn_a, env_a)
    out = {"random_A": r_rand_a, "A_before": r_a_before, "B_before": ret(gpn_a, env_b)}
    curves = {}
    for k, use_ewc in enumerate((False, True)):
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
        follow(bar, tb, (k + 1) * steps)
        tb.train()
        tag = "ewc" if use_ewc else "no_ewc"
        out[f"A_after_{tag}"] = ret(gpn, env_a)
        out[f"B_after_{tag}"] = ret(gpn, env_b)
        out[f"retained_{tag}"] = (out[f"A_after_{tag}"] - r_rand_a) / (r_a_before - r_rand_a)
        curves[f"B training, {tag}"] = tb.metrics["charts/episodic_return"]
    bar.close()
    print(f"continual A=trace_a -> B=trace_b, {steps} steps each, seed {seed}, EWC strength {strength}")
    for k, v in out.items():
        print(f"  {k:16s} {v:9.3f}")
    plot_curves(curves, out_dir / "policy_continual.png", "Training on B after A (episodic return on B)")
    return out
