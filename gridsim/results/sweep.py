"""The sweep store: a folder a sweep fills one Parquet part at a time, which a killed sweep resumes exactly.

A sweep's folder holds::

    manifest.json          what the sweep is: the system's fingerprint, the settings, the versions, its parts
    parts/part-000000.parquet   the rows of scenarios 0 .. part_size - 1, and so on, one file per part
    summary.json, ccdf.png      written once every part is in
    .lock                  held (``flock``) by the one sweep writing here

Every file is written to a hidden temporary name beside its final one and
renamed into place once complete and flushed to disk, so a part either is
there whole or is not there at all, whatever kills the process and when.
A part also carries, in its Parquet metadata, the key of the manifest it
belongs to, its number and its row count: a part from another sweep, or a
file that is not a part, is never counted as done. Resuming runs exactly the
parts that are not there, so a resumed sweep ends with the rows of an
uninterrupted one, none lost, none twice, the same bytes per part.

The parts are one dataset: ``pyarrow.dataset.dataset(folder / "parts")`` or
``pandas.read_parquet(folder / "parts")`` reads them in scenario order
(hidden temporary files are ignored by both). docs/FORMATS.md describes
every column.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridsim.errors import InputError
from gridsim.results.files import versions, write_json

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, one sweep per folder is then the user's to keep
    fcntl = None

__all__ = ["FORMAT", "SCHEMA", "SweepStore", "fingerprint", "rows_table", "sweep_folder_name", "sweep_manifest"]

#: Version of the store's layout; a folder of another layout is refused, not mixed in.
FORMAT = 1
#: Columns of a sweep's rows, in order.
SCHEMA = pa.schema([("scenario", pa.int64()), ("targets", pa.list_(pa.string())), ("mw_lost", pa.float64()),
                    ("pct_lost", pa.float64()), ("customers_out", pa.float64()), ("cascade_depth", pa.int32()),
                    ("elements_tripped", pa.int32()), ("tripped", pa.list_(pa.string())), ("islands", pa.int32())])
#: What must match for a folder's parts to be this sweep's: anything else in the manifest may differ.
IDENTITY = ("format", "fingerprint", "settings", "scenarios", "part_size", "candidates", "gridsim", "loop")
_PART_KEY = b"gridsim.sweep.part"


def sweep_folder_name(system: str, settings: Any) -> str:
    """``sweep_<system>_<targets>_k<k>[_mc<N>_seed<s>][_<engine>-<flow>]``, with only file-name-safe characters."""
    name = f"sweep_{system}_{settings.targets}_k{settings.k}"
    if settings.random is not None:
        name += f"_mc{settings.random}_seed{settings.seed}"
    if settings.engine != "fast" or settings.flow != "dc":
        name += f"_{settings.engine}-{settings.flow}"
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)


def fingerprint(*parts: Any) -> str:
    """SHA-256 of arrays, numbers, strings and dataclasses of them: what the rows of a sweep depend on.

    A dataclass is hashed field by field (name, then value); an array by its
    dtype, shape and bytes. The same grid compiled twice has the same
    fingerprint; a changed rating, load or branch changes it.
    """
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            digest.update(type(value).__name__.encode())
            for field in dataclasses.fields(value):
                digest.update(field.name.encode())
                feed(getattr(value, field.name))
        elif isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            if array.dtype == object:
                feed([str(v) for v in array.ravel().tolist()])
            else:
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.tobytes())
        elif isinstance(value, (list, tuple)):
            digest.update(f"[{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode())

    for part in parts:
        feed(part)
    return digest.hexdigest()


def sweep_manifest(system: Any, settings: Any, *, system_fingerprint: str, labels: list[str], total: int,
                   part_size: int, base_demand_mw: float, loop: str = "python", spec: str | None = None,
                   command: list[str] | None = None) -> dict[str, Any]:
    """``manifest.json`` of a sweep: what it is (its identity), its parts, the inputs with hashes, the versions.

    ``spec`` is how the system was named on the command line (so that
    ``gridsim sweep --resume FOLDER`` can load it again); ``loop`` which
    cascade loop computes the rows (``"python"``, or ``"numba <version>"``
    for the compiled one): the two agree, but a store is not filled by both.
    The fields of :data:`IDENTITY` decide whether a folder's parts belong to a sweep.
    """
    found = {**versions(), "pyarrow": pa.__version__}
    return {
        "format": FORMAT,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "fingerprint": system_fingerprint,
        "settings": {"targets": settings.targets, "k": settings.k, "random": settings.random,
                     "seed": settings.seed if settings.random is not None else None,  # no draws: no seed
                     "engine": settings.engine, "flow": settings.flow},
        "scenarios": total,
        "loop": loop,
        "part_size": part_size,
        "candidates": len(labels),
        "gridsim": found["gridsim"],
        "system_spec": spec if spec is not None else system.name,
        "base_demand_mw": base_demand_mw,
        "labels": labels,
        "parts": [{"part": i, "first": first, "scenarios": min(part_size, total - first),
                   "file": f"parts/{part_name(i)}"} for i, first in enumerate(range(0, total, part_size))],
        "inputs": {"system": {"name": system.name, "power_source": system.source, "files": system.input_files,
                              "ratings_set_by_gridsim": system.rating_notes,
                              "line_ratings": len(system.line_rating_mva),
                              "trafo_ratings": len(system.trafo_rating_mva)}},
        "versions": found,
    }


def part_name(index: int) -> str:
    """``part-000042.parquet``: zero-padded, so that name order is scenario order."""
    return f"part-{index:06d}.parquet"


def rows_table(columns: dict) -> pa.Table:
    """A chunk's columns (a dict of equal-length sequences, named as :data:`SCHEMA`'s fields) as a table."""
    return pa.table({name: columns[name] for name in SCHEMA.names}, schema=SCHEMA)


class SweepStore:
    """One sweep's folder, opened for writing: locked, its manifest checked or written, its parts counted.

    Open with :meth:`open` (a context manager): it takes the folder's lock,
    refuses a folder whose manifest is another sweep's, writes the manifest
    of a new one, and removes the temporary files a killed sweep left.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], lock: Any) -> None:
        self.folder, self.manifest, self._lock = folder, manifest, lock
        self.parts_dir = folder / "parts"
        self.key = manifest_key(manifest)

    @classmethod
    @contextlib.contextmanager
    def open(cls, folder: str | Path, manifest: dict[str, Any]) -> Iterator[SweepStore]:
        """The store of ``manifest`` in ``folder`` (created if need be), locked for as long as the block runs.

        Raises
        ------
        InputError
            Another sweep holds the lock, or the folder holds another sweep
            (its manifest differs in one of :data:`IDENTITY`), or something
            that is not a sweep store.
        """
        folder = Path(folder)
        _refuse_foreign(folder)  # before anything is created in it: a refused folder is left as it was
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = _take_lock(folder)
        except OSError as exc:
            raise InputError(folder, f"cannot write the sweep here: {exc.strerror or exc}") from None
        try:
            existing = read_manifest(folder) if (folder / "manifest.json").exists() else None
            if existing is None:
                write_atomically(folder / "manifest.json", lambda path: write_json(path, manifest))
                existing = manifest
            else:
                _check_same_sweep(folder, existing, manifest)
            (folder / "parts").mkdir(exist_ok=True)
            store = cls(folder, existing, lock)
            store.remove_temporary_files()
            yield store
        finally:
            lock.close()  # releases the flock

    # ------------------------------------------------------------ parts

    def being_written(self) -> bool:
        """Whether a sweep holds this store's lock now (a reader's question: it takes the lock only to ask)."""
        if fcntl is None or not (self.folder / ".lock").exists():  # pragma: no cover - no flock
            return False
        with open(self.folder / ".lock", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False

    def part_path(self, index: int) -> Path:
        return self.parts_dir / part_name(index)

    def done_parts(self) -> set[int]:
        """Parts whose file is there and is this sweep's: its manifest key, its number, its row count."""
        done = set()
        for entry in self.manifest["parts"]:
            path = self.part_path(entry["part"])
            if path.exists() and self._is_part(path, entry):
                done.add(entry["part"])
        return done

    def _is_part(self, path: Path, entry: dict[str, Any]) -> bool:
        try:
            metadata = pq.read_metadata(path)
        except (OSError, pa.ArrowException):
            return False
        stamp = (metadata.metadata or {}).get(_PART_KEY)
        return stamp == _part_stamp(self.key, entry) and metadata.num_rows == entry["scenarios"]

    def write_part(self, index: int, table: pa.Table) -> None:
        """Write part ``index`` whole (temporary name, flushed, renamed): it is there complete or not at all."""
        entry = self.manifest["parts"][index]
        if table.num_rows != entry["scenarios"] or (table.num_rows and table["scenario"][0].as_py() != entry["first"]):
            raise ValueError(f"part {index} holds scenarios {entry['first']}.. ({entry['scenarios']} rows), "
                             f"not {table.num_rows} rows from {table['scenario'][0] if table.num_rows else '-'}")
        stamped = table.replace_schema_metadata({_PART_KEY: _part_stamp(self.key, entry)})
        write_atomically(self.part_path(index),
                         lambda path: pq.write_table(stamped, path, compression="zstd"))

    def tables(self) -> Iterator[pa.Table]:
        """The parts that are done (:meth:`done_parts`: this sweep's, whole), in scenario order, one at a time."""
        done = self.done_parts()
        for entry in self.manifest["parts"]:
            if entry["part"] in done:
                yield pq.read_table(self.part_path(entry["part"]))

    def remove_temporary_files(self) -> None:
        """Remove what a killed writer left half-written (this store's lock is held: no one else writes)."""
        for directory in (self.folder, self.parts_dir):
            for path in directory.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()


def manifest_key(manifest: dict[str, Any]) -> str:
    """The short hash of a manifest's identity fields: what a part carries to say whose it is."""
    identity = {name: manifest.get(name) for name in IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a sweep store.

    Raises
    ------
    InputError
        No manifest, one that is not JSON, or one of another layout.
    """
    path = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(folder, "is not a sweep folder (no manifest.json)") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "parts" not in manifest:
        raise InputError(path, f"is not a gridsim sweep store of format {FORMAT} (an older gridsim wrote it?); "
                               "run the sweep into another --out")
    return manifest


def write_atomically(path: Path, write: Any) -> None:
    """``write(temporary_path)``, flushed to disk, then renamed to ``path``; the temporary file removed on error."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _part_stamp(key: str, entry: dict[str, Any]) -> bytes:
    return f"{key}:{entry['part']}:{entry['first']}:{entry['scenarios']}".encode()


def _check_same_sweep(folder: Path, existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse, with the first field that differs, a folder whose parts are another sweep's."""
    for name in IDENTITY:
        if existing.get(name) != wanted.get(name):
            what = {"fingerprint": "of another system (its grid, ratings or customers differ from this one's)",
                    "gridsim": f"written by gridsim {existing.get(name)} (this is {wanted.get(name)})",
                    "settings": "of other settings", "part_size": f"begun with --part-size {existing.get(name)}",
                    "scenarios": "of another number of scenarios", "candidates": "of other candidates",
                    "format": "of another store layout",
                    "loop": f"computed by another cascade loop ({existing.get(name)}; here {wanted.get(name)}: "
                            "install or remove gridsim's [speed] extra to match)"}[name]
            raise InputError(folder, f"holds a sweep {what}; resume it as it was begun (gridsim sweep --resume "
                                     f"{folder}), or choose another --out")


def _refuse_foreign(folder: Path) -> None:
    """Refuse a folder that holds files but no manifest: not a sweep store, or one an older gridsim wrote."""
    if not folder.is_dir() or (folder / "manifest.json").exists():
        return
    if any(p.name not in (".lock", "parts") and not p.name.endswith(".tmp") for p in folder.iterdir()):
        raise InputError(folder, "holds files but no sweep manifest (not a gridsim sweep store, or one written by an "
                                 "older gridsim); choose another --out or remove it")


def _take_lock(folder: Path) -> Any:
    """Hold ``folder/.lock`` (``flock``: the kernel lets it go when the process dies, even by SIGKILL)."""
    handle = open(folder / ".lock", "a+", encoding="utf-8")  # noqa: SIM115 - held for the store's life
    if fcntl is None:  # pragma: no cover
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InputError(folder, f"another gridsim sweep is writing here ({holder}); wait for it to finish, "
                                 "or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
