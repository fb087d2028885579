"""Accuracy and speed of granularity configurations on the robot's own footage (``agra-ros evaluate-footage``).

Agreement with the full configuration, not ground truth (:mod:`agra_ros.detectors.pseudo_eval`): full (every layer
``full``, scale 1.0, keyframe interval 1) detects on every frame and is the reference; every configuration runs the
same frames as perception would run it and is scored with ``confident_agreement`` (``strict_agreement`` beside it).
PATH: a video file (anything OpenCV reads), a folder of jpg/png images (sorted by name), or a recording (rosbag2
folder or .mcap) with sensor_msgs Image or CompressedImage on ``image_raw`` (else ``image_annotated``). Frames stay
in order: at keyframe interval k the detector runs on frames 0, k, 2k, ... and the
:class:`~agra_ros.perception.tracker.KeyframeTracker` moves its boxes over the frames between; a frame the tracker
gives up on (scene cut, every box lost) is a forced keyframe. Latency: mean wall time per frame at ``--threads``,
tracking included (each frame's lowest of ``--repeats`` round-robin passes); speedup: full's latency over this one's.

Configurations: every uniform level x scale x keyframe interval, plus ``--frontier`` points of the shipped cost table
and accuracy model (interval 1). Written atomically once all are measured: ``footage_eval.csv`` (:data:`COLUMNS`, then
:data:`EXTRA_COLUMNS`), ``footage_eval.png``, ``summary.json``; ``--install`` copies the CSV to
:func:`installed_table`. Bad input (missing, empty, corrupt, no images): one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agra_ros.assets import cache_dir
from agra_ros.detectors import pseudo_eval as pe
from agra_ros.granularity.levels import KEYFRAME_INTERVALS, LEVELS, RESOLUTION_SCALES, GranularityConfig
from agra_ros.paths import run_dir
from agra_ros.perception.tracker import KeyframeTracker

CSV_NAME = "footage_eval.csv"
PLOT_NAME = "footage_eval.png"
COLUMNS = ("configuration", "agreement", "latency_ms", "speedup")
EXTRA_COLUMNS = ("strict_agreement", "keyframes", "forced_keyframes", "frames", "kind")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_TOPICS = ("image_raw", "image_annotated")
"""Recorded topics read, in order of preference (the raw camera first: the annotated one has boxes drawn on)."""
FLOORS = (0.9, 0.8)  # agreement floors the summary names the cheapest configuration for
WARMUP = 2  # untimed detections on the first frame after each configuration switch
_ENCODINGS = {"rgb8": (3, None), "bgr8": (3, cv2.COLOR_BGR2RGB), "rgba8": (4, cv2.COLOR_RGBA2RGB),
              "bgra8": (4, cv2.COLOR_BGRA2RGB), "mono8": (1, cv2.COLOR_GRAY2RGB)}  # fmt: skip


class FootageError(ValueError):
    """PATH cannot give frames; the message names the file and the problem (one line)."""


def installed_table() -> Path:
    """Where ``--install`` puts the CSV: this user's cache (``~/.cache/agra_ros/footage_eval.csv``)."""
    return cache_dir(CSV_NAME)


