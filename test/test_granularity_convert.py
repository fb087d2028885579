"""Converter: same function at full, L1 ranking is a pure permutation, unsafe layers are found and pinned."""

from __future__ import annotations

import torch
from torch import nn

from agra_ros.granularity.convert import convert_model, filter_importance
from agra_ros.granularity.switchable import SwitchableConv2d

torch.set_num_threads(1)


def _cbr(cin: int, cout: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = _cbr(3, 16)
        self.dw = _cbr(16, 16, groups=16)
        self.b = _cbr(16, 8)
        self.c = _cbr(8, 8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.dw(self.a(x)))
        return self.head(self.c(y) + y)  # residual add: b and c must stay aligned


def _randomise_bn(model: nn.Module) -> None:
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)


def test_converted_model_matches_original_and_ranking_is_a_permutation() -> None:
    torch.manual_seed(0)
    model = Residual()
    _randomise_bn(model)
    model.eval()
    x = torch.randn(2, 3, 20, 20)
    ref = model(x)
    report = convert_model(model)
    assert len(report.converted) == 5
    torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)  # ranking reorders, never changes the function
    assert report.reordered == ["a.0"]  # a -> relu -> depthwise -> b: safe; dw follows a's order
    assert set(report.unsafe) >= {"b.0", "c.0"}  # both meet the residual add
    assert "head" in report.unsafe  # the model output
    importance = filter_importance(model.a[0])
    assert torch.all(importance[:-1] >= importance[1:])  # most important first
    layers = [m for m in model.modules() if isinstance(m, SwitchableConv2d)]
    for layer in layers:
        layer.set_level("neuron-50")
    out = model(x)  # pinned unsafe layers keep the residual aligned; a and dw run at half width
    assert out.shape == ref.shape
    assert model.a[0](x).shape[1] == 8 and model.b[0].switchable_out is False
    for layer in layers:
        layer.set_level("partitioned")
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-4)


def test_grouped_convolutions_are_skipped_with_a_reason() -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU())
    report = convert_model(model)
    assert report.converted == [] and "0" in report.skipped


def test_torchvision_detector_built_without_weights_converts_and_runs() -> None:
    """A real torchvision detector (weights=None: nothing downloaded) becomes switchable and still runs."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=4
    ).eval()
    n_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        ref = model.backbone(x)
    report = convert_model(model, trace_root=model.backbone)
    layers = [m for m in model.modules() if isinstance(m, SwitchableConv2d)]
    assert len(report.converted) == len(layers) > 0.9 * n_convs  # every dense or depthwise conv is switchable
    assert report.reordered, "no layer was ranked: neuron levels would keep arbitrary filters"
    for level in ("full", "partitioned"):
        for m in layers:
            m.set_level(level)
        with torch.no_grad():
            out = model.backbone(x)
        for k in ref:
            torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-4 * float(ref[k].abs().max()))
    for m in layers:
        m.set_level("neuron-50")
    with torch.no_grad():
        (result,) = model([torch.rand(3, 128, 128)])
    assert set(result) >= {"boxes", "scores", "labels"} and result["boxes"].shape[-1] == 4
