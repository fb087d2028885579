"""Image transport across processes: rate and latency p50/p99 of image_raw at 640x480 and 1280x720.

Starts camera_source_node and latency_probe as separate processes (as in the real graph) with the project's
Fast DDS profile, for each resolution and reliability, and prints a table. Run: `agra-ros bench transport`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agra_ros.launcher import Supervisor, node_command


def measure(width: int, height: int, fps: float, duration: float, reliability: str, domain_id: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stats.json"
        sup = Supervisor(log_dir=Path(tmp) / "logs", domain_id=domain_id)
        cam = {
            "width": width,
            "height": height,
            "fps": fps,
            "reliability": reliability,
            "trace": "",
            "publish_ground_truth": False,
        }
        probe = {"duration": duration, "warmup": 2.0, "reliability": reliability, "out_json": str(out)}
        sup.start("camera_source", node_command("camera_source", None, cam))
        time.sleep(0.5)
        sup.start("latency_probe", node_command("latency_probe", None, probe))
        sup.run(duration=duration + 40.0, watch="latency_probe")
        if not out.is_file():
            logs = "\n".join(p.read_text()[-2000:] for p in (Path(tmp) / "logs").glob("*.log"))
            raise RuntimeError(f"probe produced no statistics; logs:\n{logs}")
        stats = json.loads(out.read_text())
    stats.update({"requested_hz": fps, "reliability": reliability, "resolution": f"{width}x{height}"})
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros bench transport", description=__doc__)
    ap.add_argument("--fps", type=float, default=30.0, help="camera rate (default 30)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per case (default 10)")
    ap.add_argument("--resolutions", default="640x480,1280x720", help="comma-separated WxH list")
    ap.add_argument("--reliability", default="best_effort,reliable", help="comma-separated reliabilities")
    ap.add_argument("--domain-id", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write all results as JSON here")
    a = ap.parse_args(argv)
    results = []
    print(
        f"{'resolution':>10} {'reliability':>12} {'req Hz':>7} {'rate Hz':>8} {'frames':>7} {'p50 ms':>7} {'p99 ms':>7} {'max gap ms':>10}"
    )
    for res in a.resolutions.split(","):
        w, h = (int(x) for x in res.lower().split("x"))
        for rel in a.reliability.split(","):
            s = measure(w, h, a.fps, a.duration, rel, a.domain_id)
            results.append(s)
            print(
                f"{s['resolution']:>10} {rel:>12} {a.fps:7.1f} {s['rate_hz']:8.2f} {s['frames']:7d} "
                f"{s['latency_ms_p50'] or float('nan'):7.2f} {s['latency_ms_p99'] or float('nan'):7.2f} {s['max_gap_ms'] or float('nan'):10.1f}",
                flush=True,
            )
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0
