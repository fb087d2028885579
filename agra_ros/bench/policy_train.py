"""Train the shipped AGRA policy in the simulator on the real tables: ``agra-ros train-policy [--ship]``.

PPO over eight simulators on the training traces (never the held-out one), each episode on a device drawn around
one of the shipped profiles (domain randomisation, :mod:`agra_ros.sim.randomise`; never the held-out profile), then
EWC consolidation on states from the prioritised memory so that online learning on the robot starts anchored to
what was learned here.

Why pretraining uses the simulator's fixed reward weights and not dual ascent: across randomised devices the
constraints are infeasible on part of the episodes (a Nano in 5 W mode cannot reach 30 FPS at the accuracy floor
with any configuration), so a miss rate and an accuracy loss averaged over all devices never fall under their
allowances and both multipliers climbed to their cap (measured: beta 50, gamma 49.6 after 600k steps); the policy
then priced accuracy six times higher than the benchmark's reward and reached 0.74-0.93 of the oracle's return
against 0.96-0.99 with fixed weights. The robot's learner, on one device, keeps dual ascent and starts it from
these weights (``--dual-ascent`` brings it back here).

The run is resumable: it writes ``trainer.pt`` (weights, optimiser, multipliers, step count) into its run folder
every ``--chunk`` steps and continues from it when started again with the same ``--run``. It writes the policy and a
learning-curve PNG into the run folder, and with ``--ship`` also over agra_ros/data/policy_agra.pt and
docs/policy_train_curve.png.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from agra_ros.core.reward import LagrangeMultipliers
from agra_ros.paths import docs_dir, run_dir
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.ppo import PPOSettings
from agra_ros.policy.registry import GPNPolicy, shipped_policy_path
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.sim.env import AgraEnv
from agra_ros.sim.randomise import HELDOUT_PROFILE, DeviceRandomisation

TRAIN_TRACES: tuple[str, ...] = ("default", "trace_a", "trace_b", "bench", "train_mix")
"""Traces the shipped policy is trained on (``heldout`` is kept for evaluation)."""
SHIPPED_ENV: dict[str, object] = {"allow_remote": False, "randomise_device": DeviceRandomisation()}
"""Simulator settings of the shipped policy: the robot policy_node serves by default, which has no remote node, on
a device drawn around the shipped profiles every episode."""
DEFAULT_STEPS = 600_000


def env_factory(trace: str, **kw) -> Callable[[], AgraEnv]:
    return lambda: AgraEnv(trace=trace, **kw)


def make_trainer(seed: int = 0, traces=TRAIN_TRACES, log=print, dual_ascent: bool = True, **env_kw) -> PPOTrainer:
    """PPO (+ dual ascent) over eight simulators on ``traces`` (the shipped policy's setup)."""
    fns = [env_factory(traces[i % len(traces)], **env_kw) for i in range(8)]
    return PPOTrainer(fns, PPOSettings(seed=seed, dual_ascent=dual_ascent), log=log)


def trained_policy(trainer: PPOTrainer) -> GPNPolicy:
    env = trainer.envs.envs[0]
    policy = GPNPolicy("agra", env.layout, env.n_layers, gpn=trainer.gpn)
    # without dual ascent the robot's learner starts its own from the simulator's fixed weights
    policy.multipliers = trainer.multipliers or LagrangeMultipliers(env.settings.weights)
    return policy


def plot_curve(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key in zip(axes, ("charts/episodic_return", "charts/fps_shortfall", "charts/beta")):
        if key in metrics and metrics[key]:
            x, y = zip(*metrics[key])
            y = np.asarray(y)
            k = max(1, len(y) // 50)
            ax.plot(x[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"))
        ax.set_title(key)
        ax.set_xlabel("environment steps")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="environment steps in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default=str(run_dir("policy_train")), help="run folder (resumed when it holds a run)")
    ap.add_argument("--chunk", type=int, default=50_000, help="steps between resumable checkpoints")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="also copy the policy over the shipped one (agra_ros/data) and the curve into docs/",
    )
    ap.add_argument(
        "--allow-remote",
        action="store_true",
        help="train for a robot with a remote perception node (default: local only, as policy_node's default)",
    )
    ap.add_argument(
        "--dual-ascent",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="learn the FPS and accuracy weights by dual ascent during pretraining (default: the simulator's fixed "
        "weights; see the module docstring)",
    )
    ap.add_argument(
        "--device",
        default=None,
        help="train on this one device profile instead of randomised devices (an ablation: the policy as it was "
        "before domain randomisation, e.g. the start of `agra-ros bench policy online --policy ...`)",
    )
    args = ap.parse_args(argv)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    sim = dict(SHIPPED_ENV, allow_remote=args.allow_remote)
    if args.device:
        sim.update(randomise_device=None, device=args.device)
    torch.set_num_threads(1)
    t0 = time.time()
    trainer = make_trainer(args.seed, log=lambda m: None, dual_ascent=args.dual_ascent, **sim)
    ckpt = run / "trainer.pt"
    if ckpt.is_file():
        trainer.load_state_dict(torch.load(ckpt, weights_only=False))
        print(f"resumed {ckpt} at step {trainer.global_step}")
    while trainer.global_step < args.steps:
        trainer.train(min(args.chunk, args.steps - trainer.global_step))
        torch.save(trainer.state_dict(), ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
        print(f"step {trainer.global_step}/{args.steps} ({time.time() - t0:.0f} s)", flush=True)
    policy = trained_policy(trainer)
    states, _, _ = trainer.memory.sample(256)
    policy.ewc = OnlineEWC()
    policy.ewc.consolidate(policy.gpn, states, seed=args.seed)
    policy.meta = {
        "steps": trainer.global_step,
        "seed": args.seed,
        "dual_ascent": args.dual_ascent,
        "traces": list(TRAIN_TRACES),
        "sim": {
            "allow_remote": args.allow_remote,
            "randomise_device": repr(sim["randomise_device"]),
            "device": args.device or "randomised",
        },
        "heldout_profile": HELDOUT_PROFILE,
        "cost_table": str(trainer.envs.envs[0].settings.cost_table or "default"),
    }
    out, curve = run / "policy_agra.pt", run / "policy_train_curve.png"
    policy.save(out)
    plot_curve(trainer.metrics, curve, "AGRA PPO + dual ascent (training traces, randomised devices)")
    print(
        f"trained {trainer.global_step} steps in {time.time() - t0:.0f} s; multipliers {policy.multipliers.state_dict()}"
    )
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {curve}")
    if args.ship:
        shutil.copyfile(out, shipped_policy_path())
        shutil.copyfile(curve, docs_dir() / "policy_train_curve.png")
        print(f"shipped {shipped_policy_path()} and {docs_dir() / 'policy_train_curve.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
