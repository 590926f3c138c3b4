"""``gridsim sweep``: N-k or Monte Carlo attacks on one system, rows streamed to Parquet, a summary printed."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from gridsim.analysis.sweep.runner import SweepPlan
from gridsim.analysis.sweep.scenarios import TARGETS
from gridsim.cli.common import UserError, exits_cleanly_on_sigterm, reports_errors

_SINGULAR = {"branches": "branch", "lines": "line", "trafos": "transformer", "substations": "substation",
             "gens": "generator"}
#: Past this many scenarios a sweep is refused (the summary keeps a few figures per scenario in memory):
#: an exhaustive one is asked to sample, a Monte Carlo one to draw fewer.
MAX_SCENARIOS = 100_000_000


@click.command("sweep")
@click.option("--system", "system_spec", metavar="SYSTEM", default=None,
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
              show_default=True, help="Folder that receives the sweep's folder (a sweep already there is resumed).")
@click.option("--resume", "resume", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="FOLDER", help="Finish the sweep stored in FOLDER, with the system and settings it records.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster: tcp://HOST:PORT of a running scheduler, or 'local' to start one here "
                   "(pip install 'gridsim[dask]').")
@click.option("--part-size", type=click.IntRange(min=1), default=None, metavar="N",
              help="Scenarios per stored part (default: a 64th of the sweep, at most 16,384 on the fast DC engine, "
                   "fewer on slower ones).")
@click.option("--no-plot", is_flag=True, help="Skip ccdf.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
@reports_errors
@exits_cleanly_on_sigterm
def sweep_command(ctx: click.Context, system_spec: str | None, targets: str, k: int, random: int | None, seed: int,
                  workers: int | None, engine: str, flow: str, out_dir: Path, resume: Path | None,
                  scheduler: str | None, part_size: int | None, no_plot: bool, as_json: bool) -> None:
    """Attack SYSTEM with every k-subset of its branches, substations or generators (or N random ones).

    \b
    Examples:
      gridsim sweep --system pandapower:case2869pegase --targets branches --k 1
      gridsim sweep --system topologies/ukraine-2015 --targets substations --k 2
      gridsim sweep --system pandapower:case118 --targets branches --random 10000 --k 3 --seed 1
      gridsim sweep --resume results/sweep_pandapower-case2869pegase_branches_k2
      gridsim sweep --system pandapower:case2869pegase --k 2 --scheduler tcp://10.0.0.5:8786

    Writes a resumable store under --out: manifest.json, parts/ (one Parquet file per
    part of the scenarios, one row per scenario), then summary.json and ccdf.png; prints
    the blackout-size distribution and the elements whose loss does the most harm.
    Killed, it keeps every finished part: run the same command again (or --resume) to
    run only the rest.
    """
    from gridsim.analysis.sweep import SweepSettings, candidates, count_scenarios
    from gridsim.analysis.sweep.folder import sweep_to_folder
    from gridsim.loading import load_system
    from gridsim.power.fast import fast_engine
    from gridsim.results.staging import check_writable

    started = time.perf_counter()
    folder = None
    if resume is not None:
        system_spec, targets, k, random, seed, engine, flow, part_size = _resumed(ctx, resume)
        folder, out_dir = resume, resume.parent
    elif system_spec is None:
        raise UserError("give --system SYSTEM (or --resume FOLDER to finish a stored sweep)")
    if random is not None and random > MAX_SCENARIOS:  # known before the (slow) loading of the system
        raise UserError(f"--random {random:,}: a sweep runs at most {MAX_SCENARIOS:,} scenarios; "
                        f"draw fewer (--random {MAX_SCENARIOS} or less)")
    check_writable(out_dir)
    system = load_system(system_spec)
    n_candidates = len(candidates(system, fast_engine(system).grid, targets))
    if k > n_candidates:
        raise UserError(f"--k {k}: {system.name} has only {n_candidates} {targets} to attack")
    total = count_scenarios(n_candidates, k, random)
    if total > MAX_SCENARIOS:
        raise UserError(f"--k {k} over {n_candidates} {targets} is {total:,} scenarios, more than the "
                        f"{MAX_SCENARIOS:,} a sweep runs; sample them with --random N (e.g. --random 100000)")
    settings = SweepSettings(targets=targets, k=k, random=random, seed=seed,
                             workers=workers or os.cpu_count() or 1, engine=engine, flow=flow)
    loaded = time.perf_counter()
    stored: list[Path] = []
    with _progress(total) as progress:
        def start(run) -> None:
            stored.append(run.folder)
            progress.total = run.scenarios_left
            progress.echo(format_start(system.name, settings, total, run, estimate=scheduler is None))

        try:
            summary, folder = sweep_to_folder(system, settings, out_dir, progress=progress, plan=progress.plan,
                                              start=start, plot=not no_plot, load_seconds=loaded - started,
                                              spec=_recorded_spec(system_spec), part_size=part_size, folder=folder,
                                              scheduler=scheduler)
        except (KeyboardInterrupt, SystemExit):
            progress.echo(_interrupted(stored[0] if stored else None))
            raise
    if as_json:
        click.echo(json.dumps({**summary, "folder": str(folder)}, indent=2))
    else:
        click.echo(format_sweep(summary))
        click.echo(f"results: {folder}")


@click.command("sweep-summary")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-plot", is_flag=True, help="Skip ccdf.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@reports_errors
def sweep_summary_command(folder: Path, no_plot: bool, as_json: bool) -> None:
    """Summarise the sweep stored in FOLDER again, from its parts (finished or not), without running anything.

    \b
    Example:
      gridsim sweep-summary results/sweep_pandapower-case118_branches_k2

    Rewrites summary.json and ccdf.png from the stored rows, a part at a time,
    and prints the summary. A sweep still running or killed half-way is
    summarised over the parts it has finished, and says so.
    """
    from gridsim.analysis.sweep.folder import resummarise

    summary = resummarise(folder, plot=not no_plot)
    if as_json:
        click.echo(json.dumps({**summary, "folder": str(folder)}, indent=2))
    else:
        click.echo(format_sweep(summary))
        click.echo(f"results: {folder}")


#: Options a resumed sweep takes from its manifest, not from the command line.
_RECORDED = ("system_spec", "targets", "k", "random", "seed", "engine", "flow", "part_size")


def _resumed(ctx: click.Context, folder: Path) -> tuple:
    """The system and settings a stored sweep records; refuses options that would contradict them."""
    from gridsim.results.sweep import read_manifest

    given = [name for name in (*_RECORDED, "out_dir")
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        names = {"system_spec": "system", "out_dir": "out"}
        flags = ", ".join("--" + names.get(n, n.replace("_", "-")) for n in given)
        raise UserError(f"--resume {folder}: the sweep's system and settings come from its manifest; drop {flags}")
    manifest = read_manifest(folder)
    s = manifest["settings"]
    return (manifest["system_spec"], s["targets"], s["k"], s["random"], s["seed"] or 0, s["engine"], s["flow"],
            manifest["part_size"])


def _recorded_spec(spec: str) -> str:
    """The system as the manifest records it: a file or folder by its absolute path, so ``--resume`` works anywhere."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def _interrupted(folder: Path | None) -> str:
    """What a stopped sweep says: what it kept, and how to finish it."""
    from gridsim.results.sweep import SweepStore, read_manifest

    if folder is None:
        return "interrupted before the sweep's store was opened: nothing was stored"
    store = SweepStore(folder, read_manifest(folder), None)
    parts, kept = len(store.manifest["parts"]), len(store.done_parts())
    return (f"interrupted: {kept:,} of {parts:,} parts are kept in {folder}; run the same command again, or "
            f"gridsim sweep --resume {folder}, to run the rest")


