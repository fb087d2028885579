"""Train the shipped AGRA policy in the simulator on the real tables: ``agra-ros train-policy [--ship]``.

PPO over eight simulators on the training traces (never the held-out one), each episode on a device drawn around
one of the shipped profiles (domain randomisation, :mod:`agra_ros.sim.randomise`; never the held-out profile) and,
on half of them, with an accuracy floor drawn in 0.5-0.95, and on a third of them with a perception server behind a
drawn link profile (:mod:`agra_ros.sim.link`; the rest have none); every chunk is scored on validation (:class:`Validation`)
and the best one is kept; then EWC consolidation on states from the prioritised memory so that online learning on
the robot starts anchored to what was learned here.

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

``--algorithm a2c`` / ``bandit`` pretrain the learning baselines the same way, so that on the robot each starts
from its own simulator pretraining as agra does (the policy node loads agra_ros/data/policy_<algorithm>.pt):
:func:`train_a2c` and :func:`train_bandit`, which ``agra-ros bench policy compare`` uses too. Both train on the
training traces in the shipped setup (:data:`SHIPPED_ENV`: a server on part of the episodes, a device drawn around the shipped
profiles every episode, never the held-out one), with the simulator's fixed reward weights (the seed papers' A2C
and AutoScale have no dual ascent), and write policy_<algorithm>.pt (+ a curve) into their own run folder; with
``--ship`` over agra_ros/data/policy_<algorithm>.pt. They are not resumable (A2C anneals its step size over the
whole run; the bandit takes seconds).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from agra_ros.core.contract import default_accuracy_model, default_cost_table
from agra_ros.core.reward import LagrangeMultipliers
from agra_ros.paths import docs_dir, run_dir
from agra_ros.policy.baselines import BanditPolicy, a2c_settings
from agra_ros.policy.evaluate import evaluate
from agra_ros.policy.ewc import OnlineEWC
from agra_ros.policy.ppo import PPOSettings
from agra_ros.policy.registry import GPNPolicy, make_policy, shipped_policy_path
from agra_ros.policy.trainer import PPOTrainer
from agra_ros.progress import advance_to, echo, progress
from agra_ros.sim.env import AgraEnv, SimSettings
from agra_ros.sim.randomise import HELDOUT_PROFILE, TRAINING_PROFILES, DeviceRandomisation

TRAIN_TRACES: tuple[str, ...] = ("default", "trace_a", "trace_b", "bench", "train_mix", "train_rel")
"""Traces the shipped policy is trained on (``heldout`` and ``heldout_rel`` are kept for evaluation); ``train_rel``
states its targets relative to each episode's device, so slow profiles see binding targets too."""
SERVER_LINKS: tuple[str, ...] = ("good_wifi", "poor_wifi", "lte")
"""Link profiles (:mod:`agra_ros.sim.link`) of the training episodes that have a perception server."""
SERVER_SHARE = 0.35
"""Share of training episodes with a perception server; the rest have none (policy_node's default robot)."""
SHIPPED_ENV: dict[str, object] = {
    "allow_remote": True,
    "link_profiles": SERVER_LINKS,
    "server_share": SERVER_SHARE,
    "randomise_device": DeviceRandomisation(),
    "accuracy_floor_range": (0.5, 0.95),
    "accuracy_floor_drawn_share": 0.5,
}
"""Simulator settings of the shipped policy: one policy for robots with and without a perception server (P says
which: :class:`agra_ros.core.observation.LinkObservation`), so :data:`SERVER_SHARE` of the episodes have a server
behind one of :data:`SERVER_LINKS` and the rest none (remote masked to local); a device drawn around the shipped
profiles every episode, and on half the episodes an accuracy floor drawn in 0.5-0.95 (policy_node's
accuracy_floor parameter; the other half keep the default 0.9)."""
DEFAULT_STEPS = 1_200_000
BASELINE_STEPS = 300_000
"""Default pretraining of the learning baselines (a2c: 100 s wall on one thread of a loaded 2-core VM; the
bandit: about a minute)."""
ALGORITHMS: tuple[str, ...] = ("agra", "a2c", "bandit")
VALIDATION_TRACES: tuple[str, ...] = TRAIN_TRACES
"""Training traces the checkpoints are scored on for model selection (never the held-out trace)."""
VALIDATION_SEED = 50_000


