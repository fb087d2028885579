"""The accuracy model learns the live scene: the shipped table's prediction, corrected by what perception measures.

The shipped accuracy model was fitted on the package's own clips; on a camera nobody trained on, the slim levels
can keep far less than it predicts. Perception measures the truth on a share of frames (the shadow agreement with
the full configuration, calibrated onto the table's scale by :func:`~agra_ros.core.reward.calibrated_accuracy_ratio`).
This module keeps, per *cell* of similar configurations (mean layer width in quarters x resolution scale), the
residual of those measurements against the table, shrunk toward the pooled residual of every cell and that toward
zero (the table) while there are few measurements, and forgetting old ones (a scene changes). The prediction is
the table's plus the cell's residual.

:meth:`LiveAccuracy.guard` is the mask the policy node applies. The policy decides with the table's accuracy (its
training), trading accuracy for rate where the target demands it; the mask keeps the table's promise on this
scene: a decided configuration whose live prediction is under what the policy was promised, the table's figure
capped at the floor, is replaced by the cheapest configuration of the table's frontier that the live model
predicts at or above it (the full configuration when none is). Where the table holds (in domain) the mask stays
out of the way; where it over-rates the slim levels, the robot gets the accuracy the policy chose.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES, GranularityConfig
from agra_ros.tables.search import ConfigModel, search_space

_WIDTH_OF_LEVEL = np.array([LEVEL_WIDTH[lv] for lv in LEVELS])


FOOTAGE_ROW_WEIGHT = 5.0
"""Shadow measurements one row of an installed footage table counts as (a row averages the whole footage)."""

GUARD_MODES: tuple[str, ...] = ("table", "floor")
"""What the mask keeps: the table's promise for the decided configuration (capped at the floor), or the floor."""


def _cell(mean_width: float, scale_index: int) -> tuple[int, int]:
    return int(round(mean_width * 4)), int(scale_index)


