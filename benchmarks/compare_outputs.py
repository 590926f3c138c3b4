"""Behaviour-unchanged guard: run every bundled scenario and case study, hash what they write, compare two checkouts.

A restructuring that moves modules (issue 12) must leave every output byte for
byte as it was. This script runs a fixed plan of ``gridsim`` commands through
the CLI only (stdlib here, no ``import gridsim``), so the same script drives an
old checkout and a new one, whatever their package layout:

- ``gridsim run`` on every scenario that ``gridsim list`` names, with the
  default engine (``dc``, ``fast``), ``--flow ac`` and ``--engine reference``;
  ``--flow ac --engine reference`` for a few (``AC_REFERENCE``). Scenarios
  that need ``--system`` run on the systems of ``GENERIC_SYSTEMS``.
- ``gridsim case-study NAME --json`` with every mitigation of
  ``--list-mitigations`` for every case study the CLI knows, and
  ``gridsim case-study --all --check`` (the printed comparison).
- a few small ``gridsim sweep`` runs (``SWEEPS``, ``--workers 1``), since the
  sweep drives the same compiled engine.
- ``gridsim list``, ``gridsim techniques --all`` and ``gridsim show`` of every
  bundled topology (package data that a move can lose).

Each command runs in its own subfolder of ``--out`` (its working directory;
``stdout.txt``, ``stderr.txt`` and, for ``run`` and ``sweep``, the bundle under
``bundle/``). ``digests.json`` then maps each run name to its exit code, its
bundle's folder name and the sha256 of each output:

- ``summary.json``, ``events.jsonl``, ``timeline.csv`` and ``timeline.png`` of
  a run bundle, byte for byte (any other file that appears in a bundle is
  hashed too, so a new or missing file is a difference);
- the rows of a sweep (``rows``: its ``parts/`` store, or the one
  ``scenarios.parquet`` older versions wrote, read as one table: the same rows
  compare equal whatever the layout), ``ccdf.png`` byte for byte, and its
  ``summary.json`` without the wall-clock fields ``seconds`` and
  ``load_seconds`` (the rest re-serialised as gridsim writes it, indent 2);
- ``manifest.json[inputs]``: the manifest without ``created_utc`` (a
  timestamp), ``command`` and ``versions``, and with every absolute path cut to
  its ``topologies/...`` or ``attacks/...`` tail (else its file name): what the
  run read (scenario and system file hashes), seed, engine label, horizon. A
  difference here means the inputs differ, not the code that ran on them;
- ``stdout``: what the command printed, without the wall-clock parts: the
  ``results: <folder> (1.6 s)`` line of ``run`` and ``sweep``, and the timing
  of the sweep's first line (``0.4 s (203 scenarios/s) after 4.1 s loading``).
  ``stderr`` (progress, warnings) is kept in the folder, not hashed.

Nothing hashed depends on the wall clock, the machine's paths or the number of
``--jobs``: the runs are independent processes, each with BLAS/OpenMP held to
one thread (``OMP_NUM_THREADS=1`` ...) so that parallel runs neither compete
nor sum in another order. The PNG files are deterministic for one matplotlib
version; ``digests.json`` records the library versions of the run, and
``--compare`` warns when they differ (``--ignore timeline.png --ignore
ccdf.png`` then leaves the plots out).

Left out for time: ``northeast-2003 --flow ac --engine reference`` (over 5
minutes alone). The slowest runs kept, timed alone on an idle machine:
``texas-2021 --engine reference`` (about 80 s), ``northeast-2003 --engine
reference`` (about 50 s), the texas-2021 and northeast-2003 case studies with
every mitigation (about 50 s and 30 s), ``case-study --all`` (about 45 s). The
72 runs of the plan take about 12 minutes of CPU in all: about 6 minutes with
``--jobs 2`` on two idle cores, several times that on a machine busy with
other work (25 minutes beside two test suites).

Usage (old checkout's gridsim, then the new one's, then compare)::

    python3 benchmarks/compare_outputs.py --gridsim /tmp/base/.venv/bin/gridsim --out /tmp/golden/base
    python3 benchmarks/compare_outputs.py --gridsim .venv/bin/gridsim --out /tmp/golden/new
    python3 benchmarks/compare_outputs.py --compare /tmp/golden/base/digests.json /tmp/golden/new/digests.json

``--compare`` prints one row per run (``same``, ``DIFFERS: <files>``, ``only
in A``/``only in B``) and exits 1 if any run differs, 0 if all are identical.
``--only REGEX`` runs the plan's runs whose names match (to look again at the
ones that differ); ``--compare`` then reports runs missing from one side.
The script needs Python 3.11+ and nothing but the standard library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

#: Scenarios that name no system, and the systems (with extra options) they run on here.
GENERIC_SYSTEMS = {
    "random-substations": [("case118-seed7", ["--system", "pandapower:case118", "--seed", "7"]),
                           ("ukraine-2015-seed3", ["--system", "ukraine-2015", "--seed", "3"])],
    "top-load-lines": [("case300", ["--system", "pandapower:case300"])],
}
#: Where a generic scenario not listed above runs.
DEFAULT_GENERIC = [("case118", ["--system", "pandapower:case118"])]
#: Engine variants of every ``gridsim run``: name and options.
ENGINES = [("dc-fast", ["--flow", "dc", "--engine", "fast"]),
           ("ac-fast", ["--flow", "ac", "--engine", "fast"]),
           ("dc-reference", ["--flow", "dc", "--engine", "reference"])]
#: Scenarios also run with ``--flow ac --engine reference`` (slow: not all of them).
AC_REFERENCE = ("ukraine-2015", "industroyer2-2022", "aurora-2007", "ieee118-city")
AC_REF = ("ac-reference", ["--flow", "ac", "--engine", "reference"])
#: Sweeps: name, options, engine variants.
SWEEPS = [
    ("ukraine-2015-substations-k1", ["--system", "ukraine-2015", "--targets", "substations", "--k", "1"],
     ["dc-fast", "dc-reference"]),
    ("case118-branches-k1", ["--system", "pandapower:case118", "--targets", "branches", "--k", "1"],
     ["dc-fast", "ac-fast", "dc-reference"]),
    ("case118-branches-random200-k3-seed1",
     ["--system", "pandapower:case118", "--targets", "branches", "--random", "200", "--k", "3", "--seed", "1"],
     ["dc-fast"]),
]
#: Runs known to be slow, started first so that the parallel runs finish together.
SLOW = ("texas-2021", "northeast-2003", "ieee118-city", "case300", "case118-branches")
#: Keys of a sweep's summary.json that are wall-clock times.
SWEEP_CLOCK_KEYS = ("seconds", "load_seconds")
#: Keys of a manifest that are not behaviour: when, how it was called, which library versions.
MANIFEST_DROPPED = ("created_utc", "command", "versions")
#: Every variable that bounds the threads of numpy's BLAS and of OpenMP.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}

_RESULTS_LINE = re.compile(r"^results: .*$", re.M)
_SWEEP_TIMING = re.compile(r"[\d.,]+ s \([\d.,]+ scenarios/s\) after [\d.,]+ s loading")
_PATH_TAIL = re.compile(r"(?:^|/)((?:topologies|attacks)/.*)$")


@dataclass
class Run:
    """One planned command: its name (and folder), the CLI arguments, and what it writes."""

    name: str
    args: list[str]
    kind: str  # "run" (a bundle), "sweep" (a sweep folder) or "text" (stdout only)

    @property
    def weight(self) -> int:
        """Rough cost, to start the slow runs first."""
        cost = 4 if "reference" in self.name else 2 if ("ac-" in self.name or self.kind == "sweep") else 1
        if self.name.startswith("case-study."):
            cost = 3
        return cost * (5 if any(slow in self.name for slow in SLOW) else 1)


# --- planning ---------------------------------------------------------------------------------------------------

def cli(gridsim: str, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``gridsim ARGS`` and return what it printed."""
    done = subprocess.run([gridsim, *args], capture_output=True, text=True, env=_env(), stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        sys.exit(f"gridsim {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def discover(gridsim: str) -> dict[str, list]:
    """Bundled topologies, scenarios (with their system or None), case studies and mitigations, from the CLI."""
    listing = cli(gridsim, ["list"]).stdout.splitlines()
    topologies, scenarios, section = [], [], None
    for line in listing:
        if not line.startswith(" "):
            section = line.split(" ", 1)[0]
            continue
        if section == "topologies":
            match = re.match(r"^  ([^\s:<]+)\s", line + " ")
            if match:
                topologies.append(match[1])
        elif section == "scenarios":
            match = re.match(r"^  (\S+)\s+\[([^\]]*)\]", line)
            if match:
                scenarios.append((match[1], None if match[2] == "needs --system" else match[2]))
    # ``gridsim case-study`` without a name refuses, naming every case study it knows.
    refusal = cli(gridsim, ["case-study"], check=False)
    known = re.search(r"known: ([^)]*)\)", refusal.stderr + refusal.stdout)
    if not known:
        sys.exit(f"cannot read the case studies from `gridsim case-study`:\n{refusal.stderr}")
    studies = [name.strip() for name in known[1].split(",") if name.strip()]
    mitigations = [line.split()[0] for line in cli(gridsim, ["case-study", "--list-mitigations"]).stdout.splitlines()
                   if line.strip() and not line.startswith(" ")]
    if not scenarios or not topologies:
        sys.exit("`gridsim list` named no scenario or no topology: is this gridsim's output?\n" + "\n".join(listing))
    return {"topologies": topologies, "scenarios": scenarios, "case_studies": studies, "mitigations": mitigations}


def plan(found: dict[str, list]) -> list[Run]:
    """Every run, in a fixed order (the order of ``digests.json``)."""
    runs: list[Run] = []
    for scenario, system in found["scenarios"]:
        targets = [(scenario, [])] if system else [(f"{scenario}@{label}", extra)
                                                   for label, extra in GENERIC_SYSTEMS.get(scenario, DEFAULT_GENERIC)]
        for label, extra in targets:
            engines = ENGINES + ([AC_REF] if scenario in AC_REFERENCE else [])
            for engine, options in engines:
                runs.append(Run(f"run.{label}.{engine}", ["run", scenario, *extra, *options], "run"))
    for study in found["case_studies"]:
        mitigate = [arg for m in found["mitigations"] for arg in ("--mitigate", m)]
        runs.append(Run(f"case-study.{study}", ["case-study", study, "--json", *mitigate], "text"))
    runs.append(Run("case-study.all-text", ["case-study", "--all", "--check"], "text"))
    engines = dict(ENGINES)
    for name, options, variants in SWEEPS:
        for engine in variants:
            runs.append(Run(f"sweep.{name}.{engine}", ["sweep", *options, *engines[engine], "--workers", "1"],
                            "sweep"))
    runs.append(Run("cli.list", ["list"], "text"))
    runs.append(Run("cli.techniques", ["techniques", "--all"], "text"))
    for topology in found["topologies"]:
        runs.append(Run(f"show.{topology}", ["show", topology], "text"))
    return runs


# --- running and hashing ----------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = {**os.environ, **ONE_THREAD, "MPLBACKEND": "Agg"}
    env.pop("PYTHONSTARTUP", None)
    return env


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cut_paths(value):
    """``value`` with every absolute path cut to its ``topologies/...``/``attacks/...`` tail, else its file name."""
    if isinstance(value, dict):
        return {_cut_paths(k): _cut_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_paths(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        tail = _PATH_TAIL.search(value)
        return tail[1] if tail else value.rsplit("/", 1)[-1]
    return value


def _json_digest(data) -> str:
    return sha256((json.dumps(data, indent=2) + "\n").encode("utf-8"))


def manifest_digest(path: Path) -> str:
    """sha256 of the manifest's deterministic part (see the module docstring)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return _json_digest(_cut_paths({k: v for k, v in manifest.items() if k not in MANIFEST_DROPPED}))


def stdout_digest(text: str) -> str:
    """sha256 of what a command printed, without its wall-clock parts."""
    text = _SWEEP_TIMING.sub("<timing>", _RESULTS_LINE.sub("results: <folder>", text))
    return sha256(text.encode("utf-8"))


def bundle_digests(run: Run, folder: Path) -> tuple[str | None, dict[str, str], dict | None]:
    """The bundle's folder name, the digests of its files, and the library versions its manifest names."""
    bundles = sorted(p for p in (folder / "bundle").glob("*") if p.is_dir()) if (folder / "bundle").is_dir() else []
    if len(bundles) != 1:
        return None, {"bundle": f"{len(bundles)} bundle folders"}, None
    bundle, files, versions = bundles[0], {}, None
    for path in sorted(bundle.iterdir()):
        try:
            if path.name.startswith("."):
                continue  # the sweep store's lock: it names a pid
            if run.kind == "sweep" and path.name in ("parts", "scenarios.parquet"):
                files["rows"] = _json_digest(pq.read_table(path).to_pydict())
            elif path.name == "manifest.json":
                files["manifest.json[inputs]"] = manifest_digest(path)
                versions = json.loads(path.read_text(encoding="utf-8")).get("versions")
            elif run.kind == "sweep" and path.name == "summary.json":
                summary = json.loads(path.read_text(encoding="utf-8"))
                files["summary.json[no clock]"] = _json_digest({k: v for k, v in summary.items()
                                                                if k not in SWEEP_CLOCK_KEYS})
            elif path.is_file():
                files[path.name] = sha256(path.read_bytes())
        except (ValueError, AttributeError) as exc:  # not the JSON object gridsim writes: a difference, not a crash
            files[path.name] = f"unreadable ({exc.__class__.__name__}): {sha256(path.read_bytes())}"
    return bundle.name, files, versions


def execute(gridsim: str, run: Run, out: Path, timeout: float) -> dict:
    """Run one planned command in its own folder and return its digests entry."""
    folder = out / run.name
    folder.mkdir(parents=True)
    args = [*run.args, "--out", "bundle"] if run.kind in ("run", "sweep") else list(run.args)
    started = time.perf_counter()
    try:
        done = subprocess.run([gridsim, *args], cwd=folder, capture_output=True, env=_env(),
                              stdin=subprocess.DEVNULL, timeout=timeout)
        code: int | str = done.returncode
        stdout, stderr = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout, stderr = f"timeout after {timeout:g} s", exc.stdout or b"", exc.stderr or b""
    seconds = round(time.perf_counter() - started, 1)
    (folder / "stdout.txt").write_bytes(stdout)
    (folder / "stderr.txt").write_bytes(stderr)
    entry = {"command": ["gridsim", *args], "exit_code": code, "seconds": seconds, "bundle": None, "files": {}}
    if run.kind in ("run", "sweep"):
        entry["bundle"], entry["files"], entry["versions"] = bundle_digests(run, folder)
    entry["files"]["stdout"] = stdout_digest(stdout.decode("utf-8", errors="replace"))
    return entry


def run_all(gridsim: str, out: Path, jobs: int, only: str | None, timeout: float) -> int:
    resolved = shutil.which(gridsim)
    if resolved is None:
        sys.exit(f"no gridsim executable at {gridsim!r}")
    resolved = os.path.abspath(resolved)  # each run has its own working folder
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: give a new folder (bundles would pile up beside the old ones)")
    out.mkdir(parents=True, exist_ok=True)
    version = cli(resolved, ["--version"]).stdout.strip()
    runs = plan(discover(resolved))
    if only:
        runs = [run for run in runs if re.search(only, run.name)]
    print(f"{version} ({resolved}): {len(runs)} runs into {out}, {jobs} at a time", file=sys.stderr)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    order = sorted(runs, key=lambda run: -run.weight)  # stable: the plan's order among equals
    lock = threading.Lock()

    def one(run: Run) -> None:
        entry = execute(resolved, run, out, timeout)
        note = "" if entry["exit_code"] == 0 else f"  exit {entry['exit_code']}"
        with lock:
            results[run.name] = entry
            print(f"  [{len(results):>3}/{len(runs)}] {run.name:<60} {entry['seconds']:7.1f} s{note}",
                  file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, order))
    total = round(time.perf_counter() - started, 1)
    versions = next((e["versions"] for e in results.values() if e.get("versions")), None)
    ordered = {run.name: {k: v for k, v in results[run.name].items() if k != "versions"} for run in runs}
    digests = {"gridsim": resolved, "version": version, "versions": versions, "jobs": jobs, "total_seconds": total,
               "runs": ordered}
    (out / "digests.json").write_text(json.dumps(digests, indent=2) + "\n", encoding="utf-8")
    failed = [name for name, e in ordered.items() if e["exit_code"] != 0]
    print(f"{len(runs)} runs in {total:.1f} s; digests: {out / 'digests.json'}", file=sys.stderr)
    if failed:
        print(f"non-zero exit ({len(failed)}): {', '.join(failed)}", file=sys.stderr)
    return 0


# --- comparing --------------------------------------------------------------------------------------------------

def compare(path_a: Path, path_b: Path, ignore: list[str]) -> int:
    """Print which runs differ between two digests.json; 1 if any does, else 0."""
    a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (path_a, path_b))
    print(f"A: {path_a}  ({a.get('version')}, {a.get('gridsim')})")
    print(f"B: {path_b}  ({b.get('version')}, {b.get('gridsim')})")
    va, vb = a.get("versions") or {}, b.get("versions") or {}
    changed = sorted(k for k in set(va) | set(vb) if k != "gridsim" and va.get(k) != vb.get(k))
    if changed:
        print("warning: library versions differ (outputs may differ for that reason alone): "
              + ", ".join(f"{k} {va.get(k)} / {vb.get(k)}" for k in changed))
    runs_a, runs_b = a["runs"], b["runs"]
    names = list(runs_a) + [n for n in runs_b if n not in runs_a]
    width = max(len(n) for n in names)
    rows, differing = [], 0
    for name in names:
        if name not in runs_b or name not in runs_a:
            status = "only in A" if name in runs_a else "only in B"
        else:
            ra, rb = runs_a[name], runs_b[name]
            diffs = [key for key in ("exit_code", "bundle") if ra.get(key) != rb.get(key)]
            files = sorted(set(ra["files"]) | set(rb["files"]))
            diffs += [f for f in files if f not in ignore and ra["files"].get(f) != rb["files"].get(f)]
            status = "same" if not diffs else "DIFFERS: " + ", ".join(diffs)
        differing += status != "same"
        rows.append(f"{name:<{width}}  {status}")
    print(f"{'run':<{width}}  result")
    print("\n".join(rows))
    print(f"{len(names) - differing} of {len(names)} runs identical" + (f"; {differing} differ" if differing else "")
          + (f" (ignoring {', '.join(ignore)})" if ignore else ""))
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="See the module docstring for what is run and hashed.")
    parser.add_argument("--gridsim", default="gridsim", help="gridsim executable (default: gridsim on PATH)")
    parser.add_argument("--out", type=Path, help="empty or new folder for the runs and digests.json")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time (default: 2, or 1 on one core)")
    parser.add_argument("--only", metavar="REGEX", help="run only the planned runs whose names match")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed to one run (default 1200)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="compare two digests.json instead of running")
    parser.add_argument("--ignore", action="append", default=[], metavar="FILE",
                        help="with --compare: leave this output out (e.g. timeline.png); repeatable")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare, args.ignore)
    if args.out is None:
        parser.error("--out DIR is required (or --compare A.json B.json)")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return run_all(args.gridsim, args.out, args.jobs, args.only, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
