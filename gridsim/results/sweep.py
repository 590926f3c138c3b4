"""The sweep folder: one Parquet row per scenario, the summary, the manifest, written through a staged folder.

``scenarios.parquet`` gets a row group per chunk of scenarios, so memory
stays flat however long the sweep; ``manifest.json`` records the system's
input files with their hashes, the settings and the versions, and
docs/FORMATS.md describes every column.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gridsim.model.system import System
from gridsim.results.files import versions

__all__ = ["ParquetSink", "sweep_folder_name", "sweep_manifest"]


def sweep_folder_name(system: str, settings: Any) -> str:
    """``sweep_<system>_<targets>_k<k>[_mc<N>_seed<s>][_<engine>-<flow>]``, with only file-name-safe characters."""
    name = f"sweep_{system}_{settings.targets}_k{settings.k}"
    if settings.random is not None:
        name += f"_mc{settings.random}_seed{settings.seed}"
    if settings.engine != "fast" or settings.flow != "dc":
        name += f"_{settings.engine}-{settings.flow}"
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)


def sweep_manifest(system: System, settings: Any, command: list[str] | None = None) -> dict[str, Any]:
    """``manifest.json`` of a sweep: when, the command line, the settings, the inputs with hashes, the versions."""
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "settings": {"targets": settings.targets, "k": settings.k, "random": settings.random,
                     "seed": settings.seed, "engine": settings.engine, "flow": settings.flow},
        "inputs": {"system": {"name": system.name, "power_source": system.source, "files": system.input_files,
                              "ratings_set_by_gridsim": system.rating_notes}},
        "versions": {**versions(), "pyarrow": pa.__version__},
    }


class ParquetSink:
    """Rows to a Parquet file, a row group per chunk: memory stays flat however long the sweep.

    Use as a context manager; call it with a chunk's columns (a dict of
    equal-length sequences named as the schema's fields).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema = pa.schema([("scenario", pa.int64()), ("targets", pa.list_(pa.string())),
                                 ("mw_lost", pa.float64()), ("pct_lost", pa.float64()),
                                 ("customers_out", pa.float64()), ("cascade_depth", pa.int32()),
                                 ("elements_tripped", pa.int32()), ("tripped", pa.list_(pa.string())),
                                 ("islands", pa.int32())])
        self.writer = None

    def __enter__(self) -> ParquetSink:
        self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        return self

    def __call__(self, columns: dict) -> None:
        self.writer.write_table(pa.table({name: columns[name] for name in self.schema.names}, schema=self.schema))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.writer.close()
