"""The action table: every action a scenario step can take, declared once.

Each :class:`ActionType` in :data:`ACTION_TYPES` says what the action
targets, which step parameters it takes and needs (each parameter, with its
check and its default, is a :class:`Parameter` of :data:`PARAMETERS`), its
line of documentation, whether it has a physical effect, which grid elements
it takes out at one target, and how its effect is undone (a restoration kind
of :data:`RESTORATIONS`). As PyPSA's ``component_attrs`` tables do for its
attributes, this one table drives:

- the schema's checks of a step (:mod:`gridsim.scenario.schema`: the known
  actions, their target kinds, the keys a step may carry and their bounds);
- the Actions section of docs/FORMATS.md (:func:`actions_markdown`; the test
  tests/test_docs_actions.py fails when the page and the table differ);
- the sweep's candidates (:mod:`gridsim.analysis.sweep.scenarios` takes out
  at a substation, a branch or a generator what the action would);
- the mitigations that keep or drop steps by what they do;
- the clock's restoration: a crew kind here is a job there.

Where the effects live, and why
-------------------------------
An effect changes the clock's state (held elements, denied control, scaled
loads, the cause chain). The clock is in ``gridsim.sim``, above this room in
the import order, so a record here cannot hold a function of the clock
without importing it. The table declares; the clock implements:

- the restoration rule is data here (a word of :data:`RESTORATIONS`); the
  clock keeps one job builder per crew kind, the same builders its
  protection trips and frequency trips use, so who undoes an outage, and how,
  is written once;
- the effect is the entry of the same name in
  ``gridsim.sim.simulation.STEP_EFFECTS``: what the step does when it starts
  and, for the kind ``step-end``, what undoes it when its ``duration_min``
  ends. tests/test_actions.py fails on an action without an effect, an
  effect without an action, or an ``end`` where the kind says there is none.

A registry filled by the clock at import (a decorator on each effect) was the
other way; it was not taken because the table would then depend on what had
been imported, and what a scenario may say must not. One dict, checked
complete by a test, keeps the effects in the one place they can live.

Adding an action
----------------
1. A record in :data:`ACTION_TYPES`: the schema accepts the action at once,
   with its targets and parameters checked.
2. Its effect in ``gridsim.sim.simulation``: a method of the clock, named in
   the clock's ``EFFECTS`` dict (public as ``STEP_EFFECTS``), with an undo
   method if its restoration kind is ``step-end``.
3. The Actions table of docs/FORMATS.md, pasted from :func:`actions_markdown`
   (the docs test prints it when the page is out of date).

A new parameter is a :class:`Parameter` here and a field of
:class:`~gridsim.scenario.schema.Step`; a new crew restoration kind is a word
of :data:`RESTORATIONS` and a job builder in the clock's ``JOBS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridsim.io.numbers import requirement
from gridsim.model.elements import Ref, breakers_at

if TYPE_CHECKING:  # annotations only: importing the table (and the schema) does not load the system model
    from gridsim.model.system import System

__all__ = [
    "ACTION_TYPES",
    "ActionType",
    "KINDS",
    "LAYER_TARGET_KINDS",
    "MAX_FACTOR",
    "PARAMETERS",
    "Parameter",
    "RESTORATIONS",
    "actions_markdown",
    "takers",
]

#: Kinds of elements of the infrastructure layers a step may target (docs/FORMATS.md).
LAYER_TARGET_KINDS = ("pump", "reservoir", "signal", "rail", "telecom", "facility")
#: Every kind of element a step's ``targets`` may select.
KINDS = ("substation", "bus", "line", "trafo", "branch", "gen", "load", *LAYER_TARGET_KINDS)
_SITE_KINDS = ("substation",)

#: Largest demand multiplier of ``scale_loads``: far above any real surge, small enough that MW stay finite.
MAX_FACTOR = 1000.0

#: How an action's effect is undone: kind -> what the docs say. ``reclose-site``, ``reclose-branch`` and
#: ``restart-generator`` are crew jobs (the clock builds one a target once the step ends, or at once without
#: ``duration_min``); ``step-end`` is undone by the end of the step's ``duration_min``; ``none`` leaves nothing.
RESTORATIONS: dict[str, str] = {
    "none": "nothing to undo",
    "reclose-site": "a reclose job when the step ends (at once without `duration_min`): remote where control is "
                    "available, else a crew of the site's operator",
    "reclose-branch": "a reclose job when the step ends (at once without `duration_min`): remote where control is "
                      "available, else a crew",
    "restart-generator": "a restart `generator_restart_h` after the step ends (after the trip without "
                         "`duration_min`)",
    "step-end": "the end of `duration_min`; without one it lasts the whole run",
}
#: The docs' word for kind ``step-end`` on an action that takes no ``duration_min``: only a mitigation bounds it.
_WHOLE_RUN = "nothing: it lasts the whole run (only a mitigated copy of the scenario bounds it)"


@dataclass(frozen=True)
class Parameter:
    """A number a step may carry besides its time: its check, its default, and its words for errors and docs.

    ``refusal`` is the error for a step whose action does not take the
    parameter; it may name ``{key}``, ``{action}`` and ``{takers}`` (the
    actions that take it).
    """

    key: str
    meaning: str
    absent: str  # what leaving it out means, for the docs
    refusal: str
    default: float | None = None
    positive: bool = False
    maximum: float | None = None

    @property
    def allowed(self) -> str:
        """The numbers it accepts, in the words of the schema's errors."""
        return requirement(minimum=None if self.positive else 0, above=0 if self.positive else None,
                           maximum=self.maximum)


