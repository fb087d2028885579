"""The real detector's weights: import from the pinned npm package, and the project's weights file format.

``agra-ros import-detector`` fetches ``@mediapipe/objectron`` from the npm registry, cuts the SSD-MobileNetV2 TFLite
model and its label map out of the packed assets file, checks the model's SHA-256 against the pinned value, converts
it with the project's own reader (:mod:`agra_ros.detectors.ssd.tflite_import`) and writes a torch weights file with the
class names, source and licence. Inference never needs a TFLite runtime.

Weights file (``format: agra_ros/detector-weights``, ``version: 2``, ``detector: ssd-mobilenetv2-oidv4``): the
graph without weights (to rebuild the network), the channel rankings of the slim levels (when distilled), a
state dict stored in float16 (the pretrained weights *are* float16 in the TFLite file, so the full configuration
loses nothing), and ``meta`` (source package, sha256, licence, how the slim levels were made).

Licence: the model comes from MediaPipe's ``@mediapipe/objectron`` npm package, Apache-2.0; anything derived from
it (the converted and distilled weights) keeps that licence and the attribution in ``NOTICE_TEXT``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from agra_ros.assets import AssetError, fetch_npm_package, sha256_file
from agra_ros.detectors.interface import WeightsError
from agra_ros.detectors.ssd.graph_ops import graph_from_spec
from agra_ros.detectors.ssd.network import DETECTOR_NAME, SsdDetector
from agra_ros.detectors.ssd.tflite_import import TfliteImportError, read_tflite

NPM_PACKAGE = "@mediapipe/objectron"
NPM_VERSION = "0.4.1675468480"
PACKED_FILE = "package/objectron_solution_packed_assets.data"
LABELS_RANGE = (0, 184)
MODEL_RANGE = (184, 9987912)
MODEL_SHA256 = "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6"
WEIGHTS_FORMAT = "agra_ros/detector-weights"
SSD_WEIGHTS_VERSION = 2
LICENSE = "Apache-2.0"
NOTICE_TEXT = (
    "SSD-MobileNetV2 (Open Images v4) object detection model from MediaPipe "
    f"(npm package {NPM_PACKAGE}@{NPM_VERSION}, object_detection_ssd_mobilenetv2_oidv4_fp16.tflite), "
    "Copyright The MediaPipe Authors, licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0). Converted to torch and extended with distilled slim levels "
    "by agra_ros; the derived weights are distributed under the same licence."
)


def read_packed_assets(path: str | Path) -> tuple[list[str], bytes]:
    """(class names without background, TFLite bytes) from the packed assets file, SHA-256 checked."""
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"packed assets file not found: {p}")
    size = p.stat().st_size
    if size < MODEL_RANGE[1]:
        raise AssetError(f"{p}: truncated ({size} bytes, the model ends at byte {MODEL_RANGE[1]})")
    digest = sha256_file(p, *MODEL_RANGE)
    if digest != MODEL_SHA256:
        raise AssetError(f"{p}: model bytes have sha256 {digest}, expected {MODEL_SHA256} (corrupt or another version)")
    with open(p, "rb") as f:
        labels_raw = f.read(LABELS_RANGE[1])
        f.seek(MODEL_RANGE[0])
        model = f.read(MODEL_RANGE[1] - MODEL_RANGE[0])
    names = [n.strip() for n in labels_raw.decode("utf-8", errors="replace").split("\n")]
    names = [n for n in names[1:] if n]  # index 0 is the background class
    if len(names) != 23:
        raise AssetError(f"{p}: label map has {len(names)} classes, expected 23")
    return names, model


def fetch_pretrained() -> Path:
    """The packed assets file of the pinned npm package (fetched into the user's cache on first use)."""
    root = fetch_npm_package(NPM_PACKAGE, NPM_VERSION)
    return root / PACKED_FILE


def import_pretrained(packed: str | Path | None = None) -> SsdDetector:
    """The pretrained detector at full only (no slim levels yet), from the packed assets file or the registry."""
    path = Path(packed) if packed else fetch_pretrained()
    names, tfl = read_packed_assets(path)
    try:
        graph = read_tflite(tfl)
    except TfliteImportError as exc:
        raise AssetError(f"{path}: {exc}") from None
    model = SsdDetector(graph, names).eval()
    model.weights_meta = {
        "source": f"npm:{NPM_PACKAGE}@{NPM_VERSION}",
        "sha256": MODEL_SHA256,
        "license": LICENSE,
        "notice": NOTICE_TEXT,
    }
    return model


def save_ssd(model: SsdDetector, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the weights file atomically (temporary file, then rename): never half a file under the real name."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    order = getattr(model, "channel_order", None)
    rankings = {k: v.tolist() for k, v in order.items() if k in _producer_names(model)} if order else None
    payload = {
        "format": WEIGHTS_FORMAT,
        "version": SSD_WEIGHTS_VERSION,
        "detector": DETECTOR_NAME,
        "class_names": list(model.class_names),
        "graph": model.graph_spec,
        "rankings": rankings,
        "state_dict": {k: v.detach().cpu().to(torch.float16).clone() for k, v in model.state_dict().items()},
        "meta": {**model.weights_meta, **(meta or {})},
    }
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def _producer_names(model: SsdDetector) -> set[str]:
    return {n for names in model.producers.values() for n in names}


def load_ssd(path: str | Path, device: str | torch.device = "cpu") -> SsdDetector:
    """Load a weights file written by :func:`save_ssd`; :class:`WeightsError` when missing, corrupt or foreign."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"detector weights not found: {p} (create them with `agra-ros import-detector`)")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise WeightsError(f"{p}: cannot read detector weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{p}: not an agra_ros detector weights file")
    if payload.get("detector") != DETECTOR_NAME or payload.get("version") != SSD_WEIGHTS_VERSION:
        raise WeightsError(
            f"{p}: holds {payload.get('detector')!r} v{payload.get('version')!r}, "
            f"this loader reads {DETECTOR_NAME} v{SSD_WEIGHTS_VERSION}"
        )
    try:
        model = SsdDetector(graph_from_spec(payload["graph"]), payload["class_names"])
        if payload.get("rankings"):
            model.build_variants({k: torch.tensor(v, dtype=torch.long) for k, v in payload["rankings"].items()})
        state = {k: v.float() for k, v in payload["state_dict"].items()}
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise WeightsError(f"{p}: weights do not fit the SSD detector ({exc})") from None
    model.weights_meta = dict(payload.get("meta", {}))
    return model.to(device).eval()


__all__ = [
    "LICENSE",
    "MODEL_SHA256",
    "NOTICE_TEXT",
    "NPM_PACKAGE",
    "NPM_VERSION",
    "fetch_pretrained",
    "import_pretrained",
    "load_ssd",
    "read_packed_assets",
    "save_ssd",
]


def main(argv: list[str] | None = None) -> int:
    """``agra-ros import-detector``: fetch, verify and convert the pretrained model (full level only)."""
    import argparse

    from agra_ros.paths import run_dir

    ap = argparse.ArgumentParser(
        prog="agra-ros import-detector",
        description=f"Fetch {NPM_PACKAGE}@{NPM_VERSION} from the npm registry (npm pack), check the SSD-MobileNetV2 "
        "model's sha256, convert it with the project's TFLite reader and write a torch weights file (full level "
        "only; `agra-ros distill-detector` adds the slim levels). No TFLite runtime is needed.",
    )
    ap.add_argument("--packed", default="", help="use this packed assets file instead of fetching the npm package")
    ap.add_argument("--out", default=str(run_dir("import") / "ssd_mobilenetv2_oidv4_full.pt"), help="weights file")
    args = ap.parse_args(argv)
    try:
        model = import_pretrained(args.packed or None)
    except AssetError as exc:
        print(f"import-detector: {exc}")
        return 2
    out = save_ssd(model, args.out)
    n = sum(b.numel() for b in model.buffers() if b.dim() > 0)
    print(f"imported {DETECTOR_NAME}: {len(model.class_names)} classes, {n / 1e6:.2f} M weights -> {out}")
    print(f"licence: {LICENSE}; {NOTICE_TEXT}")
    return 0