def read_frames(path: str | Path, every: int = 1, max_frames: int = 300) -> tuple[list[np.ndarray], str]:
    """Every ``every``-th frame of PATH, in order, at most ``max_frames``, as RGB uint8; and what was read."""
    path = Path(path)
    if not path.exists():
        raise FootageError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise FootageError(f"{path}: not readable (permission denied)")
    if path.is_dir():
        mcaps = sorted(path.glob("*.mcap"))
        if (path / "metadata.yaml").is_file() or len(mcaps) == 1:
            return _recording_frames(path if (path / "metadata.yaml").is_file() else mcaps[0], every, max_frames)
        if mcaps:
            raise FootageError(f"{path}: a folder with {len(mcaps)} .mcap files and no metadata.yaml; name one")
        return _folder_frames(path, every, max_frames)
    if path.stat().st_size == 0:
        raise FootageError(f"{path}: empty file")
    if path.suffix.lower() == ".mcap":
        return _recording_frames(path, every, max_frames)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [_read_image(path)], "1 image"
    return _video_frames(path, every, max_frames)


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FootageError(f"{path}: not an image OpenCV can decode (corrupt or unreadable?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _folder_frames(path: Path, every: int, max_frames: int) -> tuple[list[np.ndarray], str]:
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        what = "an empty folder" if not any(path.iterdir()) else "a folder without jpg/png images or a recording"
        raise FootageError(f"{path}: {what}")
    picked = files[::every][:max_frames]
    return [_read_image(p) for p in picked], f"{len(picked)} of {len(files)} images"


def _video_frames(path: Path, every: int, max_frames: int) -> tuple[list[np.ndarray], str]:
    from cv2.utils import logging as cv_log

    level = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_SILENT)  # a corrupt file is reported once, by us
    try:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise FootageError(f"{path}: not a video OpenCV can open (corrupt, or not a video?)")
        frames: list[np.ndarray] = []
        i = 0
        while len(frames) < max_frames:
            if i % every == 0:
                ok, bgr = cap.read()
                if ok and bgr is not None:
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            else:
                ok = cap.grab()
            if not ok:
                break
            i += 1
        cap.release()
    finally:
        cv_log.setLogLevel(level)
    if not frames:
        raise FootageError(f"{path}: no frame could be decoded (corrupt or empty video?)")
    return frames, f"{len(frames)} video frames"


def decode_image(msg, msgtype: str) -> np.ndarray:
    """A recorded sensor_msgs Image or CompressedImage (rosbags' decoded message) as RGB uint8."""
    data = np.asarray(msg.data, np.uint8).reshape(-1)
    if msgtype.endswith("CompressedImage"):
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"compressed image ({msg.format!r}) does not decode")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    enc = str(msg.encoding).lower()
    if enc not in _ENCODINGS:
        raise ValueError(f"unsupported encoding {msg.encoding!r} (supported: {', '.join(_ENCODINGS)})")
    ch, conversion = _ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or step < w * ch or data.size < step * h:
        raise ValueError(f"{w}x{h} {enc} image with step {step} and {data.size} bytes of data")
    pixels = data[: step * h].reshape(h, step)[:, : w * ch].reshape(h, w, ch)
    return np.ascontiguousarray(pixels) if conversion is None else cv2.cvtColor(pixels, conversion)


def _recording_frames(src: Path, every: int, max_frames: int) -> tuple[list[np.ndarray], str]:
    # rosbags directly: agra_ros.record sits above the detectors in the package's layers
    from rosbags.highlevel import AnyReader

    frames: list[np.ndarray] = []
    try:
        with AnyReader([src]) as reader:
            images = [c for c in reader.connections if c.msgtype.endswith(("/Image", "/CompressedImage"))]
            for key in IMAGE_TOPICS:
                conns = [c for c in images if c.topic.rstrip("/").split("/")[-1] == key and c.msgcount > 0]
                if conns:
                    conns = [c for c in conns if c.topic == conns[0].topic]  # one camera
                    break
            else:
                held = ", ".join(sorted({f"{c.topic} ({c.msgcount})" for c in reader.connections})) or "nothing"
                raise FootageError(f"{src}: no images on {' or '.join(IMAGE_TOPICS)}; the recording holds {held}")
            for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                if len(frames) >= max_frames:
                    break
                if i % every == 0:
                    try:
                        frames.append(decode_image(reader.deserialize(raw, conn.msgtype), conn.msgtype))
                    except Exception as exc:
                        raise FootageError(f"{src}: an image on {conn.topic} does not decode: {exc}") from None
    except FootageError:
        raise
    except Exception as exc:  # rosbags raises several types for a truncated or corrupt recording
        raise FootageError(f"{src}: unreadable recording (corrupt?): {type(exc).__name__}: {exc}") from None
    if not frames:
        raise FootageError(f"{src}: the recording's images could not be read")
    return frames, f"{len(frames)} images of {conns[0].topic}"


@dataclass
class Result:
    config: GranularityConfig
    kind: str  # uniform | frontier
    seconds: np.ndarray  # per frame, the lowest of the passes
    keyframes: int
    forced: int
    frames: int
    agreement: float = math.nan
    strict: float = math.nan
    speedup: float = math.nan

    @property
    def latency_s(self) -> float:
        return float(np.mean(self.seconds))


