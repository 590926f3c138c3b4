"""Read a pandapower JSON network without pandapower's decoder: data only, never code.

pandapower's own reader (``pandapower.from_json``) rebuilds objects by
importing whatever module a ``"_module"`` key names, hands the keyword
arguments it finds to ``pandas.read_json`` (which can read files and URLs,
decompress, or parse JSON lines), and decodes every text cell of every table
again with the same hook. A grid file is untrusted input, so gridsim does not
call it. This module parses the file with :mod:`json`, accepts exactly the
shape pandapower writes for a network, and builds the tables itself:

- the top level is ``{"_module": "pandapower.auxiliary", "_class":
  "pandapowerNet", "_object": {...}}``;
- a table is ``{"_module": "pandas.core.frame", "_class": "DataFrame",
  "_object": "<JSON text>", "orient": "split" | "columns", "dtype": {...},
  "is_multiindex": false, "is_multicolumn": false}``, and nothing else;
- a table's cells are numbers, strings, booleans, null, or lists of those;
- every other entry (``name``, ``f_hz``, ``std_types`` ...) is plain JSON
  without ``_module`` or ``_class`` keys anywhere inside.

Anything else is refused with one line that names the key path. Nothing
named in the file is ever imported: the only modules used are :mod:`json`,
pandas and pandapower's ``create_empty_network``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridsim.errors import InputError
from gridsim.io.numbers import shown

__all__ = ["read_pandapower_json"]

_NET = ("pandapower.auxiliary", "pandapowerNet")
_FRAME_MODULES = ("pandas.core.frame", "pandas")
#: Keys pandapower writes beside a DataFrame's data. Any other key would reach ``pandas.read_json`` as an option.
_FRAME_KEYS = {"_module", "_class", "_object", "orient", "dtype", "is_multiindex", "is_multicolumn",
               "index_name", "column_name"}
#: dtype names pandapower writes for its tables; each maps to a pandas dtype without any import.
_DTYPE = re.compile(r"(?:u?int(?:8|16|32|64)|U?Int(?:8|16|32|64)|float(?:32|64)|Float(?:32|64)|bool|boolean"
                    r"|object|str|string|category)")
#: Deepest nesting of plain JSON values accepted (std_types is three levels deep).
_MAX_DEPTH = 32


def read_pandapower_json(path: Path) -> Any:
    """Return the pandapower net stored at ``path``; refuse anything but plain data.

    Raises
    ------
    InputError
        Malformed JSON, or any object, option or cell pandapower does not
        write for a network, named by its key path (``bus._object.data[3][1]``).
    """
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON: {exc.msg}", f"line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting past Python's stack
        raise InputError(path, f"malformed JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict) or (tree.get("_module"), tree.get("_class")) != _NET:
        raise InputError(path, "not a pandapower network (no top-level pandapowerNet object)")
    _only_keys(tree, {"_module", "_class", "_object"}, "", path)
    body = tree.get("_object")
    if not isinstance(body, dict):
        raise InputError(path, "_object of the pandapowerNet must be a mapping of tables", "_object")

    # pandapower takes seconds to import, and gridsim.model.grid, which imports this module, is on the import
    # path of every CLI command and of load_scenario: it is imported here, when a grid is read.
    import pandapower as pp  # noqa: PLC0415

    net = pp.create_empty_network()
    for key, value in body.items():
        if isinstance(value, dict) and ("_module" in value or "_class" in value):
            net[key] = _frame(value, key, path)
        else:
            _plain(value, key, path, 0)
            net[key] = value
    return net


def _refuse(path: Path, where: str, message: str) -> InputError:
    return InputError(path, f"{message}; refusing the file (gridsim reads plain pandapower networks only)", where)


def _only_keys(mapping: dict, allowed: set[str], where: str, path: Path) -> None:
    for key in mapping:
        if key not in allowed:
            sub = f"{where}.{key}" if where else str(key)
            raise _refuse(path, sub, f"unexpected key {key!r}")


def _plain(value: Any, where: str, path: Path, depth: int) -> None:
    """Check a plain JSON value (no objects to rebuild), iteratively bounded by depth."""
    if depth > _MAX_DEPTH:
        raise _refuse(path, where, "nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("_module", "_class"):
                raise _refuse(path, where, f"an object to rebuild ({key} = {shown(item)})")
            _plain(item, f"{where}.{key}", path, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]", path, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        return  # NaN and infinities are data; the net checks refuse them where they matter
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise _refuse(path, where, f"unsupported value {shown(value)}")


def _frame(spec: dict, where: str, path: Path) -> pd.DataFrame:
    """Build one table from its pandapower JSON entry, after checking every key and cell."""
    _check_frame_entry(spec, where, path)
    orient, dtypes = _frame_options(spec, where, path)
    columns, index, rows = _frame_data(spec.get("_object"), orient, f"{where}._object", path)
    integer_labels = all(isinstance(label, int) and not isinstance(label, bool) for label in index)
    labels = pd.Index(index, dtype="int64") if integer_labels else pd.Index(index, dtype=object)
    frame = pd.DataFrame(rows, index=labels, columns=pd.Index(columns, dtype=object))
    for column, name in dtypes.items():
        if column in frame.columns:
            frame[column] = _cast(frame[column], name, f"{where}.{column}", path)
    if spec.get("index_name") is not None:
        frame.index.name = spec["index_name"]
    if spec.get("column_name") is not None:
        frame.columns.name = spec["column_name"]
    return frame


def _check_frame_entry(spec: dict, where: str, path: Path) -> None:
    """A DataFrame entry as pandapower writes it: its module and class, its keys, its flags and index names."""
    module, cls = spec.get("_module"), spec.get("_class")
    if module not in _FRAME_MODULES or cls != "DataFrame":
        raise _refuse(path, where, f"object {module!r}.{cls!r} is not a pandapower table")
    _only_keys(spec, _FRAME_KEYS, where, path)
    for flag in ("is_multiindex", "is_multicolumn"):
        if spec.get(flag, False) is not False:
            raise _refuse(path, f"{where}.{flag}", f"{flag} must be false")
    for name_key in ("index_name", "column_name"):
        if not isinstance(spec.get(name_key), (str, type(None))):
            raise _refuse(path, f"{where}.{name_key}", f"{name_key} must be a string or null")


def _frame_options(spec: dict, where: str, path: Path) -> tuple[str, dict]:
    """The entry's ``orient`` (``split`` or ``columns``) and ``dtype`` mapping, each name one pandapower writes."""
    orient = spec.get("orient", "columns")
    if orient not in ("split", "columns"):
        raise _refuse(path, f"{where}.orient", f"orient {shown(orient)} (pandapower writes 'split' or 'columns')")
    dtypes = spec.get("dtype", {})
    if not isinstance(dtypes, dict):
        raise _refuse(path, f"{where}.dtype", "dtype must be a mapping of column to type name")
    for column, name in dtypes.items():
        if not isinstance(name, str) or not _DTYPE.fullmatch(name):
            raise _refuse(path, f"{where}.dtype.{column}", f"unsupported column type {shown(name)}")
    return orient, dtypes


