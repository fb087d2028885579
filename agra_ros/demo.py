"""`agra-ros demo`: the whole graph, each node in its own process, with a live console view and a summary.

Core code (no rclpy): it only starts processes. The nodes of the graph that this installation has are started
from config/agra.yaml with the demo's overrides; the dashboard node runs in the foreground and ends the demo
after the duration (or Ctrl-C), writing summary.md, series.csv and run.png. The camera plays the real clips of
trace ``video`` (fetched once, :mod:`agra_ros.workload.real_media`); where they are absent and cannot be fetched,
the demo says why in one warning and runs the synthetic camera with trace ``default`` instead.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from agra_ros.assets import AssetError
from agra_ros.launcher import GRAPH, Supervisor, node_command
from agra_ros.paths import config_file
from agra_ros.workload.real_media import fetch_real_media

log = logging.getLogger("agra_ros.demo")


@dataclass
class DemoOptions:
    duration: float = 60.0
    """Seconds before the demo ends by itself."""
    source: str = "video"
    """Camera source: ``video`` (real clips) or ``synthetic`` (the scene generator)."""
    trace: str | None = None
    """Workload trace driving the camera and the target FPS; None: ``video`` for real video, else ``default``."""
    device_profile: str | None = None
    """Device profile for modelled power (every node's ``device_profile``); None keeps config/agra.yaml's."""
    algorithm: str | None = None
    """Policy algorithm; None keeps config/agra.yaml's."""
    out: Path = Path("runs/demo")
    """Folder for the summary, the plot, the series and the node logs."""
    live: bool = True
    """Live console view (rich); off gives a log line every 5 s."""
    domain_id: int | None = None
    record: bool = False
    """Also record the graph's topics (rosbag2, MCAP) into ``out/recording_<date>_<time>``."""


def available_nodes() -> list[str]:
    """Nodes of the graph whose modules exist in this installation, in start order."""
    return [n for n in GRAPH if importlib.util.find_spec(f"agra_ros.nodes.{n}") is not None]


def camera_settings(source: str, trace: str | None) -> dict[str, str]:
    """The camera's source and trace; real video falls back to the synthetic camera (one warning) without media."""
    if source == "video":
        try:
            fetch_real_media()  # at once when already fetched
        except AssetError as exc:
            fallback = "default" if trace in (None, "video") else trace
            log.warning("demo: no real video, so the synthetic camera with trace %r runs instead: %s", fallback, exc)
            return {"source": "synthetic", "trace": fallback}
    return {"source": source, "trace": trace or ("video" if source == "video" else "default")}


def graph_overrides(
    camera: dict[str, str], device_profile: str | None = None, algorithm: str | None = None
) -> dict[str, dict]:
    """Per-node parameter overrides of config/agra.yaml for a live run: the camera, the ``device_profile`` of every
    node that models power, and the policy's algorithm."""
    overrides: dict[str, dict] = {"camera_source": dict(camera)}
    if device_profile:
        for node in ("device_monitor", "perception", "policy"):
            overrides[node] = {"device_profile": device_profile}
    if algorithm:
        overrides.setdefault("policy", {})["algorithm"] = algorithm
    return overrides


def run_demo(opts: DemoOptions) -> int:
    if opts.duration <= 0:
        raise ValueError("--duration must be positive")
    params_file = config_file("agra.yaml")
    camera = camera_settings(opts.source, opts.trace)
    overrides = graph_overrides(camera, opts.device_profile, opts.algorithm)
    nodes = available_nodes()
    out = opts.out.resolve()
    sup = Supervisor(log_dir=out / "logs", domain_id=opts.domain_id)
    log.info(
        "demo: %s for %.0f s, %s camera, trace %r; node logs in %s",
        ", ".join(nodes),
        opts.duration,
        camera["source"],
        camera["trace"],
        out / "logs",
    )
    for name in nodes:
        sup.start(name, node_command(name, params_file, overrides.get(name)))
    if opts.record:
        recording = out / time.strftime("recording_%Y%m%d_%H%M%S")
        sup.start("recorder", node_command("recorder", None, {"out": str(recording)}))
        log.info("demo: recording into %s ('agra-ros report %s' rebuilds the summary from it)", recording, recording)
    dash = {
        "duration": float(opts.duration),
        "out_dir": str(out),
        "live": bool(opts.live),
        "title": f"agra_ros demo ({camera['source']}, {camera['trace']})",
    }
    sup.start("dashboard", node_command("dashboard", None, dash), foreground=True)
    rc = sup.run(duration=opts.duration + 60.0, watch="dashboard")
    if rc != 0:
        log.error("demo failed: node %s died (see %s)", sup.failed, out / "logs")
    return rc