def standard_configs(n_layers: int, scales=RESOLUTION_SCALES, intervals=KEYFRAME_INTERVALS) -> list[GranularityConfig]:
    """Every uniform level x scale x keyframe interval, full (scale 1, interval 1) first."""
    full = GranularityConfig.uniform("full", n_layers)
    out = [GranularityConfig((lv,) * n_layers, s, "local", k) for k in intervals for s in scales for lv in LEVELS]
    return [full] + [c for c in out if c != full]


def frontier_configs(detector: str, n_layers: int, k: int) -> tuple[list[GranularityConfig], str]:
    """``k`` configurations of the predicted accuracy-latency frontier of the shipped cost table (x86_generic) and
    accuracy model (where ``agra-ros evaluate-ssd`` measures); empty with the reason when there is none."""
    if k <= 0:
        return [], "frontier: not asked for"
    from agra_ros.detectors import registry
    from agra_ros.detectors.ssd.evaluate import frontier_picks
    from agra_ros.tables.files import TableError
    from agra_ros.tables.search import load_config_model, search_space

    try:
        model = load_config_model(
            registry.shipped_cost_table(detector, "x86_generic"), registry.shipped_accuracy_model(detector)
        )
        picks = [c for c in frontier_picks(search_space(model), k) if c.n_layers == n_layers]
    except (TableError, OSError, ValueError) as exc:
        return [], f"frontier left out: {exc}"
    return picks, f"frontier: {len(picks)} configurations of the shipped x86_generic cost table and accuracy model"


def run_config(model, frames: Sequence[np.ndarray], config: GranularityConfig) -> tuple[list, list[float], int, int]:
    """Run ``config`` over ``frames`` as perception would, timed: the detector on keyframes and, between them, the
    tracker following what the node publishes (score >= ``PSEUDO_LABEL_SCORE``); the weaker boxes only the metric
    ranks follow in a second, untimed tracker. Returns (detections per frame down to the candidate score, seconds
    per frame, keyframes, forced keyframes)."""
    import torch

    model.set_config(config.detector_config())
    k = config.keyframe_interval
    tracker, shadow = KeyframeTracker(), KeyframeTracker()
    dets: list = []
    seconds: list[float] = []
    keyframes = forced = 0
    with torch.inference_mode():
        for _ in range(WARMUP):
            model.detect([frames[0]], pe.CONFIDENT_CANDIDATE_SCORE)
        for i, frame in enumerate(frames):
            out, spent, t0 = None, 0.0, time.perf_counter()
            if k > 1 and i % k:
                res = tracker.track(frame)
                spent = time.perf_counter() - t0
                if res.ok:
                    weak = shadow.track(frame)
                    out = pe.above(weak if weak.ok else res, pe.CONFIDENT_CANDIDATE_SCORE)
                else:
                    forced += 1
            if out is None:
                t0 = time.perf_counter()
                out = model.detect([frame], pe.CONFIDENT_CANDIDATE_SCORE)[0]
                if k > 1:
                    published = pe.above(out, pe.PSEUDO_LABEL_SCORE)
                    tracker.keyframe(frame, published.boxes, published.scores, published.labels)
                spent += time.perf_counter() - t0
                keyframes += 1
                if k > 1:
                    shadow.keyframe(frame, out.boxes, out.scores, out.labels)
            seconds.append(spent)
            dets.append(out)
    return dets, seconds, keyframes, forced