#: The step parameters, by key, in the order the schema checks them.
PARAMETERS: dict[str, Parameter] = {p.key: p for p in (
    Parameter("factor", "demand multiplier, e.g. 1.3", "required where taken",
              "{key} applies to {takers} only, not {action}", maximum=MAX_FACTOR),
    Parameter("duration_min", "minutes the action lasts",
              "switching actions last until restored; the others last the whole run",
              "{action} takes no {key} (its effect lasts the whole run)", positive=True),
)}


def _itself(system: System, ref: Ref) -> list[Ref]:
    """A branch or a generator targeted is what goes out."""
    return [ref]


def _site_breakers(system: System, ref: Ref) -> list[Ref]:
    """What opening the breakers at a substation (or at one bus) opens: every branch and bus-bus switch there."""
    if ref.table == "bus":
        return breakers_at(system.net, {int(ref.key)})
    return breakers_at(system.net, set(system.substations[str(ref.key)].buses))


@dataclass(frozen=True)
class ActionType:
    """One action a step can take: what it targets, what it carries, what it does and what undoes it.

    ``targets`` are the selector kinds it acts on (None: it takes no
    targets). ``takes`` are the keys of :data:`PARAMETERS` it accepts and
    ``needs`` those of them it requires. ``effect`` is its line in
    docs/FORMATS.md; ``restoration`` a kind of :data:`RESTORATIONS`.
    ``physical`` is False for an action with no physical effect (an intrusion
    stage). ``takes_out``, for an action that switches grid elements out,
    gives the elements out of service at one target.
    """

    name: str
    targets: tuple[str, ...] | None
    effect: str
    restoration: str
    takes: tuple[str, ...] = ("duration_min",)
    needs: tuple[str, ...] = ()
    physical: bool = True
    takes_out: Callable[[System, Ref], list[Ref]] | None = None


#: Every action, by name, in the order errors and docs list them.
ACTION_TYPES: dict[str, ActionType] = {a.name: a for a in (
    ActionType("access", None, "no physical effect; records an intrusion stage in the timeline", "none",
               takes=(), physical=False),
    ActionType("open_breakers", ("substation", "bus"),
               "every line, transformer (two- or three-winding) and closed bus-bus switch touching the site's buses "
               "is opened", "reclose-site", takes_out=_site_breakers),
    ActionType("trip_branches", ("line", "trafo", "branch"), "the branches are opened", "reclose-branch",
               takes_out=_itself),
    ActionType("trip_generators", ("gen",), "the generators are tripped (with `[power.frequency]`, the imbalance "
               "is a frequency event)", "restart-generator", takes_out=_itself),
    ActionType("scale_loads", ("load", "substation", "bus"), "demand multiplied by `factor`", "step-end",
               takes=("factor", "duration_min"), needs=("factor",)),
    ActionType("deny_control", _SITE_KINDS, "remote switching impossible: restoration there is manual", "step-end"),
    ActionType("deny_view", _SITE_KINDS, "operators blind: dispatch waits `detect_blind_min` more, control is lost "
               "too", "step-end"),
    ActionType("destroy_firmware", ("substation", "telecom"),
               "the site's remote-control devices are bricked for the rest of the run: manual only; a telecom target "
               "(an `rtu` or `gateway`, typically) is down for the rest of the run, with the effect its kind has "
               "(see `telecom.csv` kinds)", "step-end", takes=()),
    ActionType("disable", LAYER_TARGET_KINDS, "the layer elements are taken down, whatever their supplies: their "
               "dependents lose them as suppliers; no crew restores them (a disabled element comes back once the "
               "step ends and its requirements hold)", "step-end"),
    ActionType("disable_backup", LAYER_TARGET_KINDS, "the elements keep working, but their backup is off: a "
               "supplier lost fails them at once instead of after `backup_h`", "step-end"),
)}


def takers(key: str) -> list[str]:
    """The actions that take the parameter ``key``, in table order."""
    return [a.name for a in ACTION_TYPES.values() if key in a.takes]


def _parameters_cell(action: ActionType) -> str:
    if not action.takes:
        return "none"
    return ", ".join(f"`{key}`" + (" (required)" if key in action.needs else "") for key in action.takes)


def _undone_cell(action: ActionType) -> str:
    if action.restoration == "step-end" and "duration_min" not in action.takes:
        return _WHOLE_RUN
    return RESTORATIONS[action.restoration]


def actions_markdown() -> str:
    """The Actions and step-parameter tables of docs/FORMATS.md, as the table says them.

    tests/test_docs_actions.py compares the page with this text; paste it
    there when an action or a parameter changes.
    """
    rows = ["| action | targets | parameters | effect | undone by |", "|---|---|---|---|---|"]
    for action in ACTION_TYPES.values():
        targets = ", ".join(action.targets) if action.targets else "none"
        rows.append(f"| `{action.name}` | {targets} | {_parameters_cell(action)} | {action.effect} "
                    f"| {_undone_cell(action)} |")
    rows += ["", "| parameter | meaning | allowed | absent or null |", "|---|---|---|---|"]
    for param in sorted(PARAMETERS.values(), key=lambda p: p.key):
        rows.append(f"| `{param.key}` | {param.meaning} | {param.allowed} | {param.absent} |")
    return "\n".join(rows) + "\n"