class Validation:
    """Model selection: the oracle's return over the policy's, on every training profile (as the profile is, not
    randomised) and :data:`VALIDATION_TRACES`, averaged, for each resumable checkpoint of a run; the run ships the
    best one. PPO's return on these tables moves by several points between checkpoints and between runs (measured:
    1.2 M-step runs that differed only in seed or one setting ended at 0.86-0.93 of the oracle's return on the
    held-out Pi), so the last checkpoint is a lottery ticket. The held-out trace and profile stay unseen: they are
    the benchmark's."""

    def __init__(self, profiles: tuple[str, ...] = TRAINING_PROFILES, episodes: int = 2, **sim) -> None:
        world = {k: sim[k] for k in ("allow_remote", "link_profiles", "server_share") if k in sim}
        world.setdefault("allow_remote", False)
        self.episodes = episodes
        self.cases = [(p, t, AgraEnv(trace=t, device=p, **world)) for p in profiles for t in VALIDATION_TRACES]
        self.oracle = [self._return(make_policy("oracle", env=env), env) for _, _, env in self.cases]

    def _return(self, policy, env: AgraEnv) -> float:
        return evaluate(policy, env, episodes=self.episodes, seed=VALIDATION_SEED).mean_return

    def ratios(self, policy) -> dict[str, float]:
        """oracle return / policy return per (profile, trace): 1.0 is the oracle, lower is worse."""
        out = {}
        for (prof, trace, env), r_oracle in zip(self.cases, self.oracle):
            r = self._return(policy, env)
            out[f"{prof}/{trace}"] = r_oracle / r if r < 0 else 1.0
        return out


def env_factory(trace: str, **kw) -> Callable[[], AgraEnv]:
    return lambda: AgraEnv(trace=trace, **kw)


def make_trainer(
    seed: int = 0,
    traces=TRAIN_TRACES,
    log=print,
    dual_ascent: bool = True,
    anneal_steps: int | None = None,
    **env_kw,
) -> PPOTrainer:
    """PPO (+ dual ascent) over eight simulators on ``traces`` (the shipped policy's setup); with ``anneal_steps``
    the step size decays linearly to zero over that many steps."""
    fns = [env_factory(traces[i % len(traces)], **env_kw) for i in range(8)]
    settings = PPOSettings(seed=seed, dual_ascent=dual_ascent)
    if anneal_steps:
        settings.anneal_lr, settings.total_timesteps = True, int(anneal_steps)
    return PPOTrainer(fns, settings, log=log)


def trained_policy(trainer: PPOTrainer, name: str = "agra") -> GPNPolicy:
    env = trainer.envs.envs[0]
    policy = GPNPolicy(name, env.layout, env.n_layers, gpn=trainer.gpn)
    # without dual ascent the robot's learner starts its own from the simulator's fixed weights
    policy.multipliers = trainer.multipliers or LagrangeMultipliers(env.settings.weights)
    return policy


def train_a2c(
    steps: int,
    seed: int = 0,
    traces: tuple[str, ...] = TRAIN_TRACES,
    on_step: Callable[[int], None] | None = None,
    **env_kw,
) -> tuple[GPNPolicy, dict[str, list[tuple[int, float]]]]:
    """Infer-EDGE's A2C (:func:`agra_ros.policy.baselines.a2c_settings`) over ten simulators, two per trace, with
    the simulator ``env_kw`` (:data:`SHIPPED_ENV`: across randomised devices, as agra). Returns the policy and the
    trainer's metrics. ``on_step(steps done)`` is called after every update (progress; it changes nothing)."""
    fns = [env_factory(t, **env_kw) for t in traces] * 2
    log = (lambda _msg: on_step(trainer.global_step)) if on_step is not None else None
    trainer = PPOTrainer(fns, a2c_settings(steps, seed=seed, num_envs=len(fns)), log=log)
    trainer.train()
    policy = trained_policy(trainer, "a2c")
    policy.meta = {"steps": trainer.global_step, "algorithm": "a2c (Infer-EDGE)"}
    return policy, dict(trainer.metrics)