def evaluate(model, frames: Sequence[np.ndarray], configs: Sequence[tuple[GranularityConfig, str]], repeats: int = 1):
    """Measure every configuration (the first must be full at interval 1: the reference) in ``repeats`` passes over
    the whole set, round-robin, so a burst of load on shared cores hits one pass of a frame, not all of them: a
    frame's time is its lowest over the passes; the detections (so agreement and keyframes) are the same each pass."""
    from tqdm import tqdm

    rows: list[Result] = []
    todo = [(rep, i, config, kind) for rep in range(repeats) for i, (config, kind) in enumerate(configs)]
    interval = 0.5 if sys.stderr.isatty() else 5.0
    with tqdm(todo, desc="configurations", unit="cfg", mininterval=interval) as bar:
        for rep, i, config, kind in bar:
            dets, seconds, keyframes, forced = run_config(model, frames, config)
            bar.set_postfix_str(f"{config.short()} {np.mean(seconds) * 1e3:.1f} ms", refresh=False)
            if rep:
                rows[i].seconds = np.minimum(rows[i].seconds, seconds)
                continue
            if not rows:
                reference = dets
                if math.isnan(pe.confident_agreement(dets, dets)):
                    top = max((float(d.scores.max()) for d in dets if len(d)), default=0.0)
                    raise FootageError(f"full's best score on these frames is {top:.2f}: no detection >= "
                                       f"{pe.CONFIDENT_REFERENCE_SCORE} to agree with")  # fmt: skip
            agree = pe.confident_agreement(dets, reference), pe.strict_agreement(dets, reference)
            rows.append(Result(config, kind, np.asarray(seconds), keyframes, forced, len(frames), *agree))
    for r in rows:
        r.speedup = rows[0].latency_s / r.latency_s
    model.set_config(configs[0][0])
    return rows


