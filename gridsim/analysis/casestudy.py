"""Case studies: a bundled scenario of a real incident, run and set beside what was reported.

A *case study* is a bundled scenario with ``reported`` figures. Running one
gives, for every reported figure, the simulated one and whether it lies
within the tolerance the scenario declares; figures that were inputs of the
topology (``calibrated``) are shown and not counted. With mitigations, the
case is run again with each, and the headline figures are set side by side,
with which of them moved and by how much; when none moved, why, where the
run can tell (restoration that stays manual, and what keeps remote control
away).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridsim.bundled import bundled_dir
from gridsim.errors import InputError
from gridsim.loading import load_system
from gridsim.metrics import summarize
from gridsim.scenario.mitigations import MITIGATIONS, apply_mitigation
from gridsim.scenario.schema import load_scenario
from gridsim.sim.simulation import simulate

__all__ = ["HEADLINE", "CaseStudy", "MitigationRun", "case_studies", "figures_moved", "run_case_study",
           "why_unchanged"]

#: Figures compared across mitigations.
HEADLINE = ("peak_mw_lost", "peak_customers_out", "energy_not_served_mwh", "customer_hours_lost",
            "time_to_full_restoration_min")


@dataclass
class MitigationRun:
    """One mitigation of a case study: what it changed, the run with it, what moved, and why not.

    ``summary`` is None when the mitigation does not apply (``changed`` is
    ""); ``moved`` maps each headline figure that changed to ``without``,
    ``with`` and ``change``; ``unchanged_because`` says, when none did, what
    the run shows kept them (empty if it cannot tell).
    """

    changed: str
    summary: dict[str, Any] | None
    moved: dict[str, dict[str, float | None]] = field(default_factory=dict)
    unchanged_because: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "moved": self.moved, "unchanged_because": self.unchanged_because,
                "summary": self.summary}


@dataclass
class CaseStudy:
    """One case study's run: its summary, and each mitigation's run."""

    name: str
    description: str
    summary: dict[str, Any]
    mitigations: dict[str, MitigationRun] = field(default_factory=dict)

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


def run_case_study(name: str, *, mitigations: tuple[str, ...] = (), flow: str = "dc", engine: str = "fast",
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
    study = CaseStudy(name, plan.description, summarize(simulate(system, plan, flow=flow, engine=engine,
                                                                  seed=seed)))
    for mitigation in mitigations:
        changed_system, changed_plan, what = apply_mitigation(mitigation, system, plan)
        if not what:
            study.mitigations[mitigation] = MitigationRun(what, None)
            continue
        summary = summarize(simulate(changed_system, changed_plan, flow=flow, engine=engine, seed=seed))
        moved = figures_moved(study.summary, summary)
        study.mitigations[mitigation] = MitigationRun(what, summary, moved, "" if moved else why_unchanged(summary))
    return study


def figures_moved(without: dict[str, Any], with_: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The headline figures that differ between two summaries: without, with and the change (None if n/a)."""
    moved = {}
    for measure in HEADLINE:
        before, after = without.get(measure), with_.get(measure)
        if before == after:
            continue
        change = round(after - before, 3) if before is not None and after is not None else None
        moved[measure] = {"without": before, "with": after, "change": change}
    return moved


def why_unchanged(summary: dict[str, Any]) -> str:
    """What a run shows kept its headline figures where they were: manual restoration and its causes.

    Restoration by hand sets every headline figure here; the run knows how
    many restorations were manual and, per reason, how many sites still lack
    remote control at the end. "" when the restoration was not manual.
    """
    by_cause = summary.get("restorations_by_cause", {})
    manual = by_cause.get("restored-manual", 0)
    if not manual:
        return ""
    text = f"restoration stays manual ({manual} of {sum(by_cause.values())} restorations by hand)"
    lost = summary.get("control", {}).get("without_remote_control_at_end", {})
    if lost:
        text += ("; remote control is still lost at the end: "
                 + ", ".join(f"{reason} at {n} site{'s' if n != 1 else ''}" for reason, n in lost.items()))
    return text
