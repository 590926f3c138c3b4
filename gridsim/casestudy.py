"""Case studies: a bundled scenario of a real incident, run and set beside what was reported.

A *case study* is a bundled scenario with ``reported`` figures. Running one
gives, for every reported figure, the simulated one and whether it lies
within the tolerance the scenario declares; figures that were inputs of the
topology (``calibrated``) are shown and not counted. With mitigations, the
case is run again with each, and the headline figures are set side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridsim.bundled import bundled_dir
from gridsim.engine.simulation import simulate
from gridsim.errors import InputError
from gridsim.metrics import summarize
from gridsim.model.system import load_system
from gridsim.scenario.mitigations import MITIGATIONS, apply_mitigation
from gridsim.scenario.schema import load_scenario

__all__ = ["HEADLINE", "CaseStudy", "case_studies", "run_case_study"]

#: Figures compared across mitigations.
HEADLINE = ("peak_mw_lost", "peak_customers_out", "energy_not_served_mwh", "customer_hours_lost",
            "time_to_full_restoration_min")


@dataclass
class CaseStudy:
    """One case study's run: its summary, and each mitigation's summary and what it changed."""

    name: str
    description: str
    summary: dict[str, Any]
    mitigations: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)  # name -> (what, summary)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.summary["reported"].values())

    @property
    def judged(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["agrees"] is not None]

    @property
    def agrees(self) -> bool:
        return all(row["agrees"] for row in self.judged)


def case_studies() -> list[str]:
    """Names of the bundled scenarios that declare reported figures, in alphabetical order."""
    names = []
    for path in sorted(bundled_dir("attacks").glob("*.yaml")):
        if load_scenario(path).reported:
            names.append(path.stem)
    return names


def run_case_study(name: str, *, mitigations: tuple[str, ...] = (), mode: str = "dc", engine: str = "fast",
                   seed: int | None = None) -> CaseStudy:
    """Run the bundled case study ``name`` (and again with each mitigation).

    Raises
    ------
    InputError
        No bundled scenario of that name, one without reported figures, a
        scenario without a system, or an unknown mitigation.
    """
    path = bundled_dir("attacks") / f"{name}.yaml"
    if not path.is_file():
        raise InputError(name, f"no bundled case study of that name (known: {', '.join(case_studies())})")
    for mitigation in mitigations:
        if mitigation not in MITIGATIONS:
            raise InputError("--mitigate", f"unknown mitigation {mitigation!r} (known: {', '.join(MITIGATIONS)})")
    plan = load_scenario(path)
    if not plan.reported:
        raise InputError(path, "declares no reported figures: it is a scenario, not a case study "
                               "(run it with gridsim run)")
    if plan.system is None:
        raise InputError(path, "names no system")
    system = load_system(plan.system)
    study = CaseStudy(name, plan.description, summarize(simulate(system, plan, mode=mode, engine=engine,
                                                                  seed=seed)))
    for mitigation in mitigations:
        changed_system, changed_plan, what = apply_mitigation(mitigation, system, plan)
        summary = (summarize(simulate(changed_system, changed_plan, mode=mode, engine=engine, seed=seed))
                   if what else None)
        study.mitigations[mitigation] = (what, summary)
    return study
