"""Does on-robot learning stall perception? Perception FPS with the background learner running against without it.

Runs camera_source, perception and policy as separate processes (as in the real graph) and records perception's
agra/feedback rate with ``feedback_probe``, in three cases: no policy node, the policy deciding with learning
off, and the policy learning (PPO updates in its learner process, ``rollout_steps`` small so updates are frequent:
the worst case). The policy's commands are remapped away from perception, so perception runs the same (fallback)
configuration in every case and the FPS difference is CPU interference alone. Perception is not paced (no target
is published), so it uses all the CPU it can get. The policy's decision latency p50/p99 and its learner updates
come from its own /diagnostics status. Run: ``python -m agra_ros.bench.learner_bench``.
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


def run_case(
    name: str, policy: dict | None, duration: float, warmup: float, rollout_steps: int, domain_id: int | None
) -> dict:
    """One case; returns feedback_probe's statistics plus the policy's status."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stats.json"
        sup = Supervisor(log_dir=Path(tmp) / "logs", domain_id=domain_id)
        cam = {"fps": 30.0, "trace": "", "reliability": "reliable", "publish_ground_truth": False}
        sup.start("camera_source", node_command("camera_source", None, cam))
        sup.start("perception", node_command("perception", None, {"threads": 1, "reliability": "reliable"}))
        if policy is not None:
            pol = {
                **policy,
                "rollout_steps": rollout_steps,
                "checkpoint_dir": str(Path(tmp) / "ckpt"),
                "image_reliability": "reliable",
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
    return stats


def _num(d: dict, key: str) -> float:
    try:
        return float(d.get(key, "nan"))
    except (TypeError, ValueError):
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros bench learner", description=__doc__)
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds per case (default 30)")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring (default 15)")
    ap.add_argument("--rollout-steps", type=int, default=16, help="decisions per PPO update (default 16)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every case (default 1)")
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write all results as JSON here")
    a = ap.parse_args(argv)
    results = []
    for _ in range(a.repeats):
        for name, policy in CASES.items():
            results.append(run_case(name, policy, a.duration, a.warmup, a.rollout_steps, a.domain_id))
    base = [r["rate_hz"] for r in results if r["case"] == "no policy node"]
    ref = sum(base) / len(base) if base else float("nan")
    print(
        f"\n{'case':<22} {'perception FPS':>14} {'vs no policy':>12} {'decide p50 ms':>13} "
        f"{'decide p99 ms':>13} {'learner updates':>15} {'learner restarts':>16}"
    )
    for r in results:
        pol = r["policy"]
        print(
            f"{r['case']:<22} {r['rate_hz']:14.2f} {100 * (r['rate_hz'] / ref - 1):+11.1f}% "
            f"{_num(pol, 'decision_latency_ms_p50'):13.2f} {_num(pol, 'decision_latency_ms_p99'):13.2f} "
            f"{_num(pol, 'learner_updates'):15.0f} {_num(pol, 'learner_restarts'):16.0f}"
        )
    off = [r["rate_hz"] for r in results if r["case"] == "policy, learning off"]
    on = [r["rate_hz"] for r in results if r["case"] == "policy + learner"]
    if off and on:
        drop = 100 * (1 - (sum(on) / len(on)) / (sum(off) / len(off)))
        print(f"\nperception FPS with the learner running vs without it: {drop:+.1f}% lower (goal: <= 10%)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
