"""The catalogue of granularity levels and the granularity configuration type.

Everything that names a level (the detector, the cost tables, the simulator, the policy, the ROS topics) goes
through this module, so the level names and their order are defined exactly once.

A *granularity level* says how one switchable layer runs:

- ``full``: dense, all output channels, one pass.
- ``partitioned``: operation-level partitioning: the same output computed in spatial tiles one after another
  (halo-exact, so the result equals ``full``), with lower peak activation memory.
- ``neuron-75`` / ``neuron-50`` / ``neuron-25``: neuron-level: only that share of output channels is computed
  (slimmable layer with a switchable batch-norm per width).

A *granularity configuration* is one level per switchable layer plus the global knobs: the input resolution
scale, the execution target (``local`` or ``remote``, AutoScale's choice) and the keyframe interval (temporal
granularity: detect every k-th frame, track in between).

The integer form of a configuration (the policy's action, the agra/granularity command) is decoded here too,
with a typed error per kind of malformed command, and so are perception's fallback configuration and the full
(reference) configuration: one definition each for the simulator, the policy and the perception runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

LEVELS: tuple[str, ...] = ("full", "partitioned", "neuron-75", "neuron-50", "neuron-25")
"""Level names, ordered from the most to the least expensive in output channels."""

LEVEL_WIDTH: dict[str, float] = {
    "full": 1.0,
    "partitioned": 1.0,
    "neuron-75": 0.75,
    "neuron-50": 0.5,
    "neuron-25": 0.25,
}
"""Share of output channels each level computes."""

WIDTHS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
"""Distinct channel widths, widest first (one switchable batch-norm per width)."""

LEVEL_SHORT: dict[str, str] = {
    "full": "F",
    "partitioned": "P",
    "neuron-75": "7",
    "neuron-50": "5",
    "neuron-25": "2",
}
"""One-character code per level, for logs and console views (``FFP5522`` and so on)."""

RESOLUTION_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5)
"""Input resolution scales the global knob can pick, relative to the detector's native input size."""

KEYFRAME_INTERVALS: tuple[int, ...] = (1, 2, 3, 4, 6)
"""Temporal granularity: the detector runs on every k-th frame and a tracker moves its boxes in between (1: detect
every frame). The short form names it as a fourth field, ``/k3``, left out for 1."""

EXECUTION_TARGETS: tuple[str, ...] = ("local", "remote")
"""Where the frame is processed: this device, or a remote perception node reached over the network."""

COARSEST_LEVEL = "neuron-25"
"""The level of every layer in the policy's safety override configuration (agra_ros.online.safety)."""
FALLBACK_LEVEL = "neuron-50"
"""The level of every layer in perception's fallback configuration for a detector that names none of its own."""


class GranularityError(ValueError):
    """A granularity configuration or command that does not fit the catalogue."""


class GranularityCommandError(GranularityError):
    """An integer (wire or action) form that does not decode; ``kind`` names what is wrong: ``wrong_length``,
    ``unknown_level``, ``unknown_scale`` or ``unknown_target`` (the perception node counts bad commands by kind)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def level_index(level: str) -> int:
    """Index of ``level`` in :data:`LEVELS`; raises :class:`GranularityError` for an unknown name."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise GranularityError(f"unknown granularity level {level!r}; known: {', '.join(LEVELS)}") from None