class LiveAccuracy:
    """Live accuracy ratio (share of the full configuration's accuracy) per configuration on this robot's scene."""

    def __init__(self, model: ConfigModel, prior_weight: float = 6.0, memory: float = 0.98) -> None:
        if not prior_weight > 0 or not 0 < memory <= 1:
            raise ValueError("prior_weight > 0 and 0 < memory <= 1 are required")
        self.model = model
        self.prior_weight = float(prior_weight)
        self.memory = float(memory)
        self._cells: dict[tuple[int, int], list[float]] = {}  # cell -> [decayed residual sum, decayed count]
        self._pool = [0.0, 0.0]
        self.observations = 0
        self._space = None

    # ------------------------------------------------------------------ the table's view
    def prior(self, config: GranularityConfig) -> float:
        """The shipped model's accuracy ratio of ``config``."""
        key = tuple(config.to_indices()[: config.n_layers + 1])
        return float(self.model.lookup(key)[3] / self.model.accuracy_full)

    @staticmethod
    def _config_cell(config: GranularityConfig) -> tuple[int, int]:
        return _cell(float(np.mean(config.widths())), RESOLUTION_SCALES.index(config.resolution_scale))

    # ------------------------------------------------------------------ learning
    def observe(self, config: GranularityConfig, measured_ratio: float, weight: float = 1.0) -> None:
        """One shadow measurement of ``config`` (calibrated ratio), counted ``weight`` times (a footage table's row
        averages many frames); non-finite values are ignored."""
        if not math.isfinite(measured_ratio) or not weight > 0:
            return
        residual = float(measured_ratio) - self.prior(config)
        for stats in (*self._cells.values(), self._pool):
            stats[0] *= self.memory
            stats[1] *= self.memory
        cell = self._cells.setdefault(self._config_cell(config), [0.0, 0.0])
        cell[0] += weight * residual
        cell[1] += weight
        self._pool[0] += weight * residual
        self._pool[1] += weight
        self.observations += 1

    def seed(self, rows: list[tuple[GranularityConfig, float]], weight: float = FOOTAGE_ROW_WEIGHT) -> int:
        """Start from a footage table of this robot's camera (``agra-ros evaluate-footage --install``): each
        interval-1 row of this detector's layer count is an observation worth ``weight`` shadow measurements (later
        shadow measurements fade it as they fade each other). Returns the rows used."""
        used = 0
        for config, agreement in rows:
            if config.n_layers == self.model.n_layers and config.keyframe_interval == 1:
                self.observe(config, agreement, weight)
                used += 1
        return used

    def pooled_residual(self) -> float:
        """Every cell's residual together, shrunk toward 0 (the table) with ``prior_weight`` pseudo-measurements."""
        return self._pool[0] / (self._pool[1] + self.prior_weight)

    def residual(self, cell: tuple[int, int]) -> float:
        """A cell's residual, shrunk toward the pooled one with ``prior_weight`` pseudo-measurements."""
        s, n = self._cells.get(cell, (0.0, 0.0))
        return (s + self.prior_weight * self.pooled_residual()) / (n + self.prior_weight)

    def predict(self, config: GranularityConfig) -> float:
        return float(min(1.0, max(0.0, self.prior(config) + self.residual(self._config_cell(config)))))

    # ------------------------------------------------------------------ the mask
    def guard(
        self, config: GranularityConfig, floor: float, mode: str = "table", tolerance: float = 0.02
    ) -> tuple[GranularityConfig, bool]:
        """``config`` when its live prediction keeps what is asked, less ``tolerance``: in mode ``table`` the
        table's figure for it capped at ``floor`` (the policy's own trade-off stands, the scene must not make it
        worse), in mode ``floor`` the floor itself (a hard floor). Else the cheapest frontier configuration
        predicted to keep it (same execution target and keyframe interval), or the full configuration. Returns
        (config, replaced)."""
        if mode not in GUARD_MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(GUARD_MODES)}")
        want = float(floor) if mode == "floor" else min(float(floor), self.prior(config))
        if self.observations == 0 or self.predict(config) >= want - tolerance:
            return config, False
        if self._space is None:
            self._space = search_space(self.model)
        space = self._space
        rows = space.candidates()
        n = self.model.n_layers
        keys = space.keys[rows].astype(np.int64)
        widths = _WIDTH_OF_LEVEL[keys[:, :n]].mean(axis=1)
        residuals = np.array([self.residual(_cell(w, s)) for w, s in zip(widths, keys[:, n])])
        live = np.clip(space.accuracy[rows] / self.model.accuracy_full + residuals, 0.0, 1.0)
        ok = np.flatnonzero(live >= want)
        if ok.size:
            best = rows[ok[np.argmin(space.latency_s[rows][ok])]]
            levels = tuple(LEVELS[i] for i in space.keys[best][:n])
            scale = RESOLUTION_SCALES[int(space.keys[best][n])]
        else:
            levels, scale = ("full",) * n, 1.0
        out = GranularityConfig(levels, scale, config.execution_target, config.keyframe_interval)
        return out, out != config


def read_footage_table(path: str | Path) -> list[tuple[GranularityConfig, float]]:
    """(configuration, agreement) rows of a ``footage_eval.csv`` (``agra-ros evaluate-footage``); ValueError naming
    the file when it is unreadable or has no usable row (rows with a NaN agreement are skipped)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"configuration", "agreement"} <= set(reader.fieldnames):
                raise ValueError("not a footage table (needs the columns configuration and agreement)")
            rows = []
            for line in reader:
                value = float(line["agreement"])
                if math.isfinite(value):
                    rows.append((GranularityConfig.from_short(line["configuration"]), min(1.0, max(0.0, value))))
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read the footage table ({exc})") from None
    except ValueError as exc:  # a bad number or configuration: say which file
        raise ValueError(f"{path}: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: the footage table has no row with a measured agreement")
    return rows
