"""``gridsim sweep``: N-k or Monte Carlo attacks on one system, rows streamed to Parquet, a summary printed."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from gridsim.cli.common import UserError, exit_on_sigterm, reports_errors
from gridsim.sweep.scenarios import TARGETS

_SINGULAR = {"branches": "branch", "lines": "line", "trafos": "transformer", "substations": "substation",
             "gens": "generator"}
#: Past this many scenarios an exhaustive sweep is refused: ask for a Monte Carlo sample instead.
MAX_SCENARIOS = 100_000_000


@click.command("sweep")
@click.option("--system", "system_spec", metavar="SYSTEM", required=True,
              help="Topology folder, system.toml, bundled name or pandapower:<case>.")
@click.option("--targets", type=click.Choice(TARGETS), default="branches", show_default=True,
              help="What each scenario takes out: branches (tripped), substations (breakers opened) or gens.")
@click.option("--k", "k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Elements taken out together in each scenario.")
@click.option("--random", "random", type=click.IntRange(min=1), default=None, metavar="N",
              help="Monte Carlo: N random k-subsets instead of every one.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the Monte Carlo draws.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores; small sweeps run in this process).")
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast", show_default=True,
              help="Cascade engine.")
@click.option("--flow", type=click.Choice(["dc", "ac"]), default="dc", show_default=True,
              help="Power flow of the cascade.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives the sweep's folder.")
@click.option("--no-plot", is_flag=True, help="Skip ccdf.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@reports_errors
def sweep_command(system_spec: str, targets: str, k: int, random: int | None, seed: int, workers: int | None,
                  engine: str, flow: str, out_dir: Path, no_plot: bool, as_json: bool) -> None:
    """Attack SYSTEM with every k-subset of its branches, substations or generators (or N random ones).

    \b
    Examples:
      gridsim sweep --system pandapower:case2869pegase --targets branches --k 1
      gridsim sweep --system topologies/ukraine-2015 --targets substations --k 2
      gridsim sweep --system pandapower:case118 --targets branches --random 10000 --k 3 --seed 1

    Writes scenarios.parquet (one row per scenario), summary.json, manifest.json and
    ccdf.png under --out, and prints the blackout-size distribution and the elements
    whose loss does the most harm.
    """
    from gridsim.engine.fast import fast_engine
    from gridsim.model.system import load_system
    from gridsim.results import check_writable, staged_folder
    from gridsim.sweep import SweepSettings, candidates, count_scenarios, run_sweep

    started = time.perf_counter()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    check_writable(out_dir)
    system = load_system(system_spec)
    n_candidates = len(candidates(system, fast_engine(system).grid, targets))
    if k > n_candidates:
        raise UserError(f"--k {k}: {system.name} has only {n_candidates} {targets} to attack")
    total = count_scenarios(n_candidates, k, random)
    if total > MAX_SCENARIOS:
        raise UserError(f"--k {k} over {n_candidates} {targets} is {total:,} scenarios; "
                        f"sample them with --random N (e.g. --random 100000)")
    settings = SweepSettings(targets=targets, k=k, random=random, seed=seed,
                             workers=workers or os.cpu_count() or 1, engine=engine, flow=flow)
    loaded = time.perf_counter()
    with staged_folder(out_dir, _folder_name(system.name, settings)) as stage:
        with _ParquetSink(stage.path / "scenarios.parquet") as sink, _progress(total) as progress:
            accumulator = run_sweep(system, settings, sink=sink, progress=progress)
        summary = accumulator.summary()
        summary["seconds"] = round(time.perf_counter() - loaded, 3)
        summary["load_seconds"] = round(loaded - started, 3)
        _write_json(stage.path / "summary.json", summary)
        _write_json(stage.path / "manifest.json", _manifest(system, settings))
        if not no_plot:
            from gridsim.report import plot_ccdf

            plot_ccdf(accumulator, stage.path / "ccdf.png")
    if as_json:
        click.echo(json.dumps({**summary, "folder": str(stage.final)}, indent=2))
    else:
        click.echo(format_sweep(summary))
        click.echo(f"results: {stage.final}")


def _folder_name(system: str, settings) -> str:
    name = f"sweep_{system}_{settings.targets}_k{settings.k}"
    if settings.random is not None:
        name += f"_mc{settings.random}_seed{settings.seed}"
    if settings.engine != "fast" or settings.flow != "dc":
        name += f"_{settings.engine}-{settings.flow}"
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)


def _manifest(system, settings) -> dict:
    from datetime import UTC, datetime

    from gridsim.results import versions

    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "settings": {"targets": settings.targets, "k": settings.k, "random": settings.random,
                     "seed": settings.seed, "engine": settings.engine, "flow": settings.flow},
        "inputs": {"system": {"name": system.name, "power_source": system.source, "files": system.input_files,
                              "ratings_set_by_gridsim": system.rating_notes}},
        "versions": {**versions(), "pyarrow": _pyarrow_version()},
    }


def _pyarrow_version() -> str:
    import pyarrow

    return pyarrow.__version__


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


class _ParquetSink:
    """Rows to a Parquet file, a row group per chunk: memory stays flat however long the sweep."""

    def __init__(self, path: Path):
        import pyarrow as pa

        self.path = path
        self.schema = pa.schema([("scenario", pa.int64()), ("targets", pa.list_(pa.string())),
                                 ("mw_lost", pa.float64()), ("pct_lost", pa.float64()),
                                 ("customers_out", pa.float64()), ("cascade_depth", pa.int32()),
                                 ("elements_tripped", pa.int32()), ("tripped", pa.list_(pa.string())),
                                 ("islands", pa.int32())])
        self.writer = None

    def __enter__(self):
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        return self

    def __call__(self, columns: dict) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.table({name: columns[name] for name in self.schema.names}, schema=self.schema))

    def __exit__(self, *exc) -> None:
        self.writer.close()


class _progress:  # noqa: N801 - used as a context manager, like click's own
    """A bar with rate and ETA on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None
        self.started = time.perf_counter()
        self.done = 0

    def __enter__(self):
        if sys.stderr.isatty():
            self.bar = click.progressbar(length=self.total, label="sweeping", file=sys.stderr, show_pos=True,
                                         item_show_func=self._rate)
            self.bar.__enter__()
        return self

    def _rate(self, _item) -> str:
        elapsed = time.perf_counter() - self.started
        return f"{self.done / elapsed:,.0f} scenarios/s" if elapsed > 0 and self.done else ""

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n, self.done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def format_sweep(s: dict) -> str:
    """The printed summary of a sweep."""
    what = s["targets"] if s["k"] > 1 else _SINGULAR[s["targets"]]
    how = (f"{s['scenarios']:,} random sets of {s['k']} {what} (seed {s['seed']})" if s["mode"] == "monte-carlo"
           else f"{s['scenarios']:,} scenarios, every " + (f"set of {s['k']} {what}" if s["k"] > 1 else what))
    rate = s["scenarios"] / s["seconds"] if s.get("seconds") else 0.0
    mw, customers = s["mw_lost"], s["customers_out"]
    share = 100.0 * s["scenarios_with_load_lost"] / s["scenarios"] if s["scenarios"] else 0.0
    lines = [
        f"sweep of {s['system']}: {how}; {s['engine']} engine, {s['workers']} worker(s), "
        f"{s['seconds']:.1f} s ({rate:,.0f} scenarios/s) after {s.get('load_seconds', 0):.1f} s loading",
        f"  load lost in          {s['scenarios_with_load_lost']:,} scenarios ({share:.1f} %); "
        f"overload trips in {s['scenarios_with_overload_trips']:,}; deepest cascade {s['max_cascade_depth']}",
        f"  MW lost               median {mw['p50']:,.1f}, p90 {mw['p90']:,.1f}, p99 {mw['p99']:,.1f}, "
        f"max {mw['max']:,.1f} (of {s['base_demand_mw']:,.1f} MW)",
        f"  customers out         median {customers['p50']:,.0f}, p90 {customers['p90']:,.0f}, "
        f"max {customers['max']:,.0f}",
        "  blackout size CCDF    " + ", ".join(
            f"P(>= {100 * p['fraction_of_demand']:g} %) = {p['probability']:.4g}" for p in s["ccdf"]),
    ]
    if s["most_harmful"]:
        lines.append("  most harmful          mean MW lost when taken out (worst; scenarios)")
        for row in s["most_harmful"]:
            lines.append(f"    {row['element']:<28} {row['mean_mw_lost']:>10,.1f} MW  "
                         f"({row['max_mw_lost']:,.1f}; {row['scenarios']:,})")
    if s["most_tripped"]:
        lines.append("  tripped most often    " + ", ".join(
            f"{row['element']} ({row['scenarios']:,})" for row in s["most_tripped"][:5]))
    return "\n".join(lines)
