"""What a sweep found: the distribution of blackout sizes and the elements whose loss does the most harm.

Pure bookkeeping over the rows of :mod:`gridsim.analysis.sweep.runner`: the MW and
customers lost by every scenario (kept, a float each, for percentiles and
the complementary cumulative distribution), and per candidate the sum, count
and worst of the MW lost by the scenarios that take it out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridsim.results.sweep import rows_table

__all__ = ["CCDF_FRACTIONS", "Accumulator"]

#: Blackout sizes (fractions of the untouched demand) at which the CCDF is reported.
CCDF_FRACTIONS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
_TOP = 10
_LOSS_EPS_MW = 1e-6


class Accumulator:
    """Figures of a sweep, gathered a table of rows at a time (a chunk's, or a stored part's).

    Kept per row: the MW and customers lost (for percentiles and the CCDF,
    16 bytes a row); per candidate, the sum, count and worst of the MW lost
    by the scenarios that take it out. The sums are added one row at a time
    in scenario order (``numpy.add.at``), so the figures are the same bytes
    whether the rows came in chunks of a run or in the parts of a store.
    """

    def __init__(self, system_name: str, settings: dict[str, Any], labels: list[str], total: int,
                 base_demand_mw: float, ratings: dict[str, int]):
        self.system_name, self.settings, self.labels = system_name, settings, labels
        self.ratings = ratings
        self.total, self.base_demand_mw = total, base_demand_mw
        self.workers = 1
        self._labels = pa.array(labels, type=pa.string())
        self._mw: list[np.ndarray] = []
        self._customers: list[np.ndarray] = []
        self.with_trips = 0
        self.max_depth = 0
        self.harm_mw = np.zeros(len(labels))
        self.harm_count = np.zeros(len(labels), dtype=np.int64)
        self.harm_max_mw = np.zeros(len(labels))
        self.tripped = Counter()

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Accumulator:
        """An empty accumulator of the sweep a store's manifest describes."""
        system = manifest["inputs"]["system"]
        notes = system.get("ratings_set_by_gridsim") or {}
        ratings = {"branches": int(system.get("line_ratings", 0)) + int(system.get("trafo_ratings", 0)),
                   "derived": int(notes.get("derived", 0)), "raised": int(notes.get("raised", 0))}
        return cls(system["name"], manifest["settings"], manifest["labels"], manifest["scenarios"],
                   manifest["base_demand_mw"], ratings)

    @classmethod
    def of_system(cls, system, settings: dict[str, Any], labels: list[str], total: int,
                  base_demand_mw: float) -> Accumulator:
        """An empty accumulator of a sweep of ``system`` run in this process."""
        return cls(system.name, settings, labels, total, base_demand_mw, _ratings(system))

    def add(self, rows: pa.Table | dict) -> None:
        """Take in a table of rows (:data:`gridsim.results.sweep.SCHEMA`), or a chunk's columns as a dict."""
        table = rows if isinstance(rows, pa.Table) else rows_table(rows)
        mw = table["mw_lost"].to_numpy()
        self._mw.append(mw)
        self._customers.append(table["customers_out"].to_numpy())
        depth = table["cascade_depth"].to_numpy()
        self.with_trips += int((depth > 0).sum())
        self.max_depth = max(self.max_depth, int(depth.max()) if len(depth) else 0)
        targets = table["targets"].combine_chunks()
        positions = pc.index_in(pc.list_flatten(targets), value_set=self._labels).to_numpy(zero_copy_only=False)
        if len(positions) and np.isnan(positions.astype(float)).any():
            raise ValueError("a row names a target that is not one of the sweep's candidates")
        positions = positions.astype(np.int64)
        lost = mw[pc.list_parent_indices(targets).to_numpy()]
        np.add.at(self.harm_mw, positions, lost)
        self.harm_count += np.bincount(positions, minlength=len(self.labels))
        np.maximum.at(self.harm_max_mw, positions, lost)
        tripped = pc.list_flatten(table["tripped"].combine_chunks())
        if len(tripped):
            counts = pc.value_counts(tripped)
            self.tripped.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))

    @property
    def done(self) -> int:
        return int(sum(len(m) for m in self._mw))

    def mw_lost(self) -> np.ndarray:
        return np.concatenate(self._mw) if self._mw else np.zeros(0)

    def summary(self) -> dict[str, Any]:
        """The sweep's figures, for ``summary.json`` and the printed summary."""
        mw = self.mw_lost()
        customers = np.concatenate(self._customers) if self._customers else np.zeros(0)
        n = len(mw)
        lossy = mw > _LOSS_EPS_MW
        out: dict[str, Any] = {
            "system": self.system_name,
            "targets": self.settings["targets"],
            "k": self.settings["k"],
            "mode": "monte-carlo" if self.settings["random"] is not None else "exhaustive",
            "seed": self.settings["seed"] if self.settings["random"] is not None else None,
            "engine": f"{self.settings['engine']}-{self.settings['flow']}",
            "workers": self.workers,
            "scenarios": n,
            "candidates": len(self.labels),
            "base_demand_mw": round(self.base_demand_mw, 3),
            "ratings": dict(self.ratings),
            "scenarios_with_load_lost": int(lossy.sum()),
            "scenarios_with_overload_trips": self.with_trips,
            "max_cascade_depth": self.max_depth,
            "mw_lost": _percentiles(mw),
            "customers_out": _percentiles(customers),
            "ccdf": [{"fraction_of_demand": f, "mw": round(f * self.base_demand_mw, 3),
                      "probability": round(float((mw >= f * self.base_demand_mw - _LOSS_EPS_MW).mean()), 6)
                      if n else 0.0}
                     for f in CCDF_FRACTIONS],
            "most_harmful": self._ranking(),
            "most_tripped": [{"element": e, "scenarios": c} for e, c in self.tripped.most_common(_TOP)],
        }
        return out

    def _ranking(self) -> list[dict[str, Any]]:
        seen = self.harm_count > 0
        mean = np.divide(self.harm_mw, self.harm_count, out=np.zeros_like(self.harm_mw), where=seen)
        order = np.lexsort((np.arange(len(mean)), -self.harm_max_mw, -mean))
        return [{"element": self.labels[i], "mean_mw_lost": round(float(mean[i]), 3),
                 "max_mw_lost": round(float(self.harm_max_mw[i]), 3), "scenarios": int(self.harm_count[i])}
                for i in order[:_TOP] if seen[i] and mean[i] > _LOSS_EPS_MW]

    def ccdf_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted positive losses (MW) and P(loss >= x) at each: the points of the CCDF plot."""
        mw = np.sort(self.mw_lost())
        positive = mw[mw > _LOSS_EPS_MW]
        if not len(mw) or not len(positive):
            return np.zeros(0), np.zeros(0)
        probability = 1.0 - np.searchsorted(mw, positive, side="left") / len(mw)
        return positive, probability


def _ratings(system) -> dict[str, int]:
    """How many branch ratings gridsim set rather than read (``System.rating_notes``), out of how many.

    A sweep over derived ratings (``(1 + rating_margin) x`` the base-case
    flow) measures that rule rather than the grid's protection: the summary
    says so, with these counts.
    """
    notes = getattr(system, "rating_notes", None) or {}
    branches = len(getattr(system, "line_rating_mva", ())) + len(getattr(system, "trafo_rating_mva", ()))
    return {"branches": int(branches), "derived": int(notes.get("derived", 0)), "raised": int(notes.get("raised", 0))}


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"mean": round(float(values.mean()), 3), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(values.max()), 3)}