@dataclass(frozen=True)
class GranularityConfig:
    """One level per switchable layer plus the global knobs.

    Immutable and hashable, so it can key caches (cost lookups, accuracy predictions).
    """

    levels: tuple[str, ...]
    resolution_scale: float = 1.0
    execution_target: str = "local"
    keyframe_interval: int = 1
    _checked: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        for lv in self.levels:
            level_index(lv)
        if not self.levels:
            raise GranularityError("a granularity configuration needs at least one layer")
        if self.resolution_scale not in RESOLUTION_SCALES:
            raise GranularityError(f"resolution scale {self.resolution_scale!r} not in {RESOLUTION_SCALES}")
        if self.execution_target not in EXECUTION_TARGETS:
            raise GranularityError(f"execution target {self.execution_target!r} not in {EXECUTION_TARGETS}")
        if self.keyframe_interval not in KEYFRAME_INTERVALS:
            raise GranularityError(f"keyframe interval {self.keyframe_interval!r} not in {KEYFRAME_INTERVALS}")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def uniform(
        cls, level: str, n_layers: int, resolution_scale: float = 1.0, execution_target: str = "local"
    ) -> GranularityConfig:
        """Every layer at the same level."""
        return cls((level,) * n_layers, resolution_scale, execution_target)

    @classmethod
    def from_indices(cls, indices: Sequence[int], n_layers: int) -> GranularityConfig:
        """Decode the integer form of :meth:`to_indices` (the wire and action format).

        ``indices`` holds ``n_layers`` level indices, then the resolution-scale index, then the
        execution-target index. Raises :class:`GranularityCommandError` with kind ``wrong_length``,
        ``unknown_level``, ``unknown_scale`` or ``unknown_target``.
        """
        idx = [int(i) for i in indices]
        if len(idx) != n_layers + 2:
            raise GranularityCommandError(
                "wrong_length",
                f"granularity command has {len(idx)} values, expected {n_layers + 2} "
                f"({n_layers} layer levels + resolution scale + execution target)",
            )
        for i, v in enumerate(idx[:n_layers]):
            if not 0 <= v < len(LEVELS):
                raise GranularityCommandError(
                    "unknown_level", f"granularity command: layer {i} has level index {v}, known 0..{len(LEVELS) - 1}"
                )
        if not 0 <= idx[n_layers] < len(RESOLUTION_SCALES):
            raise GranularityCommandError(
                "unknown_scale",
                f"granularity command: resolution-scale index {idx[n_layers]}, known 0..{len(RESOLUTION_SCALES) - 1}",
            )
        if not 0 <= idx[n_layers + 1] < len(EXECUTION_TARGETS):
            raise GranularityCommandError(
                "unknown_target",
                f"granularity command: execution-target index {idx[n_layers + 1]}, "
                f"known 0..{len(EXECUTION_TARGETS) - 1}",
            )
        return cls(
            tuple(LEVELS[i] for i in idx[:n_layers]),
            RESOLUTION_SCALES[idx[n_layers]],
            EXECUTION_TARGETS[idx[n_layers + 1]],
        )

    @classmethod
    def from_short(cls, text: str) -> GranularityConfig:
        """Parse :meth:`short` (``FFP55/0.75/local/k3``; without the fourth field the interval is 1)."""
        parts = text.strip().split("/")
        inverse = {v: k for k, v in LEVEL_SHORT.items()}
        try:
            levels = tuple(inverse[c] for c in parts[0])
        except KeyError as exc:
            raise GranularityError(f"unknown level code {exc.args[0]!r} in {text!r}") from None
        try:
            scale = float(parts[1]) if len(parts) > 1 else 1.0
            interval = int(parts[3].removeprefix("k")) if len(parts) > 3 else 1
        except ValueError:
            raise GranularityError(f"malformed configuration {text!r} (expected e.g. FFP55/0.75/local/k3)") from None
        if len(parts) > 4:
            raise GranularityError(f"malformed configuration {text!r}: at most four fields")
        target = parts[2] if len(parts) > 2 else "local"
        return cls(levels, scale, target, interval)

    # ----------------------------------------------------------------- views
    @property
    def n_layers(self) -> int:
        return len(self.levels)

    def widths(self) -> tuple[float, ...]:
        """Output-channel share of every layer."""
        return tuple(LEVEL_WIDTH[lv] for lv in self.levels)

    def to_indices(self) -> list[int]:
        """Integer form: level indices, then scale index, then target index (see :meth:`from_indices`)."""
        return [LEVELS.index(lv) for lv in self.levels] + [
            RESOLUTION_SCALES.index(self.resolution_scale),
            EXECUTION_TARGETS.index(self.execution_target),
        ]

    def to_action(self) -> list[int]:
        """The policy's action form: :meth:`to_indices`, then the keyframe-interval index (:func:`action_nvec`)."""
        return [*self.to_indices(), KEYFRAME_INTERVALS.index(self.keyframe_interval)]

    @classmethod
    def from_action(cls, action: Sequence[int], n_layers: int) -> GranularityConfig:
        """Decode :meth:`to_action`; an action without the interval head (``n_layers + 2`` entries, as the fixed
        baselines give) runs at interval 1. Raises :class:`GranularityCommandError` like :meth:`from_indices`
        (kind ``unknown_interval`` for an interval index outside the catalogue)."""
        idx = [int(i) for i in action]
        if len(idx) != n_layers + 3:
            return cls.from_indices(idx, n_layers)
        if not 0 <= idx[-1] < len(KEYFRAME_INTERVALS):
            raise GranularityCommandError(
                "unknown_interval",
                f"action: keyframe-interval index {idx[-1]}, known 0..{len(KEYFRAME_INTERVALS) - 1}",
            )
        return cls.from_indices(idx[:-1], n_layers).with_keyframe_interval(KEYFRAME_INTERVALS[idx[-1]])

    def short(self) -> str:
        """Compact human form, e.g. ``FFP5522/0.75/local``, or ``FFP5522/0.75/local/k3`` at keyframe interval 3."""
        text = "".join(LEVEL_SHORT[lv] for lv in self.levels) + f"/{self.resolution_scale:g}/{self.execution_target}"
        return text + (f"/k{self.keyframe_interval}" if self.keyframe_interval != 1 else "")

    def with_levels(self, levels: Sequence[str]) -> GranularityConfig:
        return GranularityConfig(tuple(levels), self.resolution_scale, self.execution_target, self.keyframe_interval)

    def with_keyframe_interval(self, interval: int) -> GranularityConfig:
        return GranularityConfig(self.levels, self.resolution_scale, self.execution_target, int(interval))

    def detector_config(self) -> GranularityConfig:
        """What the detector itself runs on a keyframe: this configuration at interval 1 (cost tables and the
        detector key on the network's knobs; the interval is the runtime's)."""
        return self.with_keyframe_interval(1) if self.keyframe_interval != 1 else self

    def __str__(self) -> str:
        return self.short()