def _write_atomic(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def csv_bytes(rows: Sequence[Result]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS + EXTRA_COLUMNS)
    for r in rows:
        w.writerow(
            [r.config.short(), f"{r.agreement:.4f}", f"{r.latency_s * 1e3:.3f}", f"{r.speedup:.3f}"]
            + [f"{r.strict:.4f}", r.keyframes, r.forced, r.frames, r.kind]
        )
    return buf.getvalue().encode()


def plot_bytes(rows: Sequence[Result], title: str) -> bytes:
    """PNG: agreement against speedup, one marker per keyframe interval, one colour per level (frontier: grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    markers = dict(zip(KEYFRAME_INTERVALS, "osD^v"))
    colours = dict(zip(LEVELS, ("tab:blue", "tab:purple", "tab:green", "tab:orange", "tab:red")))
    fig, ax = plt.subplots(figsize=(8, 5.2))
    for r in rows:
        uniform = r.kind == "uniform"
        colour = colours[r.config.levels[0]] if uniform else "0.55"
        size = 20 + 40 * r.config.resolution_scale if uniform else 18
        ax.scatter(r.speedup, r.agreement, s=size, c=colour, marker=markers[r.config.keyframe_interval], ec="k", lw=0.4)
    handles = [Line2D([], [], ls="", marker="o", c=colours[lv], mec="k", label=f"all {lv}") for lv in LEVELS]
    handles += [Line2D([], [], ls="", marker=m, c="w", mec="k", label=f"interval {k}") for k, m in markers.items()]
    if any(r.kind != "uniform" for r in rows):
        handles.append(Line2D([], [], ls="", marker="o", c="0.55", mec="k", label="frontier (mixed)"))
    ax.legend(handles=handles, fontsize=7, loc="upper right", ncol=2)
    for floor in FLOORS:
        ax.axhline(floor, c="0.7", lw=0.8, ls="--")
    ax.set_xlabel("speedup over full every frame (measured, marker size: resolution scale)")
    ax.set_ylabel("confident agreement with full (mAP@0.5)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(buf := io.BytesIO(), format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def summary(rows: Sequence[Result]) -> tuple[list[str], dict]:
    """Printed lines and the summary.json dict."""
    full = rows[0]
    lines = [f"full {full.config.short()}: {full.latency_s * 1e3:.1f} ms per frame"]
    data: dict = {"full_latency_ms": full.latency_s * 1e3, "cheapest": {}}
    for floor in FLOORS:
        best = min((r for r in rows if r.agreement >= floor), key=lambda r: r.latency_s, default=None)
        if best is None:
            lines.append(f"cheapest with agreement >= {floor}: none")
            continue
        lines.append(
            f"cheapest with agreement >= {floor}: {best.config.short()} agreement {best.agreement:.3f} "
            f"(strict {best.strict:.3f}), {best.latency_s * 1e3:.1f} ms, {best.speedup:.2f}x faster than full"
        )
        data["cheapest"][str(floor)] = {"configuration": best.config.short(), "agreement": best.agreement,
                                        "latency_ms": best.latency_s * 1e3, "speedup": best.speedup}  # fmt: skip
    by = {(r.config, r.kind): r for r in rows}
    levels = [(lv, by.get((GranularityConfig.uniform(lv, full.config.n_layers), "uniform"))) for lv in LEVELS]
    lines.append("every frame, scale 1: " + ", ".join(f"all-{lv} {r.agreement:.3f}" for lv, r in levels if r))
    ks = [(k, by.get((full.config.with_keyframe_interval(k), "uniform"))) for k in KEYFRAME_INTERVALS]
    lines.append(
        "full, scale 1, by keyframe interval: "
        + ", ".join(f"k{k} {r.agreement:.3f} ({r.speedup:.2f}x, {r.forced} forced)" for k, r in ks if r)
    )
    return lines, data


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agra-ros evaluate-footage", description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="video file, image folder, or recording (rosbag2 folder or .mcap)")
    ap.add_argument("--every", type=int, default=1, help="take every Nth frame (default 1)")
    ap.add_argument("--max-frames", type=int, default=300, help="at most this many frames (default 300)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads while measuring (default 1)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes; a frame's lowest time counts (default 2)")
    ap.add_argument("--detector", choices=("ssd", "synthetic"), default="ssd", help="detector (default ssd)")
    ap.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default runs/footage/<stem of PATH>)")
    ap.add_argument("--frontier", type=int, default=8, help="frontier configurations of the shipped tables (0: none)")
    ap.add_argument("--scales", type=lambda t: [float(x) for x in t.split(",")], default=RESOLUTION_SCALES,
                    help="comma-separated subset of the resolution scales (default all)")  # fmt: skip
    ap.add_argument("--intervals", type=lambda t: [int(x) for x in t.split(",")], default=KEYFRAME_INTERVALS,
                    help="comma-separated subset of the keyframe intervals (default all)")  # fmt: skip
    ap.add_argument("--install", action="store_true", help=f"also copy the CSV to {installed_table()}")
    args = ap.parse_args(argv)
    if args.every < 1 or args.max_frames < 1 or args.threads < 1 or args.repeats < 1 or args.frontier < 0:
        ap.error("--every, --max-frames, --threads and --repeats must be >= 1, --frontier >= 0")
    if not set(args.scales) <= set(RESOLUTION_SCALES) or not set(args.intervals) <= set(KEYFRAME_INTERVALS):
        ap.error(f"scales must be among {RESOLUTION_SCALES}, intervals among {KEYFRAME_INTERVALS}")
    try:
        frames, what = read_frames(args.path, args.every, args.max_frames)
    except FootageError as exc:
        print(f"agra-ros evaluate-footage: {exc}", file=sys.stderr)
        return 2
    import torch

    from agra_ros.detectors import registry

    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    try:
        model = registry.load(args.detector, args.weights)
        n = len(model.switchable_layer_names())
        frontier, note = frontier_configs(args.detector, n, args.frontier)
        configs = [(c, "uniform") for c in standard_configs(n, args.scales, args.intervals)]
        configs += [(c, "frontier") for c in frontier if c not in {c for c, _ in configs}]
        size = "x".join(map(str, frames[0].shape[1::-1]))
        print(f"{args.path}: {what} (every {args.every}, {size}); {args.detector}, {args.threads} thread(s)")
        print(f"{len(configs)} configurations; {note}")
        rows = evaluate(model, frames, configs, args.repeats)
    except FootageError as exc:
        print(f"agra-ros evaluate-footage: {args.path}: {exc}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    lines, data = summary(rows)
    out = args.out or run_dir("footage") / args.path.stem
    data.update(path=str(args.path), frames=len(frames), every=args.every, detector=args.detector,
                threads=args.threads, configurations=len(rows))  # fmt: skip
    title = f"{args.path.name}: {len(frames)} frames, {args.detector}, {args.threads} thread(s)"
    png, table = plot_bytes(rows, title), csv_bytes(rows)
    _write_atomic(out / CSV_NAME, table)
    _write_atomic(out / PLOT_NAME, png)
    _write_atomic(out / "summary.json", json.dumps(data, indent=1).encode())
    for line in lines:
        print(line)
    print(f"wrote {out / CSV_NAME}, {out / PLOT_NAME}")
    if args.install:
        print(f"installed the accuracy table for this robot: {_write_atomic(installed_table(), table)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
