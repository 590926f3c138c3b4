"""Frequency-model parameters of a system: the ``[power.frequency]`` table of a manifest.

Read here, used by :mod:`gridsim.sim.frequency`. Defaults and their
sources are in docs/FORMATS.md ("Frequency").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gridsim.errors import InputError
from gridsim.io.ids import name_index, resolve_id
from gridsim.io.manifest import check_keys, line_of, manifest_number
from gridsim.io.numbers import finite_number, number_cell
from gridsim.io.tables import read_csv, sha256

__all__ = ["WECC_UFLS", "FrequencySettings", "Machine", "read_frequency_settings"]


@dataclass(frozen=True)
class Machine:
    """A synchronous source of the island before the event."""

    rating_mva: float
    inertia_s: float  # H, on the rating
    p_mw: float  # output before the event
    max_mw: float
    min_mw: float = 0.0


#: WECC coordinated off-nominal frequency load shedding plan: 5 blocks from 59.1 Hz to 58.3 Hz (60 Hz systems).
WECC_UFLS = ((59.1, 0.053), (58.9, 0.059), (58.7, 0.065), (58.5, 0.067), (58.3, 0.067))


@dataclass(frozen=True)
class FrequencySettings:
    """Parameters of the frequency model of a system (defaults: literature values, docs/FORMATS.md)."""

    nominal_hz: float = 60.0
    droop: float = 0.05  # 5 % speed droop
    governor_s: float = 5.0  # turbine-governor time constant (steam with reheat: several seconds)
    damping: float = 1.0  # % load change per % frequency change
    ufls: tuple[tuple[float, float], ...] = WECC_UFLS  # (Hz, share of the pre-event load), in falling order
    trip_below_hz: float = 57.5  # generators' under-frequency protection
    trip_above_hz: float = 61.8
    reconnect_min: float = 30.0  # operators reconnect feeders shed by the relays (assumption)
    duration_s: float = 60.0
    step_s: float = 0.01
    inertia_s: dict[int, float] = field(default_factory=dict)  # per generator index; others: default_inertia_s
    rating_mva: dict[int, float] = field(default_factory=dict)
    default_inertia_s: float = 4.0

    def scaled_to(self, nominal_hz: float) -> FrequencySettings:
        """The same settings for a system of another nominal frequency (thresholds scaled)."""
        k = nominal_hz / self.nominal_hz
        return dataclasses.replace(self, nominal_hz=nominal_hz, ufls=tuple((hz * k, share) for hz, share in self.ufls),
                                   trip_below_hz=self.trip_below_hz * k, trip_above_hz=self.trip_above_hz * k)


_KEYS = {"droop", "governor_s", "damping", "ufls", "trip_below_hz", "trip_above_hz", "default_inertia_s",
         "machines", "reconnect_min"}


def read_frequency_settings(cfg: dict, nominal_hz: float, net, base_dir: Path, where, raw,
                            input_files: dict[str, str]) -> FrequencySettings:
    """The ``[power.frequency]`` table, checked (thresholds in Hz of this system's ``frequency_hz``).

    ``machines`` names a CSV ``gen,rating_mva,inertia_s`` (pandapower generator
    index or name); generators it leaves out get ``default_inertia_s`` on their
    ``sn_mva`` (or ``max_p_mw``).
    """
    cfg = check_keys(cfg, _KEYS, "power.frequency", where, raw)
    defaults = FrequencySettings().scaled_to(nominal_hz)

    def setting(key: str, low: float, high: float) -> float:
        return manifest_number(cfg, key, getattr(defaults, key), "power.frequency", where, raw, minimum=low,
                               maximum=high)

    stages = _ufls(cfg, defaults, where, raw)
    rating, inertia = _machines(cfg.get("machines"), net, base_dir, where, raw, input_files)
    return FrequencySettings(
        nominal_hz=nominal_hz,
        droop=setting("droop", 0.005, 0.5),
        governor_s=setting("governor_s", 0.05, 120.0),
        damping=setting("damping", 0.0, 10.0),
        ufls=stages,
        trip_below_hz=setting("trip_below_hz", 0.5 * nominal_hz, nominal_hz),
        trip_above_hz=setting("trip_above_hz", nominal_hz, 1.5 * nominal_hz),
        default_inertia_s=setting("default_inertia_s", 0.1, 100.0),
        reconnect_min=setting("reconnect_min", 0.0, 10080.0),
        inertia_s=inertia,
        rating_mva=rating,
    )


def _ufls(cfg: dict, defaults: FrequencySettings, where, raw) -> tuple[tuple[float, float], ...]:
    """The load-shedding stages ``ufls``: [hz, share] pairs, in falling frequency, shares adding up to at most 1."""
    ufls = cfg.get("ufls", [list(stage) for stage in defaults.ufls])
    if (not isinstance(ufls, list) or not all(isinstance(st, list) and len(st) == 2 for st in ufls)
            or not all(finite_number(v) is not None for st in ufls for v in st)):
        raise InputError(where, "power.frequency.ufls must be a list of [hz, share of load] pairs",
                         line_of(raw, "ufls"))
    stages = tuple((float(hz), float(share)) for hz, share in ufls)
    if any(not 0 < share <= 1 for _, share in stages) or sum(share for _, share in stages) > 1 \
            or [hz for hz, _ in stages] != sorted((hz for hz, _ in stages), reverse=True):
        raise InputError(where, "power.frequency.ufls: stages in falling frequency, shares in (0, 1] adding up "
                                "to at most 1", line_of(raw, "ufls"))
    return stages


def _machines(machines, net, base_dir: Path, where, raw,
              input_files: dict[str, str]) -> tuple[dict[int, float], dict[int, float]]:
    """Rating (MVA) and inertia (s) per generator index from the ``machines`` table; empty without one."""
    rating: dict[int, float] = {}
    inertia: dict[int, float] = {}
    if machines is None:
        return rating, inertia
    if not isinstance(machines, str):
        raise InputError(where, "power.frequency.machines must be a file name", line_of(raw, "machines"))
    path = base_dir / machines
    if not path.is_file():
        raise InputError(path, "file not found (power.frequency.machines)")
    input_files[str(path)] = sha256(path)
    names, valid = name_index(net.gen), {int(i) for i in net.gen.index}
    for line, row in read_csv(path, ["gen", "rating_mva", "inertia_s"]):
        index = resolve_id(row["gen"], names, valid)
        if index is None:
            raise InputError(path, f"no generator {row['gen']!r} in the grid", f"line {line}")
        for column, table in (("rating_mva", rating), ("inertia_s", inertia)):
            table[index] = number_cell(row[column], column, path, f"line {line}", above=0.0)
    return rating, inertia
