"""Cost and accuracy of granularity configurations, from the measured tables, fast enough for the simulator and
exhaustive enough for the oracle.

Both read the additive cost model (:class:`agra_ros.tables.files.CostTable`: a layer's entry depends on its
level, its input's width and the scale; the head overhead on the widest layer it reads) and the linear accuracy
model (:class:`agra_ros.tables.files.AccuracyModel`). The test suite checks both views against
``CostTable.frame_cost`` and ``AccuracyModel.predict``.

- :class:`ConfigModel` looks one configuration up per simulator step from per-layer Python lists, memoised by
  action (the simulator's hot path: a few microseconds).
- :class:`SearchSpace` expands the configuration space into flat arrays for the oracle's exact search. Two exact
  reductions keep it small: a level is dropped at a layer when another level *of the same width* (so nothing
  downstream changes) is no worse in latency, MACs and bytes at every input width and scale and no worse in accuracy
  (``partitioned`` against ``full`` when tiling buys no speed); then a configuration is dropped when changing one
  layer's level gives one that is no worse in all four and better in one (see :meth:`SearchSpace.candidates`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from agra_ros.granularity.levels import LEVEL_WIDTH, LEVELS, RESOLUTION_SCALES, WIDTHS
from agra_ros.tables.files import AccuracyModel, CostTable, TableError

MAX_SEARCH = 4_000_000
"""Largest reduced configuration space the oracle expands into arrays."""

_LEVEL_WIDTH_IDX = [WIDTHS.index(LEVEL_WIDTH[lv]) for lv in LEVELS]


def _nearest(values: tuple[float, ...], x: float) -> int:
    return int(np.argmin([abs(v - float(x)) for v in values]))


class ConfigModel:
    """Per-layer cost entries and accuracy coefficients of one detector on one device."""

    def __init__(self, cost: CostTable, accuracy: AccuracyModel) -> None:
        if tuple(accuracy.layer_names) != tuple(cost.layer_names):
            raise TableError(
                f"cost table layers {cost.layer_names} and accuracy model layers {accuracy.layer_names} differ"
            )
        self.cost_table = cost
        self.accuracy_model = accuracy
        self.layer_names = cost.layer_names
        self.n_layers = L = cost.n_layers
        n_lv, n_sc, n_w = len(LEVELS), len(RESOLUTION_SCALES), len(WIDTHS)
        pos = {n: i for i, n in enumerate(self.layer_names)}
        self.input_pos = [None if cost.input_from[n] is None else pos[cost.input_from[n]] for n in self.layer_names]
        self.head_pos = [pos[n] for n in cost.head_input_from]
        self.entries = np.full((L, n_lv, n_w, n_sc, 3), np.nan)
        for e in cost.data["entries"]:
            self.entries[
                pos[e["layer"]],
                LEVELS.index(e["level"]),
                _nearest(WIDTHS, e["in_width"]),
                _nearest(RESOLUTION_SCALES, e["scale"]),
            ] = (e["latency_ms"] / 1e3, e["macs"], e["bytes"])
        self.overhead = np.full((n_sc, n_w, 3), np.nan)
        for e in cost.data["overhead"]:
            self.overhead[_nearest(RESOLUTION_SCALES, e["scale"]), _nearest(WIDTHS, e["in_width"])] = (
                e["latency_ms"] / 1e3,
                e["macs"],
                e["bytes"],
            )
        self.acc_intercept = float(accuracy.intercept)
        self.acc_scale = np.array([accuracy.scale.get(f"{s:g}", 0.0) for s in RESOLUTION_SCALES])
        self.acc_level = np.array([[accuracy.layer_level[n].get(lv, 0.0) for lv in LEVELS] for n in self.layer_names])
        self._entries_list = self.entries.tolist()
        self._overhead_list = self.overhead.tolist()
        self._acc_level_list = self.acc_level.tolist()
        self._acc_scale_list = self.acc_scale.tolist()
        self.acc_link = accuracy.link
        """The accuracy model's form, applied to the summed terms (monotone increasing, so orderings hold)."""
        self._cache: dict[tuple[int, ...], tuple[float, float, float, float]] = {}
        full = self.lookup((0,) * L + (0,))
        self.accuracy_full = full[3]
        if self.accuracy_full <= 0:
            raise TableError("accuracy model predicts 0 for the full configuration; cannot normalise accuracy")
        self.full = full

    def lookup(self, key: tuple[int, ...]) -> tuple[float, float, float, float]:
        """(latency_s, macs, bytes, accuracy) of (level indices..., scale index), memoised."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        L = self.n_layers
        s = key[L]
        lat = macs = byt = 0.0
        acc = self.acc_intercept + self._acc_scale_list[s]
        for i in range(L):
            lv = key[i]
            src = self.input_pos[i]
            in_w = 0 if src is None else _LEVEL_WIDTH_IDX[key[src]]
            row = self._entries_list[i][lv][in_w][s]
            lat += row[0]
            macs += row[1]
            byt += row[2]
            acc += self._acc_level_list[i][lv]
        head_w = min(_LEVEL_WIDTH_IDX[key[j]] for j in self.head_pos)
        row = self._overhead_list[s][head_w]
        out = (lat + row[0], macs + row[1], byt + row[2], min(1.0, max(0.0, float(self.acc_link(acc)))))
        if any(v != v for v in out):
            raise TableError(f"the cost table misses an entry configuration {key} needs")
        self._cache[key] = out
        return out

    def effective_levels(self) -> list[list[int]]:
        """Per layer, the level indices not dominated by another level of the same width (exact reduction)."""
        out = []
        for i in range(self.n_layers):
            keep = []
            for lv in range(len(LEVELS)):
                dominated = False
                for other in range(len(LEVELS)):
                    if other == lv or _LEVEL_WIDTH_IDX[other] != _LEVEL_WIDTH_IDX[lv]:
                        continue
                    a, b = self.entries[i, other], self.entries[i, lv]
                    measured = np.isfinite(a) & np.isfinite(b)  # e.g. the first layer only has in_width 1.0
                    ok = bool(measured.any()) and np.array_equal(np.isfinite(a), np.isfinite(b))
                    le = ok and np.all(a[measured] <= b[measured]) and self.acc_level[i, other] >= self.acc_level[i, lv]
                    eq = (
                        ok
                        and np.all(a[measured] == b[measured])
                        and (self.acc_level[i, other] == self.acc_level[i, lv])
                    )
                    if le and (not eq or other < lv):
                        dominated = True
                if not dominated:
                    keep.append(lv)
            out.append(keep)
        return out


class SearchSpace:
    """Flat arrays over the reduced configuration space (levels per :meth:`ConfigModel.effective_levels`)."""

    def __init__(self, model: ConfigModel) -> None:
        self.model = model
        L = model.n_layers
        self.choices = model.effective_levels() + [list(range(len(RESOLUTION_SCALES)))]
        sizes = [len(c) for c in self.choices]
        self.size = int(np.prod(sizes))
        if self.size > MAX_SEARCH:
            raise TableError(f"reduced configuration space has {self.size} configurations, over {MAX_SEARCH}")
        grid = np.indices(sizes, dtype=np.int8).reshape(L + 1, -1).T
        self.keys = np.stack([np.asarray(c, dtype=np.int8)[grid[:, j]] for j, c in enumerate(self.choices)], 1)
        lv = self.keys[:, :L].astype(np.int64)
        sc = self.keys[:, L].astype(np.int64)
        width = np.asarray(_LEVEL_WIDTH_IDX)[lv]
        totals = np.zeros((self.size, 3))
        for i in range(L):
            src = model.input_pos[i]
            in_w = np.zeros(self.size, dtype=np.int64) if src is None else width[:, src]
            totals += model.entries[i, lv[:, i], in_w, sc]
        totals += model.overhead[sc, width[:, model.head_pos].min(axis=1)]
        if np.isnan(totals).any():
            raise TableError("the cost table misses entries some configurations need")
        self.latency_s, self.macs, self.bytes = totals[:, 0].copy(), totals[:, 1].copy(), totals[:, 2].copy()
        acc = model.acc_intercept + model.acc_scale[sc]
        for i in range(L):
            acc = acc + model.acc_level[i, lv[:, i]]
        self.accuracy = np.clip(model.acc_link(acc), 0.0, 1.0)
        self.scale_index = sc
        self.strides = np.array([int(np.prod(sizes[j + 1 :])) for j in range(L + 1)], dtype=np.int64)
        self.position = [{lvl: k for k, lvl in enumerate(c)} for c in self.choices]
        self._candidates: np.ndarray | None = None

    def candidates(self) -> np.ndarray:
        """Rows that survive exact neighbour-dominance pruning.

        A configuration is dropped when changing one layer's level gives another configuration that is no worse in
        latency, MACs, bytes and accuracy and strictly better in one (ties: the lower row is kept). A reward that
        never improves with more latency, MACs or bytes nor with less accuracy has its maximum among the survivors.
        """
        if self._candidates is not None:
            return self._candidates
        keep = np.ones(self.size, dtype=bool)
        rows = np.arange(self.size, dtype=np.int64)
        lat, macs, byt, acc = self.latency_s, self.macs, self.bytes, self.accuracy
        sizes = [len(c) for c in self.choices]
        digits = (rows[:, None] // self.strides[None, :]) % np.asarray(sizes)[None, :]
        for i in range(self.model.n_layers):
            for k in range(sizes[i]):
                other = rows + (k - digits[:, i]) * self.strides[i]
                differs = digits[:, i] != k
                le = (lat[other] <= lat) & (macs[other] <= macs) & (byt[other] <= byt) & (acc[other] >= acc)
                strict = (lat[other] < lat) | (macs[other] < macs) | (byt[other] < byt) | (acc[other] > acc)
                keep &= ~(differs & le & (strict | (other < rows)))
        self._candidates = np.flatnonzero(keep)
        return self._candidates

    def action(self, row: int, target_index: int) -> np.ndarray:
        """The MultiDiscrete action of a row and an execution-target index."""
        return np.concatenate([self.keys[row].astype(np.int64), [target_index]])


@lru_cache(maxsize=4)
def load_config_model(cost_path: str | Path, accuracy_path: str | Path) -> ConfigModel:
    """Shared, cached :class:`ConfigModel` for a pair of table files (every simulator instance reuses it)."""
    return ConfigModel(CostTable.load(cost_path), AccuracyModel.load(accuracy_path))


_SEARCH: dict[int, SearchSpace] = {}


def search_space(model: ConfigModel) -> SearchSpace:
    """The (cached) :class:`SearchSpace` of ``model``."""
    key = id(model)
    if key not in _SEARCH:
        _SEARCH[key] = SearchSpace(model)
    return _SEARCH[key]