def train_bandit(
    steps: int,
    seed: int = 0,
    traces: tuple[str, ...] = TRAIN_TRACES,
    on_step: Callable[[int], None] | None = None,
    **env_kw,
) -> tuple[BanditPolicy, list[float]]:
    """AutoScale's bandit learning online for ``steps`` decisions, an equal share on each trace in turn, with the
    simulator ``env_kw``. Returns the policy and its episode returns; ``on_step(decisions done)`` is called after
    each trace's share (progress; it changes nothing).

    The shipped one learns with :data:`SHIPPED_ENV`, across randomised devices, because the robot's device is not
    known when the package is built: its table is then, per context (target, load, link, throttling, objects), what
    pays on average over the devices a context arises on, a start that the robot's bandit refines in place from
    its first decision. ``agra-ros bench policy compare`` instead trains one per device profile (``device=...``),
    the bandit after it has learned on that device.
    """
    envs = [AgraEnv(trace=t, **env_kw) for t in traces]
    bandit = make_policy("bandit", env=envs[0], seed=seed)
    returns: list[float] = []
    done = 0
    for i, env in enumerate(envs):
        share = steps // len(traces) + (1 if i < steps % len(traces) else 0)  # the remainder too: steps in all
        returns += bandit.train(env, share, seed=seed * len(traces) + i)
        done += share
        if on_step is not None:
            on_step(done)
    return bandit, returns


