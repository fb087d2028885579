"""Writes config/agra.perspective: three rqt_plot panes (rate, power, accuracy and granularity) for agra_ros.

rqt stores a perspective as JSON whose values are Python reprs; writing it from this table keeps the topic list
readable and in one place. Run: python scripts/make_rqt_perspective.py  (then `rqt --perspective-file
config/agra.perspective` on a ROS distro).
"""

from __future__ import annotations

import json
from pathlib import Path

PLOTS: list[tuple[list[str], tuple[float, float]]] = [
    (["/agra/fps/data", "/agra/target_fps/data"], (0.0, 60.0)),  # achieved against asked-for rate
    (["/agra/power_w/data", "/agra/detector_energy_per_frame_j/data"], (0.0, 20.0)),  # power, detector J/frame
    (["/agra/accuracy_proxy/data", "/agra/feedback/configuration/resolution_scale"], (0.0, 1.1)),
]
"""(rqt_plot topic paths, y limits) per pane, top to bottom."""


def _repr(value) -> dict[str, str]:
    return {"type": "repr", "repr": repr(value)}


def perspective() -> dict:
    serials = list(range(1, len(PLOTS) + 1))
    groups = {
        f"plugin__rqt_plot__Plot__{i}": {
            "keys": {},
            "groups": {
                "plugin": {
                    "keys": {
                        "autoscroll": _repr(True),
                        "plot_type": _repr(1),  # the MatPlot backend, present on every distro
                        "topics": _repr(topics),
                        "x_limits": _repr([0.0, 30.0]),
                        "y_limits": _repr(list(ylim)),
                    },
                    "groups": {},
                }
            },
        }
        for i, (topics, ylim) in zip(serials, PLOTS)
    }
    return {
        "keys": {},
        "groups": {"pluginmanager": {"keys": {"running-plugins": _repr({"rqt_plot/Plot": serials})}, "groups": groups}},
    }


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "config" / "agra.perspective"
    out.write_text(json.dumps(perspective(), indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
