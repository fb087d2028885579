"""`agra-ros bench paper`: the AGRA paper's table, live on this machine (``live``, the default) or in the simulator
for the paper's device and the other shipped profiles (``sim``).

Live: the whole graph (the real detector on the real video clips, the device monitor with the best power source
present: jtop, NVML, RAPL, else the named model) runs once per algorithm (static, rule, agra, a2c, bandit) on the
same trace and seed for ``--duration`` seconds of measurement (the paper ran 10 minutes), with the recorder writing
a rosbag2 MCAP recording of its topics. The table and the comparison plot are then built from the recordings alone,
by the same code as ``agra-ros report``, so a run on a robot and its later analysis agree. Each algorithm starts
from its simulator pretraining (the shipped policy_<algorithm>.pt, where one ships) with no checkpoint of earlier
runs, and learns online as it would on the robot.

The accuracy column is perception's accuracy proxy: the package's accuracy measure, the confident agreement with
the full configuration of each shadow frame (:func:`agra_ros.perception.agreement.confident_frame_agreement`: AP@0.5
of the active configuration's detections down to score 0.1 against full's at score >= 0.5), averaged over the
samples. Tables measured before issue 21 quote the earlier proxy (F1 of matches at the node's threshold).

A node that dies ends the benchmark with an error naming the node and its log; no table is written from a partial
set of runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from agra_ros.paths import config_file, run_dir
from agra_ros.progress import clock, progress
from agra_ros.results.paper_table import ALGORITHMS

log = logging.getLogger("agra_ros.results.paper_table")

ANNOTATE_EVERY = 10
"""perception's annotate_every during the runs (the same for every algorithm)."""

STARTUP_ALLOWANCE_S = 25.0
"""Default seconds the recorder runs beyond warm-up + measurement: node start-up (model loading) before the first
frame."""


def run_live_algorithm(
    algorithm: str,
    out: Path,
    duration: float,
    warmup: float,
    camera: dict[str, str],
    device_profile: str | None,
    seed: int,
    image_rate_hz: float,
    domain_id: int | None,
    startup_s: float = STARTUP_ALLOWANCE_S,
    learning: bool = True,
) -> Path:
    """One algorithm's live run; returns its recording. Raises RuntimeError naming the node that died."""
    from agra_ros.demo import available_nodes, graph_overrides
    from agra_ros.launcher import Supervisor, node_command

    overrides = graph_overrides(camera, device_profile, algorithm)
    # start from pretraining, never a past run; without learning the pretrained policy alone is measured, with no
    # learner process (what the policy's decisions save, apart from what learning costs the CPU)
    overrides["policy"].update({"seed": seed, "checkpoint_dir": "", "learning": learning})
    # the recorder keeps ~1 annotated image per second: drawing every frame would only load the CPU being measured
    overrides.setdefault("perception", {})["annotate_every"] = ANNOTATE_EVERY
    recording = out / algorithm / "recording"
    if recording.exists():
        raise RuntimeError(f"{recording} exists already: choose another --out (recordings are never overwritten)")
    total = startup_s + warmup + duration
    sup = Supervisor(log_dir=out / algorithm / "logs", domain_id=domain_id)
    params = config_file("agra.yaml")
    for name in available_nodes():
        sup.start(name, node_command(name, params, overrides.get(name)))
    meta = [
        f"algorithm={algorithm}",
        f"duration={total - startup_s:g}",
        f"measure={duration:g}",
        f"trace={camera['trace']}",
        f"source={camera['source']}",
        f"video={camera.get('path', '')}",
        f"seed={seed}",
        f"learning={learning}",
        f"device_profile={device_profile or 'config'}",
    ]
    rec = {"out": str(recording), "duration": total, "image_rate_hz": image_rate_hz, "metadata": meta}
    sup.start("recorder", node_command("recorder", None, rec))
    rc = sup.run(duration=total + 60.0, watch="recorder")
    if rc != 0:
        where = out / algorithm / "logs" / f"{sup.failed}.log"
        raise RuntimeError(f"{algorithm}: node {sup.failed} died during the run (log: {where}); no table written")
    return recording