def plot_curve(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("charts/episodic_return", "charts/fps_shortfall", "charts/beta") if metrics.get(k)]
    fig, axes = plt.subplots(1, len(keys), figsize=(13 * len(keys) / 3, 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
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


def training_inputs(trainer: PPOTrainer, seed: int, dual_ascent: bool, sim: dict) -> dict[str, str]:
    """What a resumable run must not change between its chunks: the tables the simulator reads (by content), the
    seed, the reward setting, the step-size schedule and the simulator settings. A run resumed after
    ``evaluate-ssd --ship`` refitted the accuracy model would otherwise finish, and ship, a policy trained half on
    each."""
    settings = trainer.envs.envs[0].settings
    tables = {
        "cost_table": settings.cost_table or default_cost_table(),
        "accuracy_model": settings.accuracy_model or default_accuracy_model(),
    }
    return {
        **{k: hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for k, p in tables.items()},
        "seed": str(seed),
        "dual_ascent": str(dual_ascent),
        "lr_schedule": f"anneal over {trainer.s.total_timesteps}" if trainer.s.anneal_lr else "constant",
        "sim": repr(sorted(sim.items())),
    }


def keep_aside(ckpt: Path) -> Path:
    """``--fresh``: rename a run's checkpoint to ``<stem>-<time><suffix>.stale`` (kept for a person to look at, never
    resumed) and say so."""
    stale = ckpt.with_name(f"{ckpt.stem}-{time.strftime('%Y%m%d-%H%M%S')}{ckpt.suffix}.stale")
    ckpt.replace(stale)
    print(f"--fresh: kept the earlier run's checkpoint as {stale}")
    return stale


def _train_agra(args: argparse.Namespace, run: Path, sim: dict, steps: int, t0: float) -> GPNPolicy:
    """The shipped AGRA policy: resumable PPO in chunks, then EWC consolidation on states from the memory."""
    anneal = steps if args.anneal_lr else None
    trainer = make_trainer(args.seed, log=lambda m: None, dual_ascent=args.dual_ascent, anneal_steps=anneal, **sim)
    ckpt = run / "trainer.pt"
    inputs = training_inputs(trainer, args.seed, args.dual_ascent, sim)
    best: dict | None = None  # the best checkpoint by validation so far: score, step, weights
    if ckpt.is_file() and args.fresh:
        keep_aside(ckpt)
    if ckpt.is_file():
        try:
            state = torch.load(ckpt, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
            raise SystemExit(f"train-policy: cannot read {ckpt} ({exc!r}); start over with --fresh") from None
        saved = state.get("inputs", {})
        differs = {k: (saved.get(k), v) for k, v in inputs.items() if saved.get(k) != v}
        if differs:
            raise SystemExit(
                f"train-policy: {ckpt} was trained on other inputs ("
                + "; ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in differs.items())
                + "): resuming would mix them. Start over with --fresh (keeps it aside) or use another --run folder."
            )
        trainer.load_state_dict(state)
        best = state.get("best")
        print(f"resumed {ckpt} at step {trainer.global_step}")
    validation = Validation(**({"profiles": (args.device,)} if args.device else {}), **sim)
    # the bar counts environment steps (validation's time between chunks is in the rate, so in the time left)
    bar = progress(total=steps, initial=trainer.global_step, desc="train-policy agra", unit="step")
    trainer.log = lambda _msg: advance_to(bar, trainer.global_step)
    with bar:
        while trainer.global_step < steps:
            trainer.train(min(args.chunk, steps - trainer.global_step))
            ratios = validation.ratios(trained_policy(trainer))
            score = float(np.mean(list(ratios.values())))
            if best is None or score > best["score"]:
                gpn = copy.deepcopy(trainer.gpn.state_dict())
                best = {"score": score, "step": trainer.global_step, "ratios": ratios, "gpn": gpn}
            torch.save({**trainer.state_dict(), "inputs": inputs, "best": best}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
            echo(
                f"step {trainer.global_step}/{steps} ({time.time() - t0:.0f} s): validation {score:.3f} of the "
                f"oracle's return (best {best['score']:.3f} at step {best['step']})"
            )
    if best is not None:  # ship the best checkpoint by validation, not the last
        trainer.gpn.load_state_dict(best["gpn"])
    policy = trained_policy(trainer)
    states, _, _ = trainer.memory.sample(256)
    policy.ewc = OnlineEWC()
    policy.ewc.consolidate(policy.gpn, states, seed=args.seed)
    policy.meta = {
        "steps": trainer.global_step,
        "dual_ascent": args.dual_ascent,
        "anneal_lr": args.anneal_lr,
        "selected_step": best["step"] if best else trainer.global_step,
        "validation": {k: round(v, 4) for k, v in ((best or {}).get("ratios") or validation.ratios(policy)).items()},
        "cost_table": str(trainer.envs.envs[0].settings.cost_table or "default"),
    }
    plot_curve(
        trainer.metrics, run / "policy_train_curve.png", "AGRA PPO + dual ascent (training traces, randomised devices)"
    )
    print(
        f"trained {trainer.global_step} steps in {time.time() - t0:.0f} s; multipliers {policy.multipliers.state_dict()}"
    )
    return policy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros train-policy", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="agra",
        help="agra (the shipped AGRA policy), or a learning baseline to pretrain: a2c (Infer-EDGE) or bandit "
        "(AutoScale)",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"environment steps in all (default {DEFAULT_STEPS} for agra, {BASELINE_STEPS} for a2c and bandit)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--run",
        default=None,
        help="run folder (default runs/policy_train, runs/policy_train_<algorithm> for a2c and bandit; agra resumes "
        "a run folder that holds a run)",
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="agra: start over even if the run folder holds a run (its checkpoint is kept aside, renamed)",
    )
    ap.add_argument("--chunk", type=int, default=50_000, help="agra: steps between resumable checkpoints")
    ap.add_argument(
        "--ship",
        action="store_true",
        help="also copy the policy over the shipped one (agra_ros/data/policy_<algorithm>.pt) and, for agra, the curve "
        "into docs/",
    )
    ap.add_argument(
        "--allow-remote",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train with a perception server on --server-share of the episodes (default; the others have none), "
        "so one policy serves robots with and without a server; --no-allow-remote: never a server",
    )
    ap.add_argument(
        "--server-share",
        type=float,
        default=SERVER_SHARE,
        help=f"with --allow-remote: share of episodes with a server behind one of {', '.join(SERVER_LINKS)} "
        f"(default {SERVER_SHARE})",
    )
    ap.add_argument(
        "--dual-ascent",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="agra: learn the FPS and accuracy weights by dual ascent during pretraining (default: the simulator's "
        "fixed weights; see the module docstring)",
    )
    ap.add_argument(
        "--anneal-lr",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="agra: decay the step size linearly to zero over --steps (resumable: the schedule follows the step count)",
    )
    ap.add_argument(
        "--device",
        default=None,
        help="train on this one device profile instead of randomised devices (an ablation: the policy as it was "
        "before domain randomisation, e.g. the start of `agra-ros bench policy online --policy ...`)",
    )
    args = ap.parse_args(argv)
    alg = args.algorithm
    if args.dual_ascent and alg != "agra":
        ap.error(f"--dual-ascent is agra's; {alg} learns with the simulator's fixed reward weights")
    steps = args.steps if args.steps is not None else (DEFAULT_STEPS if alg == "agra" else BASELINE_STEPS)
    run = Path(args.run) if args.run else run_dir("policy_train" if alg == "agra" else f"policy_train_{alg}")
    run.mkdir(parents=True, exist_ok=True)
    if not 0.0 <= args.server_share <= 1.0:
        ap.error(f"--server-share must be in 0..1, got {args.server_share}")
    sim = dict(SHIPPED_ENV, allow_remote=args.allow_remote, server_share=args.server_share)
    if args.device:
        sim.update(randomise_device=None, device=args.device)
    torch.set_num_threads(1)
    t0 = time.time()
    out, curve = run / f"policy_{alg}.pt", run / "policy_train_curve.png"
    meta = {
        "seed": args.seed,
        "traces": list(TRAIN_TRACES),
        "sim": {
            "allow_remote": args.allow_remote,
            "link_profiles": list(SERVER_LINKS),
            "server_share": args.server_share if args.allow_remote else 0.0,
            "randomise_device": repr(sim["randomise_device"]),
            "device": args.device or "randomised",
        },
        "heldout_profile": HELDOUT_PROFILE,
    }
    if alg == "agra":
        policy = _train_agra(args, run, sim, steps, t0)
        policy.meta = {**policy.meta, **meta}
        policy.save(out)
    elif alg == "a2c":
        with progress(total=steps, desc="train-policy a2c", unit="step") as bar:
            policy, metrics = train_a2c(steps, args.seed, on_step=lambda n: advance_to(bar, n), **sim)
        policy.meta = {**policy.meta, **meta}
        policy.save(out)
        plot_curve(metrics, curve, "A2C (Infer-EDGE), training traces, randomised devices")
        print(f"trained a2c {policy.meta['steps']} steps in {time.time() - t0:.0f} s")
    else:
        with progress(total=steps, desc="train-policy bandit", unit="step") as bar:
            bandit, returns = train_bandit(steps, args.seed, on_step=lambda n: advance_to(bar, n), **sim)
        bandit.save(out)
        per_episode = SimSettings().max_steps
        plot_curve(
            {"charts/episodic_return": [((i + 1) * per_episode, r) for i, r in enumerate(returns)]},
            curve,
            "bandit (AutoScale), training traces, randomised devices",
        )
        print(
            f"trained bandit {steps} decisions in {time.time() - t0:.0f} s ({int((bandit.counts > 0).sum())} "
            f"context-arm pairs tried)"
        )
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {curve}")
    if args.ship:
        shutil.copyfile(out, shipped_policy_path(alg))
        print(f"shipped {shipped_policy_path(alg)}")
        if alg == "agra":
            shutil.copyfile(curve, docs_dir() / "policy_train_curve.png")
            print(f"shipped {docs_dir() / 'policy_train_curve.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
