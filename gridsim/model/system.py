"""A system: one power grid with its substations, customers, restoration rules and layers.

A system is read from ``topologies/<name>/system.toml`` (see docs/FORMATS.md) or
named bare as ``pandapower:<case>``. Everything is checked when it loads, so
the engine can trust it: every bus a substation names exists, every load has
customers, every branch has a rating.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gridsim.bundled import bundled_dir
from gridsim.errors import InputError
from gridsim.io.ids import name_index, resolve_id
from gridsim.io.manifest import check_keys, line_of, manifest_number
from gridsim.io.numbers import number_cell, shown
from gridsim.io.tables import optional_float, parse_tag, read_csv, sha256
from gridsim.model.dynamics import FrequencySettings, read_frequency_settings
from gridsim.model.grid import is_stock, normalise_net, read_grid
from gridsim.model.layers import Layers, load_layers
from gridsim.model.netcheck import check_net, dark_loads, net_notes

__all__ = [
    "BUNDLED_TOPOLOGIES",
    "RestorationParams",
    "Substation",
    "System",
    "RateBranches",
    "check_net",
    "read_system",
    "system_on_net",
]

#: Folder of the topologies shipped with gridsim (the repo's ``topologies/``).
BUNDLED_TOPOLOGIES = bundled_dir("topologies")

#: How a loader rates branches: ``rate(net, unrated=, margin=, tolerance=, base_overloads=)`` gives line and
#: transformer ratings (MVA) and counts of the ratings it set (:func:`gridsim.power.ratings.branch_ratings`).
RateBranches = Callable[..., tuple[np.ndarray, np.ndarray, dict[str, int]]]


@dataclass(frozen=True)
class RestorationParams:
    """How an operator restores switching it lost (one set per operator)."""

    remote_min: float = 5.0
    manual_h: float = 1.0
    crews: int = 4
    detect_blind_min: float = 30.0
    max_reclose: int = 2
    generator_restart_h: float = 4.0


@dataclass(frozen=True)
class Substation:
    """A named group of buses switched together, with free-form tags."""

    name: str
    buses: tuple[int, ...]
    tags: Mapping[str, Any] = field(default_factory=dict)
    manual_h: float | None = None
    remote_min: float | None = None

    @property
    def operator(self) -> str:
        return str(self.tags.get("operator", "default"))


@dataclass
class System:
    """What exists: the power net and everything gridsim knows around it.

    The net is never modified after loading; engines work on their own copies.
    Arrays indexed "per load" follow ``net.load.index`` order.
    """

    name: str
    net: Any
    substations: dict[str, Substation]
    customers: np.ndarray
    people_per_customer: float
    overload_tolerance: float
    line_rating_mva: np.ndarray
    trafo_rating_mva: np.ndarray
    restoration: RestorationParams
    operator_restoration: dict[str, RestorationParams]
    description: str = ""
    references: tuple[str, ...] = ()
    source: str = ""
    input_files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    rating_notes: dict[str, int] = field(default_factory=dict)  # ratings gridsim derived or raised
    bus_site: dict[int, str] = field(default_factory=dict)
    layers: Layers = field(default_factory=Layers)
    frequency: FrequencySettings | None = None  # the frequency model, if the manifest has [power.frequency]
    #: What gridsim changed or noticed while loading the grid (impedances read as transformers ...), for show and run.
    load_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.bus_site = {b: s.name for s in self.substations.values() for b in s.buses}

    def restoration_for(self, site: str) -> RestorationParams:
        """Restoration parameters at one site: operator overrides, then site overrides."""
        sub = self.substations[site]
        params = self.operator_restoration.get(sub.operator, self.restoration)
        if sub.manual_h is not None:
            params = replace(params, manual_h=sub.manual_h)
        if sub.remote_min is not None:
            params = replace(params, remote_min=sub.remote_min)
        return params

    def site_of_bus(self, bus: int) -> str:
        return self.bus_site[int(bus)]

    @property
    def load_site(self) -> list[str]:
        """Site name of every load, in ``net.load.index`` order."""
        return [self.bus_site[int(b)] for b in self.net.load.bus.to_numpy()]

    @property
    def base_demand_mw(self) -> float:
        load = self.net.load
        return float((load.p_mw * load.scaling * load.in_service).clip(lower=0).sum())

    @property
    def operators(self) -> list[str]:
        return sorted({s.operator for s in self.substations.values()})


# --------------------------------------------------------------------- loading

_TOP_KEYS = {"name", "description", "references", "power", "customers", "substations",
             "restoration", "layers", "dependencies"}
_POWER_KEYS = {"source", "frequency_hz", "overload_tolerance", "unrated_branches", "rating_margin", "base_overloads",
               "frequency"}
_CUSTOMER_KEYS = {"kw_per_customer", "people_per_customer", "table"}
_SUBSTATION_KEYS = {"table"}
#: In the dataclass's order, so that of two bad keys the same one is always reported.
_RESTORATION_KEYS = tuple(RestorationParams.__dataclass_fields__)
#: Most customers one load may have: more than there are people on Earth.
_MAX_CUSTOMERS = 1e10


def read_system(spec: str | Path, *, rate: RateBranches, **overrides: Any) -> System:
    """Read a system from a folder, a ``system.toml`` path or ``pandapower:<case>``; ``rate`` sets its ratings.

    The model reads and checks what the files say; the branch ratings need a
    power flow, which is the power room's job, so the caller hands in how to
    rate (:func:`gridsim.loading.load_system` hands in
    :func:`gridsim.power.ratings.branch_ratings`). ``overrides`` replace the
    manifest's power settings.
    """
    text = str(spec)
    if is_stock(text):
        power = {"source": text, **overrides}
        return _build(name=text, manifest={"power": power}, base_dir=Path.cwd(), manifest_path=None, rate=rate)
    path = _find_manifest(Path(text))
    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        manifest = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"malformed TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting past Python's stack
        raise InputError(path, f"malformed TOML: {str(exc).splitlines()[0] if str(exc) else 'nested too deeply'}") \
            from None
    manifest.setdefault("power", {})
    if isinstance(manifest["power"], dict):
        manifest["power"].update(overrides)
    return _build(name=None, manifest=manifest, base_dir=path.parent, manifest_path=path, raw=raw, rate=rate)


def _find_manifest(path: Path) -> Path:
    candidates = [path, BUNDLED_TOPOLOGIES / path.name]
    if path.parts and path.parts[0] == "topologies":
        candidates.append(BUNDLED_TOPOLOGIES.joinpath(*path.parts[1:]))
    for cand in candidates:
        if cand.is_dir() and (cand / "system.toml").is_file():
            return cand / "system.toml"
        if cand.is_file() and cand.suffix == ".toml":
            return cand
    raise InputError(path, "no system here: expected a folder with system.toml, a .toml file, "
                           "or pandapower:<case>")


def _build(*, name: str | None, manifest: dict, base_dir: Path, manifest_path: Path | None,
           raw: str | None = None, rate: RateBranches) -> System:
    """Check a parsed manifest section by section, in the order its errors are reported, and build the system."""
    where = manifest_path or name
    check_keys(manifest, _TOP_KEYS, "", where, raw)
    power = check_keys(manifest.get("power", {}), _POWER_KEYS, "power", where, raw)
    if "source" not in power:
        raise InputError(where, "missing power.source (a grid file or pandapower:<case>)", line_of(raw, "power"))
    name = _manifest_name(manifest, where, raw) if name is None else name
    input_files: dict[str, str] = {}
    if manifest_path is not None:
        input_files[str(manifest_path)] = sha256(manifest_path)
    source, frequency, net, notes = _power_grid(power, base_dir, where, raw, input_files)

    customers_cfg = check_keys(manifest.get("customers", {}), _CUSTOMER_KEYS, "customers", where, raw)
    substations_cfg = check_keys(manifest.get("substations", {}), _SUBSTATION_KEYS, "substations", where, raw)
    restoration, per_operator = _restoration(manifest.get("restoration", {}), where, raw)
    substations = _substations(net, substations_cfg, base_dir, where, raw, input_files)
    customers, people = _customers(net, customers_cfg, base_dir, where, raw, input_files)
    layers = load_layers(manifest, base_dir, net, substations, where, raw, input_files)

    tolerance, margin, unrated, base_overloads = _rating_settings(power, where, raw)
    line_rating, trafo_rating, rating_notes = rate(
        net, unrated=unrated, margin=margin, tolerance=tolerance, base_overloads=base_overloads)
    dynamics = _frequency_model(power, frequency, net, base_dir, where, raw, input_files)
    description, references = _texts(manifest, where, raw)
    return System(
        name=name,
        net=net,
        substations=substations,
        customers=customers,
        people_per_customer=people,
        overload_tolerance=tolerance,
        line_rating_mva=line_rating,
        trafo_rating_mva=trafo_rating,
        restoration=restoration,
        operator_restoration=per_operator,
        rating_notes=rating_notes,
        description=description,
        references=references,
        source=source,
        input_files=input_files,
        layers=layers,
        frequency=dynamics,
        load_notes=tuple(notes),
    )


def _manifest_name(manifest: dict, where, raw) -> str:
    """The manifest's ``name``: required, a non-empty string."""
    name = manifest.get("name")
    if name is None:
        raise InputError(where, "missing name = \"...\" at the top of the manifest")
    if not isinstance(name, str) or not name.strip():
        raise InputError(where, f"name must be a non-empty string, got {shown(name)}", line_of(raw, "name"))
    return name