def live_main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="agra-ros bench paper live",
        description="The AGRA paper's table live on this machine: the whole graph once per algorithm on the same "
        "real video trace and seed, each run recorded (rosbag2 MCAP), then the table, the ratios beside the "
        "paper's and a comparison plot built from the recordings.",
    )
    ap.add_argument("--duration", type=float, default=600.0, help="seconds measured per algorithm (paper: 600)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after the first frame not measured")
    ap.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS, help="in run order")
    ap.add_argument("--trace", default=None, help="workload trace (default: video; default with --source synthetic)")
    ap.add_argument("--source", choices=("video", "synthetic"), default="video", help="camera source")
    ap.add_argument(
        "--video",
        type=Path,
        default=None,
        help="play this video file instead of the trace's clips (the trace still sets the targets and sizes): the "
        "table on footage the policy never saw",
    )
    ap.add_argument("--device-profile", default=None, help="device profile for modelled power (default: from config)")
    ap.add_argument("--seed", type=int, default=0, help="policy seed (the camera trace is deterministic)")
    ap.add_argument("--image-rate", type=float, default=1.0, help="annotated images recorded per second")
    ap.add_argument(
        "--startup", type=float, default=STARTUP_ALLOWANCE_S, help="seconds allowed for the nodes to start per run"
    )
    ap.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the runs")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/paper/<date>_<time>)")
    ap.add_argument(
        "--learning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="learn online as on the robot (--no-learning: the pretrained policies only, no learner process)",
    )
    args = ap.parse_args(argv)
    if not (args.duration > 0 and args.warmup >= 0 and args.image_rate >= 0 and args.startup >= 0):
        ap.error("--duration must be > 0; --warmup, --startup and --image-rate >= 0")
    from tqdm.contrib.logging import logging_redirect_tqdm

    from agra_ros.demo import camera_settings
    from agra_ros.record.bag import RecordingError
    from agra_ros.record.report import replay, write_report

    out = args.out or run_dir("paper") / time.strftime("%Y%m%d_%H%M%S")
    camera = camera_settings(args.source, args.trace)
    if args.video is not None:
        if args.source != "video":
            ap.error("--video needs --source video")
        if not args.video.is_file():
            ap.error(f"--video {args.video}: no such file")
        camera = {**camera, "source": "video", "path": str(args.video.resolve())}
    log.info(
        "bench paper: %s, %.0f s each (+ warm-up), camera %s, trace %r; runs in %s",
        ", ".join(args.algorithms),
        args.duration,
        camera["source"],
        camera["trace"],
        out,
    )
    recordings = []
    # the bar counts seconds of the runs: each is planned to last start-up + warm-up + measurement
    per_run = math.ceil(args.startup + args.warmup + args.duration)
    bar = progress(total=per_run * len(args.algorithms), desc="bench paper live", unit="s")
    with bar, logging_redirect_tqdm():
        for i, alg in enumerate(args.algorithms):
            t0 = time.monotonic()
            log.info("[%d/%d] %s ...", i + 1, len(args.algorithms), alg)
            bar.set_postfix_str(alg)
            try:
                with clock(bar, per_run):
                    recordings.append(
                        run_live_algorithm(
                            alg,
                            out,
                            args.duration,
                            args.warmup,
                            camera,
                            args.device_profile,
                            args.seed,
                            args.image_rate,
                            args.domain_id,
                            args.startup,
                            args.learning,
                        )
                    )
            except RuntimeError as exc:
                log.error("%s", exc)
                return 1
            log.info("[%d/%d] %s done in %.0f s", i + 1, len(args.algorithms), alg, time.monotonic() - t0)
    try:
        runs = [replay(r, warmup_s=args.warmup) for r in recordings]
    except RecordingError as exc:
        log.error("%s; no table written", exc)
        return 1
    pre = [
        f"Live on this machine: camera {camera['source']} {camera.get('path', '')} (trace {camera['trace']}), seed {args.seed}, "
        f"{args.duration:g} s measured per algorithm after a {args.warmup:g} s warm-up; perception annotates every "
        f"{ANNOTATE_EVERY}th frame; every algorithm starts from its simulator pretraining and "
        + ("learns online as on the robot." if args.learning else "does not learn (--no-learning)."),
        f"Command: agra-ros bench paper live {' '.join(argv)}".rstrip(),
    ]
    res = write_report(runs, out, "AGRA paper table, live", pre)
    (out / "command.json").write_text(json.dumps({"argv": list(argv), "recordings": [str(r) for r in recordings]}))
    if res is not None:
        print(res[0].read_text())
        print(f"table: {res[0]}  csv: {res[1]}  plot: {res[2]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    if argv and argv[0] == "sim":
        from agra_ros.bench.paper_sim import main as sim_main

        return int(sim_main(argv[1:]) or 0)
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(
            "usage: agra-ros bench paper [live] [options]   (live --help for its options)\n"
            "       agra-ros bench paper sim [options]      (sim --help for its options)\n\n" + __doc__.strip()
        )
        return 0
    if argv and argv[0] == "live":
        argv = argv[1:]
    return live_main(argv)


if __name__ == "__main__":
    sys.exit(main())
