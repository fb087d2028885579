"""Cost profiling writes a table that tables.CostTable reads, with the additive check; sandwich pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agra_ros.detectors.synthetic.network import AgraDetector, ArchConfig, load_detector
from agra_ros.detectors.synthetic.profile import build_cost_table
from agra_ros.detectors.synthetic.train import TrainConfig, narrow_weight, pool_chunks, sandwich_configs, train
from agra_ros.granularity.levels import LEVELS, GranularityConfig
from agra_ros.tables.files import CostTable, write_json_atomic

torch.set_num_threads(1)
TINY = ArchConfig(channels=(8, 8, 8, 16, 16, 16, 16), head_channels=8, input_size=64)


def test_profile_writes_a_loadable_cost_table(tmp_path: Path) -> None:
    model = AgraDetector(("a", "b"), TINY).eval()
    data = build_cost_table(model, "unit-test", threads=1, repeats=1, n_check=2)
    path = write_json_atomic(tmp_path / "t.json", data)
    table = CostTable.load(path)
    n = len(model.switchable_layers())
    assert table.n_layers == n and table.device == "unit-test"
    # one entry per layer x level x in_width x scale (the stem reads the image: in_width 1.0 only)
    assert len(data["entries"]) == (1 + 4 * (n - 1)) * len(LEVELS) * 3
    full = table.frame_cost(GranularityConfig.uniform("full", n))
    n25 = table.frame_cost(GranularityConfig.uniform("neuron-25", n))
    part = table.frame_cost(GranularityConfig.uniform("partitioned", n))
    assert n25.macs < 0.2 * full.macs and part.macs == full.macs
    assert part.peak_act_bytes <= full.peak_act_bytes
    assert data["additive_check"]["n_configs"] == 2


def test_sandwich_and_pool_bookkeeping() -> None:
    rng = np.random.default_rng(0)
    cfgs = sandwich_configs(rng, 9, 2)
    assert cfgs[0] == ["full"] * 9 and cfgs[1] == ["neuron-25"] * 9 and len(cfgs) == 4
    assert pool_chunks(3, 0) == [0, 1, 2]
    assert pool_chunks(3, 4) == [6, 4, 5]  # refreshes 1..4 placed chunks 3, 4, 5, 6 in slots 0, 1, 2, 0


def test_narrow_members_ramp_in_after_a_full_only_phase() -> None:
    assert narrow_weight(0, TrainConfig(full_only_steps=0)) == 1.0  # widths trained together from the start
    cfg = TrainConfig(full_only_steps=200, sandwich_warmup=100)
    assert narrow_weight(200, cfg) == 0.01 and narrow_weight(249, cfg) == 0.5 and narrow_weight(400, cfg) == 1.0


def test_train_smoke_and_resume(tmp_path: Path) -> None:
    cfg = TrainConfig(
        steps=2,
        batch_size=2,
        pool_frames=4,
        chunk_frames=2,
        refresh_every=1,
        calib_batches=1,
        checkpoint_every=1,
        out=str(tmp_path / "det.pt"),
        threads=1,
        progress=False,
        arch=TINY,
        warmup_steps=1,
    )
    path = train(cfg)
    model = load_detector(path)
    assert model.weights_meta["steps"] == 2
    cfg.steps, cfg.resume = 3, True
    model = load_detector(train(cfg))
    assert model.weights_meta["steps"] == 3
