"""Reading the CSV tables that manifests name: one reader, with line numbers in its errors.

Spreadsheets write byte-order marks, stray blank lines and padded cells; the
reader takes those, and refuses what would silently shift a column (duplicate
headers, a row with more fields than columns). Also the file digests a result
records, and the parsing of free-form tag cells.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from gridsim.errors import InputError
from gridsim.io.numbers import number_cell

__all__ = ["optional_float", "parse_tag", "read_csv", "sha256"]


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (results record each input file's)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_csv(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every non-blank row, cells stripped; the ``required`` columns must be there."""
    if not path.is_file():
        raise InputError(path, "table file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a byte-order mark
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(path, "not UTF-8 text (save the table as UTF-8 CSV)", f"line {line}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise InputError(path, f"duplicate column(s) {', '.join(duplicated)}", "line 1")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}", "line 1")
    rows = []
    for row in reader:
        if None in row:
            raise InputError(path, "more fields than columns", f"line {reader.line_num}")
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return rows


def parse_tag(value: str) -> Any:
    """A tag cell as a number where it reads as one (an integer where it is whole), else the text."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def optional_float(value: str, path: Path, line: int, column: str) -> float | None:
    """A non-negative number cell (:func:`gridsim.io.numbers.number_cell`), or None when the cell is empty."""
    if value == "":
        return None
    return number_cell(value, column, path, f"line {line}", minimum=0.0)
