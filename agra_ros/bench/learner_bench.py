"""Does on-robot learning stall perception? Perception FPS and device energy per frame with the background learner
running against without it.

Runs camera_source, perception (the real detector, as configured by default), device_monitor and policy as separate
processes (as in the real graph) and records perception's agra/feedback rate and the device monitor's power with
``feedback_probe``, in three cases: no policy node, the policy deciding with learning off, and the policy learning
(PPO updates in its learner process, ``rollout_steps`` small so updates are frequent: the worst case; the learner
held to ``learner_cpu_budget`` as on a robot). The policy's commands are remapped away from perception and its
target is not published, so perception runs the same (fallback) configuration, unpaced, in every case and the
difference is CPU interference alone. The policy's own target (``--target-fps``) is low by default, so that its
learner never defers an update for a missed target: it learns all the time, at its budget (a target perception
misses shows the deferral instead). The device energy per frame is the device monitor's power (the whole
machine's: a learner's CPU shows there, not in perception's own modelled power) over perception's FPS. The policy's
decision latency, learner updates and budget figures come from its own /diagnostics status. Goals (issue 23):
perception FPS with learning >= 98 % of without, device energy per frame <= 1.03x.
Run: ``agra-ros bench learner`` (``python -m agra_ros.bench.learner_bench``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agra_ros.launcher import Supervisor, node_command

CASES: dict[str, dict | None] = {
    "no policy node": None,
    "policy, learning off": {"learning": False},
    "policy + learner": {"learning": True},
}
POLICY_STATUS = "policy: policy"
FPS_GOAL, ENERGY_GOAL = 0.98, 1.03
"""Perception FPS with learning / without at least, device energy per frame with / without at most."""


def run_case(
    name: str,
    policy: dict | None,
    duration: float,
    warmup: float,
    rollout_steps: int,
    domain_id: int | None,
    cpu_budget: float | None = None,
    target_fps: float = 0.5,
) -> dict:
    """One case; returns feedback_probe's statistics plus the policy's status."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stats.json"
        sup = Supervisor(log_dir=Path(tmp) / "logs", domain_id=domain_id)
        cam = {"fps": 30.0, "trace": "", "reliability": "reliable", "publish_ground_truth": False}
        sup.start("camera_source", node_command("camera_source", None, cam))
        sup.start("perception", node_command("perception", None, {"threads": 1, "reliability": "reliable"}))
        sup.start("device_monitor", node_command("device_monitor", None, {"jtop_compatible": False}))
        if policy is not None:
            pol = {
                **policy,
                "rollout_steps": rollout_steps,
                "checkpoint_dir": str(Path(tmp) / "ckpt"),
                "target_fps": target_fps,
                "publish_target_fps": False,
                **({"learner_cpu_budget": cpu_budget} if cpu_budget is not None else {}),
            }
            cmd = node_command("policy", None, pol) + ["-r", "agra/granularity:=bench/granularity_unused"]
            sup.start("policy", cmd)
        time.sleep(warmup)
        probe = {"duration": duration, "warmup": 2.0, "out_json": str(out)}
        sup.start("feedback_probe", node_command("feedback_probe", None, probe))
        sup.run(duration=duration + warmup + 60.0, watch="feedback_probe")
        if not out.is_file():
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in (Path(tmp) / "logs").glob("*.log"))
            raise RuntimeError(f"{name}: the probe produced no statistics; logs:\n{logs}")
        stats = json.loads(out.read_text())
    stats["case"] = name
    stats["policy"] = stats.get("diagnostics", {}).get(POLICY_STATUS, {})
    power, fps = stats.get("device_power_w_mean"), stats.get("rate_hz") or 0.0
    stats["device_energy_per_frame_j"] = power / fps if power is not None and fps > 0 else float("nan")
    return stats


def _num(d: dict, key: str) -> float:
    try:
        return float(d.get(key, "nan"))
    except (TypeError, ValueError):
        return float("nan")


def _mean(results: list[dict], case: str, key: str) -> float:
    xs = [float(r[key]) for r in results if r["case"] == case and r.get(key) is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def print_table(results: list[dict]) -> None:
    """One row per run, then the learner's cost against the policy with learning off, with the goals."""
    ref = _mean(results, "no policy node", "rate_hz")
    print(
        f"\n{'case':<22} {'perception FPS':>14} {'vs no policy':>12} {'device W':>8} {'device mJ/frame':>15} "
        f"{'decide p50 ms':>13} {'decide p99 ms':>13} {'updates':>7} {'restarts':>8} {'CPU share':>9} "
        f"{'throttled s':>11} {'deferred':>8}"
    )
    for r in results:
        pol = r["policy"]
        power = r.get("device_power_w_mean")
        print(
            f"{r['case']:<22} {r['rate_hz']:14.2f} {100 * (r['rate_hz'] / ref - 1):+11.1f}% "
            f"{power if power is not None else float('nan'):8.2f} {1e3 * r['device_energy_per_frame_j']:15.1f} "
            f"{_num(pol, 'decision_latency_ms_p50'):13.2f} {_num(pol, 'decision_latency_ms_p99'):13.2f} "
            f"{_num(pol, 'learner_updates'):7.0f} {_num(pol, 'learner_restarts'):8.0f} "
            f"{_num(pol, 'learner_cpu_share'):9.3f} {_num(pol, 'learner_throttled_s'):11.1f} "
            f"{_num(pol, 'learner_deferred_updates'):8.0f}"
        )
    off, on = "policy, learning off", "policy + learner"
    fps = _mean(results, on, "rate_hz") / _mean(results, off, "rate_hz")
    energy = _mean(results, on, "device_energy_per_frame_j") / _mean(results, off, "device_energy_per_frame_j")
    print(
        f"\nperception FPS with learning / without: {100 * fps:.1f} % (goal >= {100 * FPS_GOAL:.0f} %: "
        f"{'met' if fps >= FPS_GOAL else 'NOT met'})"
    )
    print(
        f"device energy per frame with learning / without: {energy:.3f}x (goal <= {ENERGY_GOAL:.2f}x: "
        f"{'met' if energy <= ENERGY_GOAL else 'NOT met' if energy == energy else 'no device power heard'})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros bench learner", description=__doc__)
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds per case (default 30)")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (default 15)")
    ap.add_argument("--rollout-steps", type=int, default=16, help="decisions per PPO update (default 16)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every case (default 1)")
    ap.add_argument("--cpu-budget", type=float, default=None, help="learner_cpu_budget (default: the node's)")
    ap.add_argument(
        "--target-fps", type=float, default=0.5, help="the policy's target, not published (default 0.5: always met)"
    )
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write all results as JSON here")
    a = ap.parse_args(argv)
    results = []
    for _ in range(a.repeats):
        for name, policy in CASES.items():
            results.append(
                run_case(name, policy, a.duration, a.warmup, a.rollout_steps, a.domain_id, a.cpu_budget, a.target_fps)
            )
    print_table(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
