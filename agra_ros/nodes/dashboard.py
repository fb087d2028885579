"""dashboard: the demo's live console view, and its summary table and plot at the end.

Listens to what the graph publishes (diagnostics, target FPS, perception's PerceptionFeedback read field by field,
the policy's reward), shows it live
with rich, and on its end (duration reached or Ctrl-C) writes summary.md, series.csv and run.png into out_dir.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rich.console import Console
from rich.live import Live
from rich.table import Table
from std_msgs.msg import Float32, String

from agra_ros.record.sampler import (
    CONFIGURATION_TOPIC,
    DIAGNOSTICS_TOPIC,
    FEEDBACK_TOPIC,
    SCALAR_TOPICS,
    GraphSampler,
)
from agra_ros.results.run_record import SERIES
from agra_ros.ros import params as ros_params
from agra_ros.ros.interfaces import PerceptionFeedback
from agra_ros.ros.qos import command_qos, latched_qos

SPECS = [
    ros_params.ParamSpec(
        "duration", 60.0, "Seconds before the dashboard ends the run (0: until Ctrl-C).", range=(0.0, 86400.0, 0.0)
    ),
    ros_params.ParamSpec("out_dir", "runs/demo", "Folder for summary.md, series.csv and run.png."),
    ros_params.ParamSpec("live", True, "Show the live console view (otherwise a log line every 5 s)."),
    ros_params.ParamSpec("title", "agra_ros demo", "Title of the summary and the plot."),
    ros_params.ParamSpec("sample_period", 0.5, "Seconds between samples of the series.", range=(0.05, 10.0, 0.0)),
]


class Dashboard(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("dashboard", **kwargs)
        self._specs = ros_params.declare(self, SPECS)
        self.p = ros_params.values(self, self._specs)
        self.sampler = GraphSampler()
        self.record = self.sampler.record
        self.t0 = time.monotonic()
        for topic in SCALAR_TOPICS:
            q = latched_qos() if topic == "agra/target_fps" else command_qos(10)  # the policy latches its target
            self.create_subscription(Float32, topic, lambda m, t=topic: self.sampler.feed(t, m), q)
        for topic, mtype in ((FEEDBACK_TOPIC, PerceptionFeedback), (CONFIGURATION_TOPIC, String)):
            self.create_subscription(mtype, topic, lambda m, t=topic: self.sampler.feed(t, m), command_qos(10))
        self.create_subscription(
            DiagnosticArray, DIAGNOSTICS_TOPIC, lambda m: self.sampler.feed(DIAGNOSTICS_TOPIC, m), 20
        )
        self.create_timer(self.p["sample_period"], self._sample)
        self.console = Console()
        self.live: Live | None = None
        if self.p["live"] and self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, auto_refresh=False, transient=False)
            self.live.start()
        self._last_log = 0.0
        self.done = False

    def _table(self) -> Table:
        t = Table(title=f"{self.p['title']}  t={time.monotonic() - self.t0:5.1f}s", expand=False)
        t.add_column("quantity")
        t.add_column("value", justify="right")
        t.add_column("source")
        for k, (label, unit) in SERIES.items():
            v = self.sampler.latest.get(k)
            t.add_row(label, "-" if v is None else f"{v:.3g} {unit}", self.record.sources.get(k, ""))
        t.add_row("configuration", self.sampler.configuration or "-", "")
        return t

    def _sample(self) -> None:
        now = time.monotonic() - self.t0
        self.sampler.sample(now)
        if self.live is not None:
            self.live.update(self._table(), refresh=True)
        elif now - self._last_log >= 5.0:
            self._last_log = now
            show = ", ".join(f"{k}={v:.3g}" for k, v in self.sampler.latest.items() if v is not None)
            self.get_logger().info(f"t={now:.0f}s {show} cfg={self.sampler.configuration or '-'}")
        if self.p["duration"] > 0 and now >= self.p["duration"]:
            self.done = True

    def finish(self) -> Path | None:
        """Stop the live view and write the summary, series and plot; returns the output folder."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        if len(self.record.t) < 2:
            self.get_logger().warning("run too short to summarise")
            return None
        out = Path(self.p["out_dir"])
        self.record.write_csv(out / "series.csv")
        self.record.write_summary(out / "summary.md", self.p["title"])
        self.record.plot(out / "run.png", self.p["title"])
        table = Table(title=f"{self.p['title']}: summary ({self.record.t[-1]:.0f} s)")
        for col in ("quantity", "unit", "median", "p5", "p95", "source / note"):
            table.add_column(col)
        for row in self.record.summary_rows():
            table.add_row(*row)
        self.console.print(table)
        self.console.print(f"summary: {out / 'summary.md'}   plot: {out / 'run.png'}   series: {out / 'series.csv'}")
        return out


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = Dashboard()
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            try:
                node.finish()
            finally:
                node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