def _power_grid(power: dict, base_dir: Path, where, raw, input_files: dict[str, str]) -> tuple[str, float, Any, list]:
    """``power.source`` read and checked at ``power.frequency_hz``: (source, frequency, net, notes); files hashed."""
    source = power["source"]
    if not isinstance(source, str):
        raise InputError(where, "power.source must be a string", line_of(raw, "source"))
    frequency = manifest_number(power, "frequency_hz", 50.0, "power", where, raw, minimum=1.0)
    grid = read_grid(source, base_dir, frequency_hz=frequency)
    net = grid.net
    if is_stock(source):
        input_files[source] = grid.digest
    else:
        grid_path = base_dir / source
        input_files[str(grid_path)] = sha256(grid_path)
    check_net(net, source if is_stock(source) else base_dir / source)
    notes = [*grid.notes, *net_notes(net), *_disconnect_dark_loads(net)]
    return source, frequency, net, notes


def _rating_settings(power: dict, where, raw) -> tuple[float, float, str, str]:
    """How branches are rated: (overload_tolerance, rating_margin, unrated_branches, base_overloads)."""
    tolerance = manifest_number(power, "overload_tolerance", 0.1, "power", where, raw, minimum=0.0)
    margin = manifest_number(power, "rating_margin", 0.5, "power", where, raw, minimum=0.0)
    unrated = power.get("unrated_branches", "base-flow")
    if unrated not in ("base-flow", "never-trip"):
        raise InputError(where, f"power.unrated_branches must be 'base-flow' or 'never-trip', got {shown(unrated)}",
                         line_of(raw, "unrated_branches"))
    base_overloads = power.get("base_overloads", "raise")
    if base_overloads not in ("raise", "trip"):
        raise InputError(where, f"power.base_overloads must be 'raise' or 'trip', got {shown(base_overloads)}",
                         line_of(raw, "base_overloads"))
    return tolerance, margin, unrated, base_overloads