class _progress:  # noqa: N801 - used as a context manager, like click's own
    """Progress of a sweep on stderr: a bar with rate and ETA on a terminal, plain lines otherwise.

    Off a terminal (a log, a batch job, ``2> file``) a bar would be one
    endless line of carriage returns, so a line is written instead whenever
    another ``step`` of the scenarios is done or ``max_interval`` seconds have
    passed, but never sooner than ``min_interval`` seconds after the last.
    ``clock`` and ``tty`` are there for the tests.
    """

    def __init__(self, total: int, *, clock: Callable[[], float] = time.monotonic, tty: bool | None = None,
                 echo: Callable[[str], None] | None = None, min_interval: float = 10.0,
                 max_interval: float = 60.0, step: float = 0.05):
        self.total, self.clock = total, clock
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.echo = echo or (lambda line: click.echo(line, err=True))
        self.min_interval, self.max_interval, self.step = min_interval, max_interval, step
        self.bar = None
        self.done = 0
        self.started = self.last_line = clock()
        self.last_step = 0
        self.measured_from: tuple[int, float] | None = None  # (scenarios, time) the rate is counted from
        self.first_rate: float | None = None

    def __enter__(self):
        return self

    def plan(self, plan: SweepPlan) -> None:
        """The first chunk is timed: print the estimate, and count the rate from here on."""
        self.measured_from = (plan.timed, self.clock())
        self.first_rate = plan.rate * plan.workers
        if plan.total > plan.timed:
            self.echo(format_estimate(plan))

    def rate(self) -> float | None:
        """Scenarios per second since the first chunk (or since the start, without a plan)."""
        base, since = self.measured_from or (0, self.started)
        elapsed = self.clock() - since
        if self.done > base and elapsed > 0:
            return (self.done - base) / elapsed
        return self.first_rate

    def _rate(self, _item) -> str:
        rate = self.rate()
        return f"{rate:,.0f} scenarios/s" if rate else ""

    def __call__(self, n: int) -> None:
        self.done += n
        if self.tty:
            if self.bar is None:  # only now: the lines before (count, estimate) are not drawn over
                self.bar = click.progressbar(length=self.total, label="sweeping", file=sys.stderr, show_pos=True,
                                             item_show_func=self._rate)
                self.bar.__enter__()
            self.bar.update(n, self.done)
            return
        now = self.clock()
        since = now - self.last_line
        step = math.floor(self.done / self.total / self.step + 1e-9) if self.total and self.step > 0 else 0
        if self.done < self.total and since >= self.min_interval and (
                step > self.last_step or since >= self.max_interval):
            self.echo(format_progress(self.done, self.total, self.rate()))
            self.last_line, self.last_step = now, step

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def format_duration(seconds: float) -> str:
    """A duration for people: ``45 s``, ``3 min 20 s``, ``2 h 05 min``, ``3 d 4 h``."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "under a second"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 48 * 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def format_start(system: str, settings, total: int, run=None, *, estimate: bool = True) -> str:
    """The line printed before a sweep starts: what it runs, how many scenarios, and what a store already held."""
    from gridsim.analysis.sweep import runner

    what = _describe(settings.targets, settings.k, settings.random is not None, settings.seed, total)
    left = total if run is None else run.scenarios_left
    line = f"sweeping {system}: {what}"
    if run is not None and run.already:
        line += (f"; resuming {run.folder}: {run.already:,} of {run.parts:,} parts done, "
                 f"{left:,} scenarios left")
    return line + ("; estimate after the first chunk" if estimate and left > runner.CHUNK else "")


def format_estimate(plan: SweepPlan) -> str:
    """The line printed once the first chunk is timed: how long the rest should take."""
    workers = f"{plan.workers} worker{'s' if plan.workers != 1 else ''}"
    left = format_duration(plan.estimate_s)
    return (f"  estimate: {'' if left.startswith('under') else 'about '}{left} more with {workers} (the first "
            f"{plan.timed:,} scenarios ran at {plan.rate:,.0f}/s in this process)")


def format_progress(done: int, total: int, rate: float | None) -> str:
    """A progress line for a log: scenarios done, percent, rate and time left."""
    share = 100.0 * done / total if total else 100.0
    if rate:
        tail = f"{rate:,.0f} scenarios/s, ETA {format_duration((total - done) / rate)}"
    else:
        tail = "rate not measured yet"
    return f"  {done:,} of {total:,} scenarios ({share:.1f} %), {tail}"


def _describe(targets: str, k: int, monte_carlo: bool, seed: int, scenarios: int) -> str:
    what = targets if k > 1 else _SINGULAR[targets]
    if monte_carlo:
        return f"{scenarios:,} random sets of {k} {what} (seed {seed})"
    return f"{scenarios:,} scenarios, every " + (f"set of {k} {what}" if k > 1 else what)


def format_ratings(ratings: dict) -> str | None:
    """The caveat line when gridsim set branch ratings itself, or None when every rating came from the grid."""
    derived, raised = ratings.get("derived", 0), ratings.get("raised", 0)
    if not derived and not raised:
        return None
    of = f" of {ratings['branches']:,}" if ratings.get("branches") else ""
    parts = []
    if derived:
        parts.append(f"{derived:,}{of} derived from base-case flows ((1 + rating_margin) x flow; the grid data "
                     "has none)")
    if raised:
        parts.append(f"{raised:,}{of if not derived else ''} raised to (1 + rating_margin) x base-case flow "
                     "(the base case overloads them)")
    return (f"  caveat                branch ratings: {' and '.join(parts)}: the blackout sizes measure that "
            "rule, not the grid's protection")


def format_sweep(s: dict) -> str:
    """The printed summary of a sweep."""
    how = _describe(s["targets"], s["k"], s["mode"] == "monte-carlo", s["seed"], s["scenarios"])
    rate = s.get("scenarios_run", s["scenarios"]) / s["seconds"] if s.get("seconds") else 0.0
    mw, customers = s["mw_lost"], s["customers_out"]
    share = 100.0 * s["scenarios_with_load_lost"] / s["scenarios"] if s["scenarios"] else 0.0
    partial = s.get("parts_done", 0) < s.get("parts", 0)
    timing = (f"{s['seconds']:.1f} s ({rate:,.0f} scenarios/s) after {s.get('load_seconds', 0):.1f} s loading"
              if "seconds" in s else "not timed")
    if s.get("parts_resumed"):
        timing += f"; {s['parts_resumed']:,} of {s['parts']:,} parts were stored already"
    where = f"Dask cluster {s['scheduler']}" if s.get("scheduler") else f"{s['workers']} worker(s)"
    lines = [
        f"sweep of {s['system']}: {how}; {s['engine']} engine, {where}, {timing}",
        *([f"  partial               {s['parts_done']:,} of {s['parts']:,} parts stored: the figures cover their "
           f"{s['scenarios']:,} scenarios only"] if partial else []),
        *filter(None, [format_ratings(s.get("ratings", {}))]),
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