def full_configuration(n_layers: int) -> GranularityConfig:
    """The reference configuration (of the shadow accuracy proxy and the accuracy tables): every layer ``full``,
    native resolution, local."""
    return GranularityConfig.uniform("full", n_layers)


def fallback_configuration(text: str, n_layers: int, default: str = "") -> GranularityConfig:
    """Perception's *fallback configuration*: what it runs while no valid command is in force (before the first,
    and when the policy falls silent for ``fallback_timeout_s``). From its short form (perception's
    ``fallback_configuration`` parameter); empty means the detector's ``default`` (its registry entry's, chosen
    from the measured tables: every layer ``full`` for the real SSD), else every layer at :data:`FALLBACK_LEVEL`,
    scale 1.0, local. Not the policy's safety override configuration (agra_ros.online.safety)."""
    if not text.strip():
        if default:
            return fallback_configuration(default, n_layers)
        return GranularityConfig.uniform(FALLBACK_LEVEL, n_layers)
    cfg = GranularityConfig.from_short(text)
    if cfg.n_layers != n_layers:
        raise GranularityError(
            f"fallback configuration {text!r} has {cfg.n_layers} layers, the detector has {n_layers}"
        )
    return cfg


def action_nvec(n_layers: int) -> list[int]:
    """Sizes of the categorical heads: one per layer, then scale, then target, then keyframe interval (a
    MultiDiscrete action, :meth:`GranularityConfig.to_action`)."""
    return [len(LEVELS)] * n_layers + [len(RESOLUTION_SCALES), len(EXECUTION_TARGETS), len(KEYFRAME_INTERVALS)]
