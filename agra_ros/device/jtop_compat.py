"""Statuses shaped like those of isaac_ros_jetson_stats' jtop node, built from a merged device sample.

Tools and dashboards written for that node (status names ``jetson_stats cpu N``, ``jetson_stats gpu NAME``,
``jetson_stats temp``, ``jetson_stats power``; keys ``Val``/``Freq``/``Unit``, sensor names, ``Current Power`` /
``Average Power`` in mW) read ours unchanged. Plain dicts here; the ROS layer turns them into messages.
"""

from __future__ import annotations

from agra_ros.device.monitors import Sample


def jtop_statuses(sample: Sample, hardware_id: str) -> list[dict]:
    out: list[dict] = []
    for i, (util, freq_khz) in enumerate(sample.cpu_cores, start=1):
        out.append(
            {
                "name": f"jetson_stats cpu {i}",
                "message": f"{util:.0f}%",
                "hardware_id": hardware_id,
                "values": [("Val", f"{util:.1f}"), ("Freq", f"{freq_khz:.0f}"), ("Unit", "khz")],
            }
        )
    for name, (load, freq_khz) in sample.gpus.items():
        out.append(
            {
                "name": f"jetson_stats gpu {name}",
                "message": f"{load:.0f}%",
                "hardware_id": hardware_id,
                "values": [("Val", f"{load:.1f}"), ("Freq", f"{freq_khz:.0f}"), ("Unit", "khz")],
            }
        )
    if sample.temps:
        out.append(
            {
                "name": "jetson_stats temp",
                "message": f"{len(sample.temps)} temperatures reads",
                "hardware_id": hardware_id,
                "values": [(k, f"{v:.2f}") for k, v in sample.temps.items()],
            }
        )
    if sample.rails:
        values: list[tuple[str, str]] = []
        for rail, (cur, avg) in sorted(sample.rails.items()):
            values += [("Name", rail), ("Current Power", str(int(cur))), ("Average Power", str(int(avg)))]
        cur_tot = sum(c for c, _ in sample.rails.values())
        avg_tot = sum(a for _, a in sample.rails.values())
        out.append(
            {
                "name": "jetson_stats power",
                "message": f"curr={int(cur_tot)}mW avg={int(avg_tot)}mW",
                "hardware_id": hardware_id,
                "values": values,
            }
        )
    return out
