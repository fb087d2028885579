"""Policy benchmarks in the simulator (real cost table and accuracy model): ``python -m agra_ros.bench.policy_bench
{sim,latency,sb3,compare,online,continual,all}``. Each prints its numbers; sb3, compare, online and continual write
a PNG under runs/policy_bench/ (docs/ with --ship).

- sim: simulator steps per second with random actions (median of 5 runs; the issue asks for >= 5,000).
- latency: GPN decision time for one state on this CPU (p50/p99, 1 thread).
- sb3: our PPO against stable-baselines3 PPO (dev dependency) on the same env, step budget, seeds and settings.
- compare: on every shipped device profile and the held-out one, agra against A2C, the bandit, rule-based, static,
  tuned static (the best uniform configuration in hindsight) and the oracle on the held-out trace, local execution
  (the shipped setting): FPS met, energy per frame, accuracy, return; writes policy_compare.png.
- online: from the shipped policy on the held-out profile, online PPO + EWC through the on-robot learner's code
  path; return against the oracle's over simulated minutes, then what is kept back on a shipped profile, with and
  without EWC; writes policy_online.png.
- continual: train on trace_a, then trace_b, with and without EWC; return on trace_a before and after.

The benches live in their own modules, one per job (``policy_speed``: sim, latency; ``policy_learning``: sb3,
continual; ``policy_compare``: compare; ``policy_online``: online; ``policy_common``: what they share); this module
is their command line (``agra-ros bench policy ...``).

Returns are negative costs, so "x % of the oracle" is reported two ways: the oracle's return over the policy's
(cost ratio) and (R - R_random) / (R_oracle - R_random) (share of the achievable improvement over random).
"""

from __future__ import annotations

import argparse

import torch

from agra_ros.bench.policy_common import PLOTS
from agra_ros.bench.policy_compare import BENCH_PROFILES, bench_compare
from agra_ros.bench.policy_learning import bench_continual, bench_sb3
from agra_ros.bench.policy_online import bench_online
from agra_ros.bench.policy_speed import bench_latency, bench_sim
from agra_ros.paths import docs_dir
from agra_ros.sim.randomise import HELDOUT_PROFILE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros bench policy", description="AGRA policy benchmarks in the simulator")
    ap.add_argument("which", choices=["sim", "latency", "sb3", "compare", "online", "continual", "all"])
    ap.add_argument("--steps", type=int, default=100_000, help="training steps per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument(
        "--ewc-strength", type=float, default=10.0, help="pull of an average parameter (mean-normalised Fisher)"
    )
    ap.add_argument("--policy", help="compare: agra policy file (default: the shipped one)")
    ap.add_argument("--device", default=HELDOUT_PROFILE, help="online: the profile to adapt on")
    ap.add_argument("--back-to", default="jetson_nano_maxn", help="online: the shipped profile to return to")
    ap.add_argument("--online-lr", type=float, default=None, help="online: learning rate (default: policy_node's)")
    ap.add_argument("--minutes", type=float, default=30.0, help="online: simulated minutes of online learning")
    ap.add_argument("--allow-remote", action="store_true", help="compare: with a remote perception node")
    ap.add_argument("--episodes", type=int, default=3, help="compare: episodes per policy and profile")
    ap.add_argument("--profiles", nargs="+", default=list(BENCH_PROFILES), help="compare: device profiles")
    ap.add_argument("--ship", action="store_true", help="draw the PNGs into docs/ (default runs/policy_bench/)")
    args = ap.parse_args(argv)
    plots = docs_dir() if args.ship else PLOTS
    torch.set_num_threads(1)
    if args.which in ("sim", "all"):
        bench_sim()
    if args.which in ("latency", "all"):
        bench_latency()
    if args.which in ("sb3", "all"):
        bench_sb3(args.steps, tuple(args.seeds), out_dir=plots)
    if args.which in ("compare", "all"):
        bench_compare(
            args.steps,
            episodes=args.episodes,
            policy=args.policy,
            profiles=tuple(args.profiles),
            out_dir=plots,
            allow_remote=args.allow_remote,
        )
    if args.which in ("online", "all"):
        bench_online(
            policy=args.policy,
            device=args.device,
            back_to=args.back_to,
            minutes=args.minutes,
            episodes=args.episodes,
            out_dir=plots,
            learning_rate=args.online_lr,
        )
    if args.which in ("continual", "all"):
        bench_continual(args.steps, args.seeds[0], args.ewc_strength, out_dir=plots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
