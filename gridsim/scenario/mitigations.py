"""Mitigations: what would have helped, as changes to a system's parameters or to a scenario's steps.

Security teams ask what a defence is worth. A mitigation here is a named,
documented change made to copies of the system and the scenario before the
run, never to the files: ``gridsim case-study NAME --mitigate NAME`` runs the
case with and without it, side by side. Each says what it changed, or that it
does not apply to this case (then the run is not repeated).

The parameters are assumptions, stated in each description; the point is the
comparison, not the exact figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from gridsim.model.layers import Dependency
from gridsim.model.system import System
from gridsim.scenario.actions import ACTION_TYPES
from gridsim.scenario.schema import Scenario, Step

__all__ = ["MITIGATIONS", "Mitigation", "SPARE_INSTALL_H", "apply_mitigation"]

#: Hours from the firmware's destruction until spare devices are in (an assumption: technicians with converters
#: and RTU boards from the shelf, working apart from the switching crews).
SPARE_INSTALL_H = 2.0


@dataclass(frozen=True)
class Mitigation:
    """A named change to a system and a scenario: ``change(system, scenario) -> (system, scenario, what)``."""

    name: str
    description: str
    change: Callable[[System, Scenario], tuple[System, Scenario, str]]


def _manual_control_ready(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """Crews on standby for manual operation: 15 min a site, no wait for lost view, crews doubled."""
    def ready(params):
        return dataclasses.replace(params, manual_h=min(params.manual_h, 0.25), detect_blind_min=0.0,
                                   crews=params.crews * 2)

    changed = dataclasses.replace(
        system, restoration=ready(system.restoration),
        operator_restoration={op: ready(p) for op, p in system.operator_restoration.items()},
        substations={name: dataclasses.replace(site, manual_h=None) for name, site in system.substations.items()})
    return changed, scenario, ("manual switching 15 min a site, crews doubled, no delay for lost view "
                               "(every operator)")


def _spare_converters(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """Spares on the shelf: every device whose firmware was destroyed is replaced ``SPARE_INSTALL_H`` later.

    The ``destroy_firmware`` steps stay, bounded by the install time (a
    duration only a mitigated copy can give them): telecom devices (gateways,
    RTUs) come back, and so does the firmware of substations targeted
    directly. Remote control returns where nothing else denies it (a
    ``deny_control`` still running, a control centre down); jobs still waiting
    for a crew there are then switched remotely.
    """
    steps, swapped = [], 0
    note = f"spares installed after {SPARE_INSTALL_H:g} h (mitigation)"
    for step in scenario.steps:
        if step.action == "destroy_firmware" and step.duration_min is None:
            steps.append(dataclasses.replace(step, duration_min=60.0 * SPARE_INSTALL_H,
                                             note=f"{step.note}; {note}" if step.note else note))
            swapped += 1
        else:
            steps.append(step)
    if not swapped:
        return system, scenario, ""
    return system, dataclasses.replace(scenario, steps=tuple(steps)), (
        f"{swapped} firmware-destruction step(s): spare devices installed {SPARE_INSTALL_H:g} h later, remote control "
        f"back wherever nothing else denies it")


def _ups_intact(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """The attackers' UPS schedule is caught: every disable_backup step is dropped."""
    kept = tuple(s for s in scenario.steps if s.action != "disable_backup")
    dropped = len(scenario.steps) - len(kept)
    if not dropped:
        return system, scenario, ""
    return system, dataclasses.replace(scenario, steps=kept), f"{dropped} disable_backup step(s) dropped"


def _rewrite_dependencies(system: System, change: Callable[[Dependency], Dependency | None]) -> tuple[System, int]:
    """A copy of ``system`` with ``change`` applied to every dependency edge (None: unchanged); how many changed."""
    edges, changed = [], 0
    for edge in system.layers.dependencies:
        new = change(edge)
        edges.append(edge if new is None else new)
        changed += new is not None
    if not changed:
        return system, 0
    return dataclasses.replace(system, layers=dataclasses.replace(system.layers, dependencies=tuple(edges))), changed


