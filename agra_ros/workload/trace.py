"""Workload traces: how the scene and the performance target change over time.

One trace drives the camera (scene density and resolution), the simulator and the benchmarks (target FPS), so all
of them see the same workload. A trace is a YAML file in ``config/traces/``::

    name: default
    description: what this workload stands for
    loop: true                    # after the last phase start again (false: stay in the last phase)
    phases:
      - name: quiet
        duration_s: 15
        density: 6                # mean objects per frame (drawn from [0.5 d, 1.5 d]) or [min, max]
        resolution: [640, 480]
        target_fps: 15            # or target_fps_rel: 1.3 - 1.3 x the rate full runs at on this device
        scene: {noise: 4.0}       # optional SceneParams overrides for this phase
        clip: vtest               # optional: the real video clip source=video plays (vtest, Megamind, tree, a file)

A relative target binds on every device alike (the paper's setting: a target just above what static reaches);
``Trace.resolved(full_fps)`` turns it absolute once the device's full-configuration rate is known, and refuses with
one line naming the phase where it is not.

``Trace.load("default")`` reads ``config/traces/default.yaml``; a path to a file works too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from agra_ros.paths import config_dir, config_file

_SCENE_FIELDS_FROM_PHASE = {"width", "height", "min_objects", "max_objects"}  # set by the phase itself


class TraceError(ValueError):
    """A trace file is missing, malformed or has values out of range."""


@dataclass(frozen=True)
class Phase:
    """One stretch of a workload trace with a constant scene density, resolution and target FPS."""

    name: str
    """Name shown in logs and plots."""
    duration_s: float
    """How long the phase lasts, seconds (> 0)."""
    density: tuple[int, int]
    """Objects per frame, [min, max]."""
    resolution: tuple[int, int]
    """Camera image size [width, height] in pixels."""
    target_fps: float
    """Frame rate the robot asks for in this phase (the performance target P); NaN while the phase states its
    target relative to the device (``target_fps_rel``) and the trace is not yet :meth:`Trace.resolved`."""
    scene: Mapping[str, float] = field(default_factory=dict)
    """Extra SceneParams overrides (noise, blur, lighting, clutter, occlusion, sizes, speed)."""
    target_fps_rel: float | None = None
    """The target as a multiple of the device's full-configuration rate (``target_fps_rel: 1.3`` in the YAML: 30 %
    faster than ``full`` runs on this device), so one trace binds on a Jetson Nano and on a laptop alike."""
    clip: ClassVar[str] = ""
    """Real video clip of the phase (:class:`ClipPhase`); empty: the phase names none."""

    @property
    def relative(self) -> bool:
        """True when the target is stated relative to the device's full-configuration rate."""
        return self.target_fps_rel is not None

    def target_for(self, full_fps: float | None) -> float:
        """The absolute target on a device whose full configuration runs at ``full_fps``; TraceError naming the
        phase when the phase is relative and that rate is unknown (None, NaN or not positive)."""
        if self.target_fps_rel is None:
            return self.target_fps
        if full_fps is None or not math.isfinite(full_fps) or full_fps <= 0:
            raise TraceError(
                f"phase {self.name!r}: target_fps_rel {self.target_fps_rel:g} needs the device's full-configuration "
                f"rate, which is unknown ({full_fps}); state target_fps instead or give the rate"
            )
        return self.target_fps_rel * float(full_fps)

    @property
    def mean_density(self) -> float:
        """Mean objects per frame."""
        return (self.density[0] + self.density[1]) / 2

    def scene_changes(self) -> dict[str, Any]:
        """Keyword arguments for ``SceneGenerator.set_params`` that put the scene into this phase."""
        return {
            "width": self.resolution[0],
            "height": self.resolution[1],
            "min_objects": self.density[0],
            "max_objects": self.density[1],
            **dict(self.scene),
        }


@dataclass(frozen=True)
class ClipPhase(Phase):
    """A phase that also names the real video clip the camera plays in it (``clip:`` in the YAML).

    A subclass, not a field of :class:`Phase`, so phases without a clip serialise (and hash) exactly as before: the
    simulator keys its shipped workload renderings by a hash of the phases' fields.
    """

    clip: str = ""
    """A clip name of :data:`agra_ros.workload.real_media.CLIPS` or a video file path."""