def _frequency_model(power: dict, frequency: float, net, base_dir: Path, where, raw,
                     input_files: dict[str, str]) -> FrequencySettings | None:
    """The ``[power.frequency]`` table's settings, or None when the manifest has none."""
    if "frequency" not in power:
        return None
    if not isinstance(power["frequency"], dict):
        raise InputError(where, "[power.frequency] must be a table", line_of(raw, "frequency"))
    return read_frequency_settings(power["frequency"], frequency, net, base_dir, where, raw, input_files)


def _texts(manifest: dict, where, raw) -> tuple[str, tuple[str, ...]]:
    """The manifest's ``description`` (a string) and ``references`` (a list of strings)."""
    description = manifest.get("description", "")
    if not isinstance(description, str):
        raise InputError(where, "description must be a string", line_of(raw, "description"))
    refs = manifest.get("references", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError(where, "references must be a list of strings", line_of(raw, "references"))
    return description, tuple(refs)


def _disconnect_dark_loads(net) -> list[str]:
    """Take out of service the loads no source reaches before any attack, so no attack is charged with them.

    The net is gridsim's own copy; the note says what was dark, apart from what the attack does.
    """
    dark = dark_loads(net)
    if not len(dark):
        return []
    index = net.load.index[dark]
    mw = float((net.load.p_mw * net.load.scaling).iloc[dark].clip(lower=0).sum())
    net.load.loc[index, "in_service"] = False
    return [f"{len(dark)} loads ({mw:,.1f} MW) are dark in the base case (no path to a source): left out of "
            f"the demand, so no attack is charged with them (first: load {index[0]})"]


def _restoration_params(table: dict, base: RestorationParams, where: str, path, raw) -> RestorationParams:
    """One set of restoration settings: ``base`` with the keys ``table`` gives (crews and max_reclose whole)."""
    check_keys(table, set(_RESTORATION_KEYS), where, path, raw)
    values = {}
    for key in _RESTORATION_KEYS:
        if key in table:
            default = getattr(base, key)
            whole = isinstance(default, int)
            number = manifest_number(table, key, default, where, path, raw,
                                     minimum=1.0 if key == "crews" else 0.0, integer=whole)
            values[key] = int(number) if whole else number
    return replace(base, **values)


def _restoration(cfg: Any, path, raw) -> tuple[RestorationParams, dict[str, RestorationParams]]:
    if not isinstance(cfg, dict):
        raise InputError(path, "[restoration] must be a table", line_of(raw, "restoration"))
    operators = cfg.get("operators", {})
    top = {k: v for k, v in cfg.items() if k != "operators"}
    default = _restoration_params(top, RestorationParams(), "restoration", path, raw)
    if not isinstance(operators, dict):
        raise InputError(path, "[restoration.operators] must be a table", line_of(raw, "operators"))
    per_operator = {
        str(op): _restoration_params(table, default, f"restoration.operators.{op}", path, raw)
        for op, table in operators.items()
    }
    return default, per_operator


def _table_path(cfg: dict, base_dir: Path, where, raw, section: str) -> Path:
    table = cfg["table"]
    if not isinstance(table, str) or not table:
        raise InputError(where, f"{section}.table must be a file name (a string), got {shown(table)}",
                         line_of(raw, "table"))
    return base_dir / table


def _substations(net, cfg: dict, base_dir: Path, where, raw, input_files) -> dict[str, Substation]:
    buses = net.bus
    if "table" not in cfg:
        return _single_bus_sites(buses, set())
    path = _table_path(cfg, base_dir, where, raw, "substations")
    rows = read_csv(path, ["name", "buses"])
    input_files[str(path)] = sha256(path)
    names, valid = name_index(buses), set(int(i) for i in buses.index)
    sites: dict[str, Substation] = {}
    owner: dict[int, str] = {}
    for line, row in rows:
        site = row["name"]
        if not site:
            raise InputError(path, "empty substation name", f"line {line}")
        if site in sites:
            raise InputError(path, f"duplicate substation name {site!r}", f"line {line}")
        members = []
        for token in filter(None, (t.strip() for t in row["buses"].split(";"))):
            bus = resolve_id(token, names, valid)
            if bus is None:
                raise InputError(path, f"substation {site!r}: no bus named {token!r} in the grid", f"line {line}")
            if bus in owner:
                raise InputError(path, f"bus {token!r} is in both {owner[bus]!r} and {site!r}", f"line {line}")
            owner[bus] = site
            members.append(bus)
        if not members:
            raise InputError(path, f"substation {site!r} has no buses", f"line {line}")
        tags = {k: parse_tag(v) for k, v in row.items()
                if k not in ("name", "buses", "manual_h", "remote_min") and v != ""}
        sites[site] = Substation(
            name=site,
            buses=tuple(members),
            tags=tags,
            manual_h=optional_float(row.get("manual_h", ""), path, line, "manual_h"),
            remote_min=optional_float(row.get("remote_min", ""), path, line, "remote_min"),
        )
    sites.update(_single_bus_sites(buses, set(owner), set(sites)))
    return sites


def _single_bus_sites(buses, owned: set[int], taken: set[str] | None = None) -> dict[str, Substation]:
    """A site of its own for every bus not in ``owned``, so every bus has a site.

    A site is named after its bus when that name is unique and free, else ``bus<index>``.
    """
    taken = set(taken or ())
    names = list(buses["name"]) if "name" in buses else [None] * len(buses)
    counts: dict[str, int] = {}
    for nm in names:
        if isinstance(nm, str) and nm:
            counts[nm] = counts.get(nm, 0) + 1
    sites = {}
    for idx, nm, vn in zip(buses.index, names, buses.vn_kv):
        if int(idx) in owned:
            continue
        label = nm if isinstance(nm, str) and nm and counts[nm] == 1 and nm not in taken else f"bus{int(idx)}"
        suffix = 2
        while label in taken:
            label, suffix = f"bus{int(idx)}-{suffix}", suffix + 1
        taken.add(label)
        sites[label] = Substation(label, (int(idx),), {"voltage_kv": parse_tag(str(vn))})
    return sites


def _customers(net, cfg: dict, base_dir: Path, where, raw, input_files) -> tuple[np.ndarray, float]:
    kw_per_customer = manifest_number(cfg, "kw_per_customer", 2.0, "customers", where, raw, minimum=1e-9)
    people = manifest_number(cfg, "people_per_customer", 2.5, "customers", where, raw, minimum=0.0)
    load = net.load
    counts = np.round(load.p_mw.to_numpy(dtype=float).clip(min=0) * 1000.0 / kw_per_customer)
    if "table" in cfg:
        path = _table_path(cfg, base_dir, where, raw, "customers")
        rows = read_csv(path, ["load", "customers"])
        input_files[str(path)] = sha256(path)
        names, valid = name_index(load), set(int(i) for i in load.index)
        position = {int(idx): pos for pos, idx in enumerate(load.index)}
        seen: dict[int, int] = {}
        for line, row in rows:
            idx = resolve_id(row["load"], names, valid)
            if idx is None:
                raise InputError(path, f"no load named {row['load']!r} in the grid", f"line {line}")
            if idx in seen:
                raise InputError(path, f"load {row['load']!r} is listed twice (first on line {seen[idx]})",
                                 f"line {line}")
            seen[idx] = line
            counts[position[idx]] = number_cell(row["customers"], "customers", path, f"line {line}", minimum=0.0,
                                                maximum=_MAX_CUSTOMERS, integer=True)
    return counts.astype(float), people


def system_on_net(net, *, rate: RateBranches, name: str = "custom", substations: Mapping[str, Any] | None = None,
                    customers: Mapping[int, float] | None = None, kw_per_customer: float = 2.0,
                    people_per_customer: float = 2.5, overload_tolerance: float = 0.1,
                    unrated_branches: str = "never-trip", rating_margin: float = 0.5,
                    base_overloads: str = "trip",
                    restoration: RestorationParams | None = None,
                    operator_restoration: Mapping[str, RestorationParams] | None = None) -> System:
    """Build a :class:`System` around an in-memory pandapower net (no manifest).

    ``substations`` maps a site name to ``{"buses": [...], "tags": {...}}`` (or
    just a list of buses); buses left out become sites of their own.
    ``customers`` maps load indices to customer counts; other loads follow
    ``kw_per_customer``. The net is deep-copied: later changes to it do not
    reach the system.
    """
    net = copy.deepcopy(net)
    grid = normalise_net(net, name)
    found = (*grid.notes, *net_notes(net), *_disconnect_dark_loads(net))
    sites: dict[str, Substation] = {}
    owned: set[int] = set()
    for site, spec in (substations or {}).items():
        spec = {"buses": spec} if not isinstance(spec, Mapping) else spec
        buses = tuple(int(b) for b in spec["buses"])
        owned.update(buses)
        sites[site] = Substation(site, buses, dict(spec.get("tags", {})), spec.get("manual_h"), spec.get("remote_min"))
    sites.update(_single_bus_sites(net.bus, owned, set(sites)))
    counts = np.round(net.load.p_mw.to_numpy(dtype=float).clip(min=0) * 1000.0 / kw_per_customer)
    for idx, count in (customers or {}).items():
        counts[list(net.load.index).index(idx)] = count
    line_rating, trafo_rating, notes = rate(net, unrated=unrated_branches, margin=rating_margin,
                                                      tolerance=overload_tolerance, base_overloads=base_overloads)
    return System(
        name=name, net=net, substations=sites, customers=counts.astype(float),
        people_per_customer=people_per_customer, overload_tolerance=overload_tolerance,
        line_rating_mva=line_rating, trafo_rating_mva=trafo_rating,
        restoration=restoration or RestorationParams(),
        operator_restoration=dict(operator_restoration or {}), source="in-memory net", rating_notes=notes,
        load_notes=found,
    )
