"""SwitchableConv2d: partitioned == full, neuron levels cut MACs by their share, switching allocates nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, GranularityError
from agra_ros.granularity.switchable import SwitchableConv2d, channels_at

torch.set_num_threads(1)


def _layer(stride: int = 1, k: int = 3, tiles: tuple[int, int] = (2, 2), dilation: int = 1) -> SwitchableConv2d:
    torch.manual_seed(0)
    layer = SwitchableConv2d(16, 32, k, stride, dilation=dilation, activation=nn.ReLU(), tiles=tiles)
    for bn in layer.bns:  # non-trivial statistics so a wrong batch-norm choice shows
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    return layer.eval()


@pytest.mark.parametrize(
    "stride,k,tiles,dilation,hw",
    [
        (1, 3, (2, 2), 1, (33, 40)),
        (2, 3, (2, 2), 1, (32, 31)),
        (1, 5, (3, 2), 1, (20, 24)),
        (2, 1, (2, 3), 1, (17, 16)),
        (1, 3, (2, 2), 2, (21, 22)),
    ],
)
def test_partitioned_equals_full(
    stride: int, k: int, tiles: tuple[int, int], dilation: int, hw: tuple[int, int]
) -> None:
    layer = _layer(stride, k, tiles, dilation)
    x = torch.randn(2, 16, *hw)
    layer.set_level("full")
    full = layer(x)
    layer.set_level("partitioned")
    part = layer(x)
    assert part.shape == full.shape
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)


def test_partitioned_equals_full_in_training_mode_too() -> None:
    layer = _layer().train()
    x = torch.randn(4, 16, 24, 24)
    layer.set_level("full")
    full = layer(x)
    layer.set_level("partitioned")
    torch.testing.assert_close(layer(x), full, rtol=1e-5, atol=1e-5)


def test_neuron_levels_slice_outputs_and_follow_input_width() -> None:
    layer = _layer()
    x = torch.randn(1, 16, 12, 12)
    for level in LEVELS:
        layer.set_level(level)
        assert layer(x).shape[1] == channels_at(LEVEL_WIDTH[level], 32)
    layer.set_level("neuron-50")
    assert layer(x[:, :4]).shape[1] == 16  # consumes whatever width the previous layer produced
    with pytest.raises(ValueError):
        layer(torch.randn(1, 17, 8, 8))


@pytest.mark.parametrize("level", ["neuron-75", "neuron-50", "neuron-25"])
def test_neuron_level_cuts_macs_by_its_share(level: str) -> None:
    layer = _layer()
    w = LEVEL_WIDTH[level]
    full = layer.cost("full", 16, 32, 32).macs
    # inner layer: input narrowed by the previous layer at the same level -> about w^2 of the MACs
    inner = layer.cost(level, channels_at(w, 16), 32, 32).macs
    assert inner / full == pytest.approx(w * w, rel=0.02)
    # first layer (image input, fixed channels) -> about w
    assert layer.cost(level, 16, 32, 32).macs / full == pytest.approx(w, rel=0.02)


def test_set_level_allocates_nothing() -> None:
    layer = _layer()
    ptrs = [p.data_ptr() for p in layer.parameters()] + [b.data_ptr() for b in layer.buffers()]
    n_params = sum(p.numel() for p in layer.parameters())
    for level in LEVELS * 3:
        layer.set_level(level)
        assert layer.level == level
    assert [p.data_ptr() for p in layer.parameters()] + [b.data_ptr() for b in layer.buffers()] == ptrs
    assert sum(p.numel() for p in layer.parameters()) == n_params


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(GranularityError):
        _layer().set_level("neuron-10")


def test_partitioned_lowers_peak_activation_memory() -> None:
    layer = _layer()
    assert layer.cost("partitioned", 16, 64, 64).peak_act_bytes < layer.cost("full", 16, 64, 64).peak_act_bytes


def test_depthwise_follows_input_width() -> None:
    torch.manual_seed(0)
    dw = SwitchableConv2d(16, 16, 3, 1, groups=16).eval()
    x = torch.randn(1, 8, 10, 10)
    assert dw(x).shape[1] == 8
    dw.set_level("partitioned")
    y_part = dw(x)
    dw.set_level("full")
    torch.testing.assert_close(y_part, dw(x), rtol=1e-5, atol=1e-5)


def test_input_aware_statistics_normalise_a_narrow_input_and_leave_uniform_paths_alone() -> None:
    from agra_ros.granularity.switchable import collect_pair_statistics

    layer = _layer()
    x = torch.randn(8, 8, 12, 12) * 3 + 1  # half the input width (8 of 16 channels) feeding the full width
    layer.set_level("full")
    before = layer(x)  # no pair statistics yet: the full width's batch-norm
    running = [b.running_mean.clone() for b in layer.bns]
    collect_pair_statistics(layer, True)
    layer.train()
    batch_normalised = layer(x)  # training mode: normalised with this batch's statistics, pair recorded
    collect_pair_statistics(layer, False)
    layer.eval()
    assert [torch.equal(r, b.running_mean) for r, b in zip(running, layer.bns)] == [True] * len(running)
    assert float(layer.pair_count[2, 0]) == 1.0 and float(layer.pair_count.sum()) == 1.0
    after = layer(x)
    torch.testing.assert_close(after, batch_normalised, rtol=0, atol=0.02)  # unbiased vs biased variance only
    assert not torch.allclose(after, before, atol=0.02)
    full_input = torch.randn(2, 16, 12, 12)
    layer.collect_pair_stats = False
    fresh = _layer()
    torch.testing.assert_close(layer(full_input), fresh(full_input))  # diagonal (uniform) path unchanged


def test_weights_without_input_aware_statistics_still_load() -> None:
    layer = _layer()
    state = {k: v for k, v in layer.state_dict().items() if not k.startswith("pair_")}
    other = _layer()
    other.pair_count.fill_(3.0)
    other.load_state_dict(state, strict=True)
    assert float(other.pair_count.sum()) == 0.0


def test_the_short_form_carries_the_keyframe_interval():
    """Temporal granularity's fourth field: ``/k3``; three-field strings still parse, as interval 1."""
    from agra_ros.granularity.levels import KEYFRAME_INTERVALS, GranularityConfig, GranularityError

    cfg = GranularityConfig.from_short("FFP55/0.75/local/k3")
    assert cfg.keyframe_interval == 3 and cfg.short() == "FFP55/0.75/local/k3"
    assert GranularityConfig.from_short("FFP55/0.75/local").keyframe_interval == 1
    assert GranularityConfig.from_short("FFP55/0.75/local").short() == "FFP55/0.75/local"  # k1 is left out
    assert cfg.detector_config() == GranularityConfig.from_short("FFP55/0.75/local")
    assert cfg.with_levels(("full",) * 5).keyframe_interval == 3
    for bad in ("FFP55/0.75/local/k5", "FFP55/0.75/local/kx", "FFP55/0.75/local/k2/x"):
        with pytest.raises(GranularityError):
            GranularityConfig.from_short(bad)
    assert 1 in KEYFRAME_INTERVALS and 5 not in KEYFRAME_INTERVALS