@dataclass(frozen=True)
class Trace:
    """A workload trace: phases played one after another, looped or held at the end."""

    name: str
    phases: tuple[Phase, ...]
    loop: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if not self.phases:
            raise TraceError(f"trace {self.name!r}: needs at least one phase")

    @property
    def total_duration(self) -> float:
        """Length of one pass through all phases, seconds."""
        return float(sum(p.duration_s for p in self.phases))

    def phase_index_at(self, t: float) -> int:
        """Index of the phase active at ``t`` seconds from the start (t < 0 counts as 0)."""
        if not math.isfinite(t):
            raise ValueError(f"trace time must be finite, got {t}")
        t = max(0.0, float(t))
        total = self.total_duration
        if self.loop:
            t = math.fmod(t, total)
        elif t >= total:
            return len(self.phases) - 1
        end = 0.0
        for i, phase in enumerate(self.phases):
            end += phase.duration_s
            if t < end:
                return i
        return len(self.phases) - 1  # rounding at the very end of a loop

    def phase_at(self, t: float) -> Phase:
        """The phase active at ``t`` seconds from the start."""
        return self.phases[self.phase_index_at(t)]

    @property
    def relative(self) -> bool:
        """True when any phase states its target relative to the device's full-configuration rate."""
        return any(p.relative for p in self.phases)

    def resolved(self, full_fps: float | None) -> Trace:
        """This trace with every target absolute on a device whose full configuration runs at ``full_fps``
        (relative phases: ``target_fps_rel`` x ``full_fps``); TraceError naming the first relative phase when the
        rate is unknown. A trace without relative phases is returned as it is."""
        if not self.relative:
            return self
        phases = tuple(
            dataclasses.replace(p, target_fps=p.target_for(full_fps), target_fps_rel=None) for p in self.phases
        )
        return dataclasses.replace(self, phases=phases)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path_or_name: str | Path) -> Trace:
        """Read a trace from a YAML file, or by bare name from ``config/traces/<name>.yaml``."""
        path = resolve_trace_path(path_or_name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TraceError(f"cannot read trace file {path}: {exc.strerror or exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TraceError(f"trace file {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data, default_name=path.stem, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "trace", source: str = "<dict>") -> Trace:
        """Build and validate a trace from parsed YAML."""
        if not isinstance(data, Mapping):
            raise TraceError(f"{source}: a trace must be a mapping with a 'phases' list, got {type(data).__name__}")
        unknown = set(data) - {"name", "description", "loop", "phases"}
        if unknown:
            raise TraceError(f"{source}: unknown key(s) {sorted(unknown)}")
        phases_data = data.get("phases")
        if not isinstance(phases_data, list) or not phases_data:
            raise TraceError(f"{source}: 'phases' must be a non-empty list")
        loop = data.get("loop", True)
        if not isinstance(loop, bool):
            raise TraceError(f"{source}: 'loop' must be true or false, got {loop!r}")
        phases = tuple(_parse_phase(p, i, source) for i, p in enumerate(phases_data))
        return cls(
            name=str(data.get("name", default_name)),
            phases=phases,
            loop=loop,
            description=str(data.get("description", "")),
        )


def resolve_trace_path(path_or_name: str | Path) -> Path:
    """A file path as given, or ``config/traces/<name>.yaml`` for a bare name; TraceError if missing."""
    text = str(path_or_name)
    if not text:
        raise TraceError("empty trace name")
    looks_like_path = isinstance(path_or_name, Path) or "/" in text or text.endswith((".yaml", ".yml"))
    path = Path(text) if looks_like_path else config_file(f"traces/{text}.yaml")
    if not path.is_file():
        known = ", ".join(available_traces()) or "none"
        raise TraceError(f"trace {text!r} not found (looked for {path}); traces in config/traces: {known}")
    return path


def available_traces() -> list[str]:
    """Names of the traces shipped in ``config/traces/``."""
    folder = config_dir() / "traces"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _parse_phase(data: Any, index: int, source: str) -> Phase:
    where = f"{source}: phase {index}"
    if not isinstance(data, Mapping):
        raise TraceError(f"{where} must be a mapping, got {type(data).__name__}")
    required = {"duration_s", "density", "resolution"}
    missing = required - set(data)
    if missing:
        raise TraceError(f"{where} is missing {sorted(missing)}")
    targets = {"target_fps", "target_fps_rel"} & set(data)
    if len(targets) != 1:
        raise TraceError(f"{where} needs exactly one of target_fps (absolute) and target_fps_rel (x full's rate)")
    unknown = set(data) - required - targets - {"name", "scene", "clip"}
    if unknown:
        raise TraceError(f"{where} has unknown key(s) {sorted(unknown)}")
    name = str(data.get("name", f"phase{index}"))
    where = f"{source}: phase {index} ({name})"

    duration = _number(data["duration_s"], f"{where}: duration_s")
    if duration <= 0:
        raise TraceError(f"{where}: duration_s must be > 0, got {duration}")
    rel = None
    if "target_fps_rel" in data:
        rel = _number(data["target_fps_rel"], f"{where}: target_fps_rel")
        if not 0.05 <= rel <= 20:
            raise TraceError(f"{where}: target_fps_rel must be in [0.05, 20] (times full's rate), got {rel}")
        fps = math.nan
    else:
        fps = _number(data["target_fps"], f"{where}: target_fps")
        if not 0 < fps <= 1000:
            raise TraceError(f"{where}: target_fps must be in (0, 1000], got {fps}")

    res = data["resolution"]
    if not (
        isinstance(res, list) and len(res) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in res)
    ):
        raise TraceError(f"{where}: resolution must be [width, height] integers, got {res!r}")
    if not all(32 <= v <= 4096 for v in res):
        raise TraceError(f"{where}: resolution sides must be in 32..4096, got {res!r}")

    density = _parse_density(data["density"], where)
    scene = data.get("scene", {}) or {}
    if not isinstance(scene, Mapping):
        raise TraceError(f"{where}: scene must be a mapping of SceneParams overrides")
    from agra_ros.workload.scene_types import SceneParams  # local: keeps trace parsing cheap to import

    allowed = {f.name for f in dataclasses.fields(SceneParams)} - _SCENE_FIELDS_FROM_PHASE
    bad = set(scene) - allowed
    if bad:
        raise TraceError(f"{where}: scene keys {sorted(bad)} not allowed; use {sorted(allowed)}")
    args = (name, duration, density, (res[0], res[1]), fps, dict(scene), rel)
    phase = ClipPhase(*args, clip=_parse_clip(data["clip"], where)) if "clip" in data else Phase(*args)
    try:
        SceneParams(**phase.scene_changes())
    except (TypeError, ValueError) as exc:
        raise TraceError(f"{where}: {exc}") from exc
    return phase


def _parse_clip(value: Any, where: str) -> str:
    """A known clip's canonical name, or a video file path (checked when the camera opens it)."""
    from agra_ros.workload.real_media import CLIPS, canonical_clip  # local: keeps trace parsing cheap to import

    if not isinstance(value, str) or not value.strip():
        raise TraceError(f"{where}: clip must be a clip name ({', '.join(CLIPS)}) or a video file path, got {value!r}")
    clip = canonical_clip(value.strip())
    if clip is not None:
        return clip
    if "/" in value or Path(value).suffix:
        return value
    raise TraceError(f"{where}: unknown clip {value!r}; use one of {', '.join(CLIPS)} or a video file path")


def _parse_density(value: Any, where: str) -> tuple[int, int]:
    """A mean d becomes [round(0.5 d), round(1.5 d)] (mean d); a pair is taken as [min, max]."""
    if isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TraceError(f"{where}: density as a list must be [min, max] integers, got {value!r}")
        lo, hi = value
    else:
        mean = _number(value, f"{where}: density")
        lo, hi = int(round(0.5 * mean)), int(round(1.5 * mean))
    if not 0 <= lo <= hi <= 200:
        raise TraceError(f"{where}: density must satisfy 0 <= min <= max <= 200, got {value!r}")
    return lo, hi


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(f"{what} must be a finite number, got {value!r}")
    return float(value)