def _frame_data(raw: Any, orient: str, inner: str, path: Path) -> tuple[list, list, list]:
    """(columns, index, rows) of a table's data, the JSON text in its ``_object``, every cell checked."""
    if not isinstance(raw, str):
        raise _refuse(path, inner, "a table's data must be JSON text")
    try:
        table = json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse(path, inner, "a table's data is not one JSON document") from None
    if orient == "split":
        return _split(table, inner, path)
    return _columns(table, inner, path)


def _split(table: Any, where: str, path: Path) -> tuple[list, list, list]:
    if not isinstance(table, dict):
        raise _refuse(path, where, "split data must be a mapping with columns, index and data")
    _only_keys(table, {"columns", "index", "data"}, where, path)
    columns, index, rows = table.get("columns", []), table.get("index", []), table.get("data", [])
    if not all(isinstance(x, list) for x in (columns, index, rows)):
        raise _refuse(path, where, "columns, index and data must be lists")
    _labels(columns, f"{where}.columns", path)
    _labels(index, f"{where}.index", path)
    if len(rows) != len(index):
        raise _refuse(path, f"{where}.data", f"{len(rows)} rows for {len(index)} index entries")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _refuse(path, f"{where}.data[{i}]", f"a row must be a list of {len(columns)} cells")
        for j, cell in enumerate(row):
            _cell(cell, f"{where}.data[{i}][{j}]", path)
    return columns, index, rows


def _columns(table: Any, where: str, path: Path) -> tuple[list, list, list]:
    """``{"column": {"index": value}}``, the orient of older pandapower files."""
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise _refuse(path, where, "columns data must map each column to a mapping of index to value")
    columns = list(table)
    index: dict[str, None] = {}
    for column, cells in table.items():
        for label, cell in cells.items():
            _cell(cell, f"{where}.{column}.{label}", path)
            index.setdefault(label, None)
    labels = [_index_label(label) for label in index]
    rows = [[table[c].get(label) for c in columns] for label in index]
    return columns, labels, rows


def _index_label(label: str) -> int | str:
    """Index labels of the ``columns`` orient are JSON keys, so text; pandapower's are integers."""
    try:
        return int(label)
    except ValueError:
        return label


def _labels(labels: list, where: str, path: Path) -> None:
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise _refuse(path, f"{where}[{i}]", f"a label must be a string or an integer, got {shown(label)}")


def _cell(cell: Any, where: str, path: Path) -> None:
    """A cell is a scalar or a flat list of scalars (cost curve points); never a mapping."""
    if isinstance(cell, list):
        for k, item in enumerate(cell):
            if isinstance(item, list):
                for m, sub in enumerate(item):
                    _scalar(sub, f"{where}[{k}][{m}]", path)
            else:
                _scalar(item, f"{where}[{k}]", path)
    else:
        _scalar(cell, where, path)


def _scalar(value: Any, where: str, path: Path) -> None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise _refuse(path, where, f"a table cell must be a number, text, true/false or null, got {shown(value)}")


def _cast(series, name: str, where: str, path: Path):
    """Give a column the dtype pandapower recorded for it, as ``pandas.read_json(dtype=...)`` would."""
    try:
        if name in ("object", "str", "string"):
            return series.astype(object).where(series.notna(), None)
        if name == "bool":
            if series.isna().any():
                return series.astype(object)
            return series.astype(bool)
        if name.startswith(("int", "uint")):
            values = pd.to_numeric(series, errors="raise")
            if values.isna().any() or not np.all(np.isfinite(values.to_numpy(dtype=float))):
                return values.astype(float)
            return values.astype(name)
        if name.startswith("float"):
            return pd.to_numeric(series, errors="raise").astype(name)
        return series.astype(name)
    except (ValueError, TypeError, OverflowError):
        raise _refuse(path, where, f"values that are not of the column's type {name}") from None
