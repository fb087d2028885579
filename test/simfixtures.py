"""Test fixtures for the simulator and policy tests: a small cost table, accuracy model and device, written from
the documented formats. They are fixtures only; the simulator, benchmarks and shipped policy use the real tables.
"""

from __future__ import annotations

import json
from pathlib import Path

from agra_ros.device.profiles import DeviceProfile
from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES, WIDTHS
from agra_ros.tables.files import ACCURACY_FORMAT, COST_FORMAT, TABLE_VERSION

LAYERS = ("stem", "b1", "b2")


def write_fixture_tables(folder: Path) -> tuple[Path, Path]:
    """A 3-layer chain detector: latency ~ in_width * out_width * scale^2, partitioned 30 % slower than full."""
    entries = []
    base_ms = {"stem": 4.0, "b1": 8.0, "b2": 6.0}
    for i, name in enumerate(LAYERS):
        in_widths = (1.0,) if i == 0 else WIDTHS
        for lv in LEVELS:
            for in_w in in_widths:
                for s in RESOLUTION_SCALES:
                    w = LEVEL_WIDTH[lv]
                    ms = base_ms[name] * in_w * w * s * s * (1.3 if lv == "partitioned" else 1.0) + 0.2
                    macs = 1e8 * base_ms[name] * in_w * w * s * s
                    entries.append(
                        {
                            "layer": name,
                            "level": lv,
                            "in_width": in_w,
                            "scale": s,
                            "latency_ms": ms,
                            "macs": macs,
                            "bytes": macs / 50,
                            "peak_act_bytes": macs / 100,
                        }
                    )
    overhead = [
        {
            "scale": s,
            "in_width": w,
            "latency_ms": 1.0 + 2 * s * s * w,
            "macs": 1e7 * w,
            "bytes": 1e5,
            "peak_act_bytes": 1e5,
        }
        for s in RESOLUTION_SCALES
        for w in WIDTHS
    ]
    cost = {
        "format": COST_FORMAT,
        "version": TABLE_VERSION,
        "device": "fixture",
        "detector": "fixture",
        "threads": 2,
        "layers": [{"name": n, "input_from": (LAYERS[i - 1] if i else None)} for i, n in enumerate(LAYERS)],
        "head_input_from": ["b2"],
        "entries": entries,
        "overhead": overhead,
    }
    drop = {"full": 0.0, "partitioned": 0.0, "neuron-75": -0.03, "neuron-50": -0.08, "neuron-25": -0.2}
    acc = {
        "format": ACCURACY_FORMAT,
        "version": TABLE_VERSION,
        "metric": "map50",
        "layers": list(LAYERS),
        "intercept": 0.8,
        "layer_level": {n: {lv: drop[lv] * (1 + 0.3 * i) for lv in LEVELS} for i, n in enumerate(LAYERS)},
        "scale": {"1": 0.0, "0.75": -0.05, "0.5": -0.15},
    }
    cp, ap = folder / "cost.json", folder / "acc.json"
    cp.write_text(json.dumps(cost))
    ap.write_text(json.dumps(acc))
    return cp, ap


FIXTURE_DEVICE = DeviceProfile(
    name="fixture",
    speed=1.0,
    cores=2,
    p_idle_w=5.0,
    p_max_w=30.0,
    j_per_busy_s=15.0,
    j_per_gmac=0.05,
    j_per_mb=0.002,
    tx_j_per_mb=0.3,
    voltage_v=1.0,
    t_ambient_c=30.0,
    thermal_r_c_per_w=2.0,
    thermal_tau_s=20.0,
    t_throttle_c=75.0,
    t_critical_c=90.0,
    clock_steps=(1.0, 0.85, 0.7, 0.55),
)


def make_env(tables: tuple[Path, Path], **kw):
    """An AgraEnv over the fixture tables and device (``tables`` from :func:`write_fixture_tables`)."""
    from agra_ros.sim.env import AgraEnv

    cp, ap = tables
    return AgraEnv(
        **{
            "cost_table": str(cp),
            "accuracy_model": str(ap),
            "device": FIXTURE_DEVICE,
            "remote_device": FIXTURE_DEVICE,
            "trace": "bench",
            **kw,
        }
    )
