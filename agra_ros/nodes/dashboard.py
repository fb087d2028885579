"""dashboard: the demo's live console view, and its summary table and plot at the end.

Listens to what the graph publishes (diagnostics, target FPS, perception's PerceptionFeedback read field by field,
the policy's reward), shows it live
with rich, and on its end (duration reached or Ctrl-C) writes summary.md, series.csv and run.png into out_dir.
"""

from __future__ import annotations

import math
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
from std_msgs.msg import Float32

from agra_ros.bench.report import SERIES, RunRecord, mean_width_of
from agra_ros.device.keys import DEVICE_STATUS_NAME
from agra_ros.ros import params as P
from agra_ros.ros.diagnostics import array_to_dicts
from agra_ros.ros.interfaces import PerceptionFeedback, configuration_short
from agra_ros.ros.qos import command_qos, latched_qos

SPECS = [
    P.ParamSpec(
        "duration", 60.0, "Seconds before the dashboard ends the run (0: until Ctrl-C).", range=(0.0, 86400.0, 0.0)
    ),
    P.ParamSpec("out_dir", "runs/demo", "Folder for summary.md, series.csv and run.png."),
    P.ParamSpec("live", True, "Show the live console view (otherwise a log line every 5 s)."),
    P.ParamSpec("title", "agra_ros demo", "Title of the summary and the plot."),
    P.ParamSpec("sample_period", 0.5, "Seconds between samples of the series.", range=(0.05, 10.0, 0.0)),
]

# the policy's scalar topics -> series
SCALAR_TOPICS = {
    "agra/target_fps": "target_fps",
    "agra/reward": "reward",
}
FEEDBACK_SERIES = ("fps", "latency_ms", "energy_per_frame_j", "accuracy_proxy")
"""PerceptionFeedback fields that are series of their own (same names)."""
DEVICE_KEYS = {"power_w": "power_w", "temp_c": "temperature_c", "cpu_util": "cpu_util"}


def _num(s: str) -> float | None:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class Dashboard(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("dashboard", **kwargs)
        self._specs = P.declare(self, SPECS)
        self.p = P.values(self, self._specs)
        self.record = RunRecord()
        self.latest: dict[str, float | None] = {k: None for k in SERIES}
        self.configuration = ""
        self.t0 = time.monotonic()
        for topic, key in SCALAR_TOPICS.items():
            q = latched_qos() if topic == "agra/target_fps" else command_qos(10)  # the policy latches its target
            self.create_subscription(Float32, topic, lambda m, k=key: self._scalar(k, m), q)
        self.create_subscription(PerceptionFeedback, "agra/feedback", self._feedback, command_qos(10))
        self.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 20)
        self.create_timer(self.p["sample_period"], self._sample)
        self.console = Console()
        self.live: Live | None = None
        if self.p["live"] and self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, auto_refresh=False, transient=False)
            self.live.start()
        self._last_log = 0.0
        self.done = False

    def _scalar(self, key: str, msg: Float32) -> None:
        v = float(msg.data)
        if math.isfinite(v):
            self.latest[key] = v

    def _feedback(self, msg: PerceptionFeedback) -> None:
        for key in FEEDBACK_SERIES:
            v = float(getattr(msg, key))
            if math.isfinite(v):  # accuracy_proxy is NaN on frames without a shadow run
                self.latest[key] = v
        if msg.energy_source:
            self.record.sources["energy_per_frame_j"] = msg.energy_source
        short = configuration_short(msg.configuration)
        if short:
            self.configuration = short
            self.latest["mean_width"] = mean_width_of(short)

    def _diag(self, msg: DiagnosticArray) -> None:
        for name, kv in array_to_dicts(msg).items():
            for key, series in DEVICE_KEYS.items():
                if name == DEVICE_STATUS_NAME and key in kv and _num(kv[key]) is not None:
                    self.latest[series] = _num(kv[key])
                    src = kv.get(f"{key}.source")
                    if src:
                        self.record.sources[series] = src
            if "rate_hz" in kv and "camera" in name:
                self.latest["camera_hz"] = _num(kv["rate_hz"])
            if "energy_per_frame_j.source" in kv:
                self.record.sources["energy_per_frame_j"] = kv["energy_per_frame_j.source"]

    def _table(self) -> Table:
        t = Table(title=f"{self.p['title']}  t={time.monotonic() - self.t0:5.1f}s", expand=False)
        t.add_column("quantity")
        t.add_column("value", justify="right")
        t.add_column("source")
        for k, (label, unit) in SERIES.items():
            v = self.latest.get(k)
            t.add_row(label, "-" if v is None else f"{v:.3g} {unit}", self.record.sources.get(k, ""))
        t.add_row("configuration", self.configuration or "-", "")
        return t

    def _sample(self) -> None:
        now = time.monotonic() - self.t0
        self.record.add(now, dict(self.latest), self.configuration)
        if self.live is not None:
            self.live.update(self._table(), refresh=True)
        elif now - self._last_log >= 5.0:
            self._last_log = now
            show = ", ".join(f"{k}={v:.3g}" for k, v in self.latest.items() if v is not None)
            self.get_logger().info(f"t={now:.0f}s {show} cfg={self.configuration or '-'}")
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