def _backup_generators_at_pumps(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """A standby generator with 48 h of fuel at every pumping station and treatment plant."""
    def standby(edge: Dependency) -> Dependency | None:
        water = edge.dependent.startswith(("pump:", "reservoir:"))
        grid_fed = edge.supplier.startswith(("bus:", "substation:", "load:"))
        if water and grid_fed and edge.backup_h < 48.0:
            return dataclasses.replace(edge, backup_h=48.0, note="standby generator (mitigation)")
        return None

    changed, n = _rewrite_dependencies(system, standby)
    return changed, scenario, f"{n} pump/plant supplies get 48 h of standby generation" if n else ""


def _signal_batteries(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """Battery backup of at least 8 h at every signalised intersection."""
    def battery(edge: Dependency) -> Dependency | None:
        if edge.dependent.startswith("signal:") and edge.backup_h < 8.0:
            return dataclasses.replace(edge, backup_h=8.0)
        return None

    changed, n = _rewrite_dependencies(system, battery)
    return changed, scenario, f"{n} signals get 8 h batteries" if n else ""


def _critical_gas_feeders(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """Gas facilities registered as critical load: their feeders leave the shedding rotations."""
    def critical(edge: Dependency) -> Dependency | None:
        if edge.supplier.startswith("load:") and edge.dependent.startswith("facility:"):
            bus = int(system.net.load.at[int(edge.supplier.split(":", 1)[1]), "bus"])
            return dataclasses.replace(edge, supplier=f"bus:{bus}", note="critical load (mitigation)")
        return None

    changed, n = _rewrite_dependencies(system, critical)
    return changed, scenario, (f"{n} facility feeders exempt from shedding rotations (they follow their bus)"
                               if n else "")


def _physical(step: Step) -> bool:
    """Whether the step's action has a physical effect (the action table's word; ``access`` has none)."""
    return ACTION_TYPES[step.action].physical


def _detect_early(system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """The intrusion is found before the attack's first physical step: only the steps without one (access) remain."""
    kept = tuple(s for s in scenario.steps if not _physical(s))
    if len(kept) == len(scenario.steps):
        return system, scenario, ""
    first = min((s.at_min for s in scenario.steps if _physical(s)), default=0.0)
    return system, dataclasses.replace(scenario, steps=kept), (
        f"{len(scenario.steps) - len(kept)} step(s) from t = {first:g} min on never happen")


MITIGATIONS: dict[str, Mitigation] = {m.name: m for m in (
    Mitigation("manual-control-ready", "crews on standby for manual operation (15 min a site, twice the crews, "
               "no wait for lost view), as Ukrainian companies ran for months after 2015",
               _manual_control_ready),
    Mitigation("spare-converters", f"spare serial-to-Ethernet converters (and RTU boards) on the shelf: every device "
               f"whose firmware was destroyed is replaced {SPARE_INSTALL_H:g} h later, and remote control returns "
               f"where nothing else denies it", _spare_converters),
    Mitigation("ups-intact", "the control centres' UPS keep running (the attackers' UPS schedule is found)",
               _ups_intact),
    Mitigation("backup-generators-at-pumps", "a standby generator with 48 h of fuel at every pumping station "
               "and treatment plant", _backup_generators_at_pumps),
    Mitigation("signal-batteries", "at least 8 h of battery at every signalised intersection", _signal_batteries),
    Mitigation("critical-gas-feeders", "gas processing plants and compressors registered as critical load, out of "
               "the shedding rotations (a FERC-NERC 2021 recommendation)", _critical_gas_feeders),
    Mitigation("detect-early", "the intrusion is detected and the attack stopped before its first physical step",
               _detect_early),
)}


def apply_mitigation(name: str, system: System, scenario: Scenario) -> tuple[System, Scenario, str]:
    """Copies of ``system`` and ``scenario`` with the mitigation ``name`` applied, and what it changed ("" if
    it does not apply). Raises KeyError for an unknown name."""
    return MITIGATIONS[name].change(system, scenario)
