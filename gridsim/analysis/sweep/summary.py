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

__all__ = ["CCDF_FRACTIONS", "Accumulator"]

#: Blackout sizes (fractions of the untouched demand) at which the CCDF is reported.
CCDF_FRACTIONS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
_TOP = 10
_LOSS_EPS_MW = 1e-6


class Accumulator:
    """Figures of a sweep, gathered a chunk of rows at a time."""

    def __init__(self, system, settings, labels: list[str], total: int, base_demand_mw: float):
        self.system_name, self.settings, self.labels = system.name, settings, labels
        self.ratings = _ratings(system)
        self.total, self.base_demand_mw = total, base_demand_mw
        self.workers = 1
        self._position = {label: i for i, label in enumerate(labels)}
        self._mw: list[np.ndarray] = []
        self._customers: list[np.ndarray] = []
        self._depth: list[np.ndarray] = []
        self.harm_mw = np.zeros(len(labels))
        self.harm_count = np.zeros(len(labels), dtype=np.int64)
        self.harm_max_mw = np.zeros(len(labels))
        self.tripped = Counter()

    def add(self, columns: dict) -> None:
        mw = np.asarray(columns["mw_lost"], dtype=float)
        self._mw.append(mw)
        self._customers.append(np.asarray(columns["customers_out"], dtype=float))
        self._depth.append(np.asarray(columns["cascade_depth"], dtype=np.int64))
        for targets, lost in zip(columns["targets"], mw.tolist()):
            for label in targets:
                i = self._position[label]
                self.harm_mw[i] += lost
                self.harm_count[i] += 1
                if lost > self.harm_max_mw[i]:
                    self.harm_max_mw[i] = lost
        for tripped in columns["tripped"]:
            self.tripped.update(tripped)

    @property
    def done(self) -> int:
        return int(sum(len(m) for m in self._mw))

    def mw_lost(self) -> np.ndarray:
        return np.concatenate(self._mw) if self._mw else np.zeros(0)

    def summary(self) -> dict[str, Any]:
        """The sweep's figures, for ``summary.json`` and the printed summary."""
        mw = self.mw_lost()
        customers = np.concatenate(self._customers) if self._customers else np.zeros(0)
        depth = np.concatenate(self._depth) if self._depth else np.zeros(0, dtype=np.int64)
        n = len(mw)
        lossy = mw > _LOSS_EPS_MW
        out: dict[str, Any] = {
            "system": self.system_name,
            "targets": self.settings.targets,
            "k": self.settings.k,
            "mode": "monte-carlo" if self.settings.random is not None else "exhaustive",
            "seed": self.settings.seed if self.settings.random is not None else None,
            "engine": f"{self.settings.engine}-{self.settings.flow}",
            "workers": self.workers,
            "scenarios": n,
            "candidates": len(self.labels),
            "base_demand_mw": round(self.base_demand_mw, 3),
            "ratings": dict(self.ratings),
            "scenarios_with_load_lost": int(lossy.sum()),
            "scenarios_with_overload_trips": int((depth > 0).sum()),
            "max_cascade_depth": int(depth.max()) if n else 0,
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
