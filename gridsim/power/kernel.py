"""The DC cascade loop compiled: one cascade of the fast engine in tens of microseconds, not a millisecond.

:meth:`gridsim.power.fast.FastCascade.run_rows` runs the cascade rules on
arrays, but each generation crosses a dozen numpy and scipy calls (islands,
balance, injections, angles, overloads), and on a grid of a hundred buses
that dispatch, not the arithmetic, is the cost of a cascade. :class:`DcKernel`
runs the same DC rules (docs/PROPAGATION.md, section 2: islands, balance,
the DC flow, protection, the fixed point) in one function compiled by numba,
on arrays taken once from the :class:`~gridsim.power.compiled.CompiledGrid`,
and gives back what a sweep needs (served load, load states, trips with
their generations and ratios, depth, islands) or the whole
:class:`~gridsim.power.contract.CascadeResult`.

The angles. The untouched grid's reduced ``B`` is inverted once, densely
(``X``: the inverse :class:`gridsim.power.dcsolver.BaseSolver` keeps for
small grids; from its sparse LU, refined once, for larger ones, up to
:data:`DENSE_ROWS` rows). Every generation's angles follow from ``X`` by
one Sherman-Morrison-Woodbury update of rank ``|O| + |G|``: ``O`` the
branches of the base now out (attacked or tripped), ``G`` one *grounding*
(``w e eᵀ`` added to ``B``) at the reference of each energised island that
holds no reference of the base. An island grounded at its one reference has
the angles of the island held there, shifted by a constant: the same flows.
A dark piece keeps one of its branches out and hangs from it with no
injection, carrying no flow, so it costs no column. The right-hand side is
the base's ``X q₀`` plus the columns of the rows whose injection changed.
A split thus costs a few columns of ``X``, whatever the size of the piece
split off, where :class:`~gridsim.power.dcsolver.BaseSolver` takes a Schur
complement of every row split (up to 64) and solves the rest afresh.

The update is not backward stable: ``X``'s own rounding, amplified by an
update of high rank, leaves a residual on every row. In a DC network an
injection error ``r`` moves no flow by more than ``|r|₁``, so the residual
(cheap, from the branches) bounds every flow's error; while it is above
:data:`TOL_MW` and above :data:`ROUNDING` times its own rounding, the angles
are refined from its largest entries.

Where the update does not apply (an island of the base lost its reference,
an island holds two references, or the update's rank passes
:data:`RANK_ROWS`), each energised island is solved afresh by a dense LU, if
none has more than :data:`FRESH_ROWS` rows. Beyond that the kernel declines:
:meth:`DcKernel.run` says so (``handled`` False, with the ``reason``), with
the generations it ran and the branches out when it stopped
(``resume_rows``); the Python path runs the rest from there
(:meth:`DcKernel.continued` joins the two), or the whole cascade. Where
numba is not installed (:data:`AVAILABLE`) the kernel runs nothing. It
never guesses.

The rules here are those of :mod:`gridsim.power.fast` (the dispatch of
:func:`gridsim.power.fast._dispatch`, the balance of ``FastCascade._balance``,
the protection and fixed point of ``FastCascade.run_rows``), written as loops;
``tests/test_kernel.py`` holds the two equal element by element. Once the
fast engine's DC path calls this kernel, the rules live here alone.

numba is optional and imported on first use (about 0.3 s), not with this
module: its functions are compiled with ``cache=True``, so a worker process
loads the compiled code from disk. A kernel pickles without its inverse
(rebuilt on first use, 2 to 4 s for 2,869 buses), and imports neither
pandapower nor lightsim2grid. After its first cascade a kernel may run in
several threads at once: its functions release the GIL and share only
read-only arrays.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from gridsim.power.compiled import CompiledGrid
from gridsim.power.contract import LOAD_ISLAND, LOAD_SERVED, LOAD_SHED, TRIP_OVERLOAD, CascadeResult, Trip, check_flow
from gridsim.power.dcsolver import BaseSolver

__all__ = ["AVAILABLE", "DENSE_ROWS", "FRESH_ROWS", "RANK_ROWS", "ROUNDING", "STATE_NAMES", "TOL_MW", "DcKernel",
           "KernelOutcome"]

#: Whether numba is installed (found, not imported: it is imported when a kernel first runs).
AVAILABLE = importlib.util.find_spec("numba") is not None
#: Most rows of a grid whose base inverse is kept densely (8 bytes a cell: 4,096 rows hold 128 MiB).
DENSE_ROWS = 4096
#: Most rows of one island solved afresh by a dense LU (about a millisecond at 200).
FRESH_ROWS = 200
#: Most columns of one Woodbury update (outages of the base plus islands split off): beyond, the cascade is
#: declined part-way (its generations so far handed over), which on case2869pegase costs less than updates of
#: higher rank, each refined by hundreds of columns of the inverse.
RANK_ROWS = 100
#: The flows of an update are refined until their error is bounded by this (MW) ...
TOL_MW = 1e-9
#: ... or until the residual is within this many times its own rounding (as small as floating point makes it).
ROUNDING = 32.0
#: The load state codes of :class:`KernelOutcome`, as the contract names them.
STATE_NAMES = np.array([LOAD_SERVED, LOAD_ISLAND, LOAD_SHED], dtype=object)

_SERVED, _ISLAND, _SHED = 0, 1, 2
_EPS = 1e-9
_BINS = 64  # binary orders of magnitude the refinement tells apart
_REFINE_STEPS = 4  # refinement steps before an update is declined as ill-conditioned
# Status codes of one cascade (0: handled) and, internally, a Woodbury update that does not apply.
_OK, _FRESH_TOO_LARGE, _NO_REFERENCE, _SINGULAR, _BAD_INDEX, _ILL_CONDITIONED, _NEEDS_FRESH = 0, 1, 2, 3, 4, 5, -1
_REASONS = {
    _FRESH_TOO_LARGE: "beyond the base's update (its rank above rank_rows, a reference lost, two in an island), and "
                      "an island with more than fresh_rows rows to solve afresh",
    _NO_REFERENCE: "an energised island without a reference",
    _SINGULAR: "a singular system",
    _BAD_INDEX: "a branch row or generator position out of range",
    _ILL_CONDITIONED: "an update too ill-conditioned to refine",
}


@dataclass(frozen=True)
class KernelOutcome:
    """One cascade of :meth:`DcKernel.run`: what a sweep needs, or why the kernel declined it.

    Attributes
    ----------
    reason : str or None
        None: the kernel ran the cascade. Otherwise why it did not: the
        caller runs :meth:`~gridsim.power.fast.FastCascade.run_rows` (from
        ``resume_rows`` when set), and only the trips and depth of the
        generations the kernel ran are filled.
    served_mw, demand_mw : numpy.ndarray
        Per load (``net.load.index`` order).
    state : numpy.ndarray
        Per load, int8: 0 served, 1 island, 2 shed (:data:`STATE_NAMES`).
    trip_positions, trip_generations, trip_ratios : numpy.ndarray
        Each trip in order: its watched branch (lines, then transformers),
        its generation and its flow over its rating.
    depth, islands : int
        The last generation; the islands of pandapower's buses at the end.
    watched_flow_mva : numpy.ndarray
        ``|P|`` of each watched branch in the last generation.
    bus_energised : numpy.ndarray
        Per pandapower bus (``net.bus.index`` order): in an island that holds
        a source and serves load.
    resume_rows : numpy.ndarray or None
        Declined part-way: the branch rows out (the attack's and the trips')
        when the kernel stopped, after ``depth`` generations whose trips the
        outcome holds. ``run_rows(resume_rows, ...)`` runs the rest of the
        cascade (the rules carry nothing else from one generation to the
        next); :meth:`DcKernel.continued` joins the two. None: handled, or
        not started.
    """

    reason: str | None
    served_mw: np.ndarray
    demand_mw: np.ndarray
    state: np.ndarray
    trip_positions: np.ndarray
    trip_generations: np.ndarray
    trip_ratios: np.ndarray
    depth: int
    islands: int
    watched_flow_mva: np.ndarray
    bus_energised: np.ndarray
    resume_rows: np.ndarray | None = None

    @property
    def handled(self) -> bool:
        """Whether the kernel ran this cascade (else the caller runs the Python path)."""
        return self.reason is None


class DcKernel:
    """The DC cascade of one compiled grid, compiled by numba: :meth:`run` one cascade, :meth:`result` its result.

    Parameters
    ----------
    grid : CompiledGrid
        The fast engine's compiled grid (``FastCascade.grid``; :meth:`of`
        takes the engine).
    fresh_rows : int
        Most rows of one island solved afresh (:data:`FRESH_ROWS`).
    rank_rows : int
        Most columns of one update (:data:`RANK_ROWS`).
    tol_mw : float
        The error (MW) an update's flows are refined to (:data:`TOL_MW`) ...
    rounding : float
        ... or the residual to within this many times its own rounding (:data:`ROUNDING`).

    Notes
    -----
    ``kernel.run(rows, gens)`` stands for ``engine.run_rows(rows, gens,
    flow="dc")``: the same trips in the same generations with the same
    ratios, the same load served and states, the same depth and islands.
    :attr:`reason` says why a kernel runs nothing at all (numba missing, a
    grid too large for a dense inverse, a branch without reactance);
    otherwise each outcome says whether it was handled.

    Examples
    --------
    >>> from gridsim import load_system
    >>> from gridsim.power.fast import fast_engine
    >>> engine = fast_engine(load_system("pandapower:case30"))
    >>> kernel = DcKernel.of(engine)
    >>> rows = engine.grid.line_branch[[14, 15]]
    >>> outcome = kernel.run(rows)
    >>> outcome.handled, outcome.depth
    (True, 3)
    >>> [(t.index, t.generation) for t in kernel.result(outcome).trips]
    [(29, 1), (20, 2), (21, 3), (22, 3), (23, 3), (24, 3)]
    >>> [(t.index, t.generation) for t in engine.run_rows(rows).trips]
    [(29, 1), (20, 2), (21, 3), (22, 3), (23, 3), (24, 3)]
    """

    def __init__(self, grid: CompiledGrid, *, fresh_rows: int = FRESH_ROWS, rank_rows: int = RANK_ROWS,
                 tol_mw: float = TOL_MW, rounding: float = ROUNDING) -> None:
        g = grid
        self.grid = grid
        self.fresh_rows, self.rank_rows = int(fresh_rows), int(rank_rows)
        self.tol_mw, self.rounding = float(tol_mw), float(rounding)
        n, m = g.n_bus, g.n_branch
        i64, f64 = np.int64, np.float64

        def own(values, dtype) -> np.ndarray:
            return np.array(values, dtype=dtype, copy=True, order="C")

        alive = g.row_alive[g.from_row] & g.row_alive[g.to_row]
        ends = np.concatenate([g.from_row[alive], g.to_row[alive]])
        others = np.concatenate([g.to_row[alive], g.from_row[alive]])
        branches = np.concatenate([np.flatnonzero(alive), np.flatnonzero(alive)])
        order = np.argsort(ends, kind="stable")
        adj_ptr = np.zeros(n + 1, dtype=i64)
        np.cumsum(np.bincount(ends, minlength=n), out=adj_ptr[1:])
        watched = np.concatenate([g.line_branch, g.trafo_branch])
        self.n_lines = len(g.line_branch)
        self._table = ["line"] * len(g.line_branch) + ["trafo"] * len(g.trafo_branch)
        self._index = np.concatenate([g.line_index, g.trafo_index]).astype(i64).tolist()
        self._pp_rows = own(g.bus_row[g.row_alive[g.bus_row]], i64)
        self._grid = (
            own(g.from_row, i64), own(g.to_row, i64), own(g.b_pu, f64), own(g.shift_rad, f64),
            own(g.branch_on, bool), own(g.row_alive, bool), own(g.va_rad, f64),
            adj_ptr, own(others[order], i64), own(branches[order], i64),
            own(np.flatnonzero(g.shift_rad != 0.0), i64),
            own(watched, i64), own(np.concatenate([g.line_rating_mva, g.trafo_rating_mva]), f64), float(g.limit),
            own(g.load_row, i64), own(g.load_on, bool), own(g.sgen_row, i64), own(g.sgen_p_mw, f64),
            own(g.gen_row, i64), own(g.gen_p_mw, f64), own(g.gen_low_mw, f64), own(g.gen_cap_mw, f64),
            own(g.gen_on, bool), own(g.gen_slack, bool), own(g.ext_row, i64),
            own(g.fixed_withdrawal_mw, f64), float(g.base_mva), self._pp_rows, own(g.bus_row, i64))
        self._load_p = own(g.load_p_mw, f64)
        self._demand = np.maximum(self._load_p, 0.0) * g.load_on
        self._demand_seen = _read_only(self._demand)  # what outcomes hand out (the kernel reads the array)
        self._no_gens = np.zeros(0, dtype=i64)
        self._base: tuple | None = None
        self._all_energised: tuple[np.ndarray, frozenset[int]] | None = None
        self.reason: str | None = None
        if not AVAILABLE:
            self.reason = "numba is not installed"
        elif n > DENSE_ROWS:
            self.reason = f"the grid has {n} rows, more than DENSE_ROWS ({DENSE_ROWS}) for a dense inverse"
        elif m and (g.b_pu[g.branch_on & alive] == 0.0).any():
            self.reason = "a branch in service has no reactance"

    @classmethod
    def of(cls, engine: object, **limits: float) -> DcKernel:
        """The kernel of a fast engine (anything with a ``grid``: :class:`~gridsim.power.fast.FastCascade`).

        Parameters
        ----------
        engine : FastCascade
            The engine whose compiled grid the kernel runs on.
        **limits : float
            ``fresh_rows``, ``rank_rows``, ``tol_mw`` and ``rounding``, as for the class.

        Returns
        -------
        DcKernel
            Its kernel; the base inverse is built on the first cascade.
        """
        return cls(engine.grid, **limits)

    def __getstate__(self) -> dict:
        """Pickles without the base inverse (rebuilt on first use; 66 MB at 2,869 buses)."""
        state = dict(self.__dict__)
        state["_base"] = None
        state["_all_energised"] = None
        del state["_demand_seen"]
        return state

    def __setstate__(self, state: dict) -> None:
        """An unpickled kernel: its read-only view of the demand made again (a pickled view is a copy)."""
        self.__dict__.update(state)
        self._demand_seen = _read_only(self._demand)

    @property
    def usable(self) -> bool:
        """Whether this kernel runs cascades at all (see :attr:`reason`)."""
        return self.reason is None

    # ------------------------------------------------------------ one cascade

    def run(self, branch_rows: np.ndarray, gen_positions: np.ndarray | None = None,
            load_factor: np.ndarray | None = None, *, load_kept: np.ndarray | None = None) -> KernelOutcome:
        """One DC cascade from these outages, as ``FastCascade.run_rows(..., flow="dc")`` runs it.

        Parameters
        ----------
        branch_rows : numpy.ndarray
            Branch rows out at the start (a candidate's ``branch_rows``).
        gen_positions : numpy.ndarray, optional
            Generator positions out.
        load_factor : numpy.ndarray, optional
            Per load, its demand multiplier.
        load_kept : numpy.ndarray, optional
            Per load, the share of its demand not cut by under-frequency relays.

        Returns
        -------
        KernelOutcome
            The cascade's figures, or (``handled`` False) why the kernel
            left it to the Python path.
        """
        if self.reason is not None:
            return _declined(self.reason)
        base = self._prepared()
        load_p = self._load_p if load_factor is None else self._load_p * load_factor
        demand = self._demand if load_factor is None else np.maximum(load_p, 0.0) * self.grid.load_on
        if load_kept is not None:
            load_p = load_p * load_kept
        rows = np.asarray(branch_rows, dtype=np.int64)
        gens = self._no_gens if gen_positions is None else np.asarray(gen_positions, dtype=np.int64)
        try:
            status, served, state, trip_pos, trip_gen, trip_ratio, depth, islands, flow, energised, on = _cascade(
                rows, gens, np.ascontiguousarray(load_p, dtype=np.float64), demand, self._grid, base,
                (self.rank_rows, self.fresh_rows, self.tol_mw, self.rounding))
        except SystemError as exc:
            # A signal handler (SIGTERM's SystemExit, Ctrl-C) that raised while the compiled call was returning:
            # numba wraps it in a SystemError (a chain of them, one per frame): the caller must see the exit itself.
            cause = exc.__cause__
            while isinstance(cause, SystemError):
                cause = cause.__cause__
            if isinstance(cause, (SystemExit, KeyboardInterrupt)):
                raise cause from None
            raise
        if status == _BAD_INDEX:
            return _declined(_REASONS[status])
        resume = None if status == _OK else np.flatnonzero(self.grid.branch_on & ~on)
        seen = self._demand_seen if load_factor is None else demand
        return KernelOutcome(_REASONS.get(status), served, seen, state, trip_pos, trip_gen, trip_ratio, int(depth),
                             int(islands), flow, energised, resume)

    def result(self, outcome: KernelOutcome) -> CascadeResult:
        """The whole :class:`~gridsim.power.contract.CascadeResult` of a handled outcome, as ``run_rows`` gives it.

        Parameters
        ----------
        outcome : KernelOutcome
            From :meth:`run`, handled.

        Returns
        -------
        CascadeResult
            Trips, demand, served load, states, depth, islands, flows and
            energised buses.
        """
        if not outcome.handled:
            raise ValueError(f"the kernel did not run this cascade: {outcome.reason}")
        trips = self._trips(outcome)
        flow = outcome.watched_flow_mva
        return CascadeResult(
            trips=trips, demand_mw=outcome.demand_mw.copy(), served_mw=outcome.served_mw,
            load_state=STATE_NAMES[outcome.state], depth=outcome.depth, islands=outcome.islands,
            line_flow_mva=flow[:self.n_lines], trafo_flow_mva=flow[self.n_lines:], collapse=None,
            energised_buses=self._energised_buses(outcome.bus_energised))

    def continued(self, outcome: KernelOutcome, rest: CascadeResult) -> CascadeResult:
        """The whole cascade of a declined outcome: its generations, then ``rest``, the Python path's from there.

        Parameters
        ----------
        outcome : KernelOutcome
            From :meth:`run`, declined part-way (``resume_rows`` set).
        rest : CascadeResult
            ``FastCascade.run_rows(outcome.resume_rows, ...)`` with the same
            generators and load arguments: the generations after the
            kernel's.

        Returns
        -------
        CascadeResult
            What ``run_rows`` gives for the whole cascade: the kernel's
            trips, then ``rest``'s with their generations moved on by
            ``outcome.depth``.
        """
        if outcome.resume_rows is None:
            raise ValueError("this outcome has nothing to continue: it was handled, or never started")
        trips = self._trips(outcome)
        trips += [replace(trip, generation=trip.generation + outcome.depth) for trip in rest.trips]
        return replace(rest, trips=trips, depth=rest.depth + outcome.depth)

    def run_rows(self, branch_rows: np.ndarray, gen_positions: np.ndarray | None = None,
                 load_factor: np.ndarray | None = None, *, flow: str = "dc",
                 load_kept: np.ndarray | None = None) -> CascadeResult | None:
        """``FastCascade.run_rows`` when the kernel can run it, else None (the caller runs the Python path).

        Parameters
        ----------
        branch_rows, gen_positions, load_factor, load_kept : numpy.ndarray
            As for :meth:`run`.
        flow : {"dc", "ac"}
            Only ``"dc"`` is the kernel's: ``"ac"`` gives None.

        Returns
        -------
        CascadeResult or None
            The cascade's result, or None where the kernel declines.
        """
        check_flow(flow)
        if flow != "dc":
            return None
        outcome = self.run(branch_rows, gen_positions, load_factor, load_kept=load_kept)
        return self.result(outcome) if outcome.handled else None

    def _trips(self, outcome: KernelOutcome) -> list[Trip]:
        """The trips of an outcome as the contract's records."""
        return [Trip(self._table[k], self._index[k], generation, ratio, TRIP_OVERLOAD) for k, generation, ratio in
                zip(outcome.trip_positions.tolist(), outcome.trip_generations.tolist(), outcome.trip_ratios.tolist())]

    # ------------------------------------------------------------ what is built once

    def _prepared(self) -> tuple:
        """The base inverse and what the updates start from, built on the first cascade (and after unpickling)."""
        if self._base is None:
            _jit()
            g = self.grid
            n = g.n_bus
            n_islands, labels, live, ref_mask, p_pu = _untouched(self._load_p, self._grid)
            island = SimpleNamespace(live_row=live, refs=np.flatnonzero(ref_mask), ref_mask=ref_mask)
            solver = BaseSolver.build(g, int(n_islands), labels, island)
            if solver is None:  # an island of the base pinned at two references: every flow is solved afresh
                self._base = (False, np.zeros((1, 1)), np.zeros(n), np.zeros(n), np.zeros(g.n_branch, dtype=bool),
                              np.zeros(n, dtype=bool), np.zeros(0, dtype=np.int64), 1.0)
            else:
                xc = np.zeros((n, n))  # row j: the column of X for row j
                if solver.inverse is not None:
                    xc[:] = solver.inverse.T
                elif len(solver.rows):
                    _columns_of_inverse(g, solver, xc)
                q0 = np.where(solver.solve_mask, p_pu, 0.0)
                weight = float(np.median(g.b_pu[solver.on])) if solver.on.any() else 1.0
                self._base = (True, xc, xc.T @ q0, q0, solver.on.copy(), solver.solve_mask.copy(),
                              np.flatnonzero(solver.ref_mask).astype(np.int64), weight)
        return self._base

    def _energised_buses(self, mask: np.ndarray) -> frozenset[int]:
        """The buses of ``mask`` as a set; the first cascade's set (usually every bus) is kept and reused."""
        kept = self._all_energised
        if kept is not None and np.array_equal(mask, kept[0]):
            return kept[1]
        buses = frozenset(self.grid.bus_index[mask].tolist())
        if kept is None:
            self._all_energised = (mask.copy(), buses)
        return buses


def _columns_of_inverse(g: CompiledGrid, solver: BaseSolver, xc: np.ndarray, block: int = 256) -> None:
    """Fill ``xc`` (row j: the column of ``X`` for row j) from the sparse LU, refined once, a block at a time.

    ``X = LU⁻¹ I`` carries the LU's rounding (a relative 1e-9 on a grid of
    condition 1e7, such as case2869pegase's), which a Woodbury update of high
    rank amplifies; one step ``X + LU⁻¹ (I - B X)`` (half the cost again)
    brings the flows to the accuracy of a fresh factorisation or better.
    Blocks of columns keep the memory at ``xc`` and a few blocks.
    """
    rows = solver.rows
    position = np.full(g.n_bus, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    f, t = position[g.from_row[solver.on]], position[g.to_row[solver.on]]
    b = g.b_pu[solver.on]
    inside_f, inside_t = f >= 0, t >= 0
    both = inside_f & inside_t
    cells_r = np.concatenate([f[inside_f], t[inside_t], f[both], t[both]])
    cells_c = np.concatenate([f[inside_f], t[inside_t], t[both], f[both]])
    values = np.concatenate([b[inside_f], b[inside_t], -b[both], -b[both]])
    matrix = sp.csr_matrix((values, (cells_r, cells_c)), shape=(len(rows), len(rows)))
    for start in range(0, len(rows), block):
        stop = min(start + block, len(rows))
        unit = np.zeros((len(rows), stop - start))
        unit[np.arange(start, stop), np.arange(stop - start)] = 1.0
        columns = solver.lu.solve(unit)
        columns += solver.lu.solve(unit - matrix @ columns)
        xc[np.ix_(rows[start:stop], rows)] = columns.T


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view of ``values``."""
    view = values.view()
    view.flags.writeable = False
    return view


def _declined(reason: str) -> KernelOutcome:
    """An outcome the kernel did not start: the caller runs the whole cascade."""
    empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return KernelOutcome(reason, empty_f, empty_f, np.zeros(0, dtype=np.int8), empty_i, empty_i, empty_f, 0, 0,
                         empty_f, np.zeros(0, dtype=bool), None)


# ---------------------------------------------------------------- the compiled functions
#
# Plain Python until _jit() replaces each by its numba dispatcher (compiled with cache=True): the
# functions call each other through this module's globals, which then name the dispatchers. The grid's
# arrays reach the two entry points (_untouched, _cascade) as one tuple, ``grid``, read by the positions
# below, and the base's as ``base``; the helpers take the arrays they use (large tuples through every call
# would multiply numba's compile time).

(_FROM, _TO, _B, _SHIFT, _BRANCH_ON, _ALIVE, _VA, _ADJ_PTR, _ADJ_NBR, _ADJ_BR, _SHIFTERS, _WATCHED, _RATING, _LIMIT,
 _LOAD_ROW, _LOAD_ON, _SGEN_ROW, _SGEN_P, _GEN_ROW, _GEN_P, _GEN_LOW, _GEN_CAP, _GEN_ON, _GEN_SLACK, _EXT_ROW,
 _FIXED, _BASE_MVA, _PP_ROWS, _BUS_ROW) = range(29)
_HAS_BASE, _XC, _THETA0, _Q0, _BASE_ON, _BASE_SOLVE, _BASE_REFS, _WEIGHT = range(8)
_RANK_ROWS, _FRESH_ROWS, _TOL_MW, _ROUNDING = range(4)

_JITTED: list[bool] = []
_COMPILED = ("_islands", "_sources", "_island_sums", "_own_balance", "_references", "_balance", "_injections",
             "_shifted", "_gauss", "_solve", "_fresh_layout", "_fresh_island", "_fresh", "_kept_and_grounded",
             "_hung", "_plan", "_base_solution", "_update_system", "_project", "_add_columns", "_residual",
             "_correction", "_woodbury", "_protection", "_fixed_point", "_switched_off", "_units", "_untouched",
             "_cascade")


def _jit() -> None:
    """Compile this module's kernel functions with numba (once per process; from the disk cache when there)."""
    if _JITTED:
        return
    import numba  # noqa: PLC0415 - optional, and 0.3 s at import: only a process that runs a kernel imports it

    module = globals()
    for name in _COMPILED:
        module[name] = numba.njit(cache=True, nogil=True)(module[name])
    _JITTED.append(True)


def _islands(branch_on, adj, labels, stack):
    """Label every row with its island over the branches in service (a dead row is an island alone); count them.

    ``adj`` is ``(pointers, neighbours, branches)``: each row's branches in CSR form.
    """
    adj_ptr, adj_nbr, adj_br = adj
    labels[:] = -1
    count = 0
    for start in range(labels.shape[0]):
        if labels[start] >= 0:
            continue
        labels[start] = count
        stack[0] = start
        top = 1
        while top:
            top -= 1
            u = stack[top]
            for e in range(adj_ptr[u], adj_ptr[u + 1]):
                v = adj_nbr[e]
                if branch_on[adj_br[e]] and labels[v] < 0:
                    labels[v] = count
                    stack[top] = v
                    top += 1
        count += 1
    return count


def _sources(labels, n_isl, gen_on, gen_row, ext_row, energised, has_ext):
    """Per island: whether it holds an external grid, and whether it holds a source at all."""
    has_ext[:n_isl] = False
    energised[:n_isl] = False
    for r in ext_row:
        has_ext[labels[r]] = True
        energised[labels[r]] = True
    for k in range(gen_row.shape[0]):
        if gen_on[k]:
            energised[labels[gen_row[k]]] = True


def _island_sums(labels, n_isl, gen_on, load_p, units, energised, has_ext, sums, best):
    """Per island balanced by its generators: load, static generation, their limits' sums, its largest generator.

    ``sums`` rows: load, static generation, sum of maxima, of minima, of headroom.
    """
    load_row, load_on, sgen_row, sgen_p, gen_row, _, gen_low, gen_cap, _, _, _ = units
    sums[:, :n_isl] = 0.0
    best[:n_isl] = -1
    for j in range(load_row.shape[0]):
        sums[0, labels[load_row[j]]] += load_p[j] * (1.0 if load_on[j] else 0.0)
    for j in range(sgen_row.shape[0]):
        sums[1, labels[sgen_row[j]]] += sgen_p[j]
    for k in range(gen_row.shape[0]):
        c = labels[gen_row[k]]
        if gen_on[k] and energised[c] and not has_ext[c]:  # a balancing generator
            sums[2, c] += gen_cap[k]
            sums[3, c] += gen_low[k]
            sums[4, c] += gen_cap[k] - gen_low[k]
            if best[c] < 0 or gen_cap[k] > gen_cap[best[c]]:  # the largest, the first of equals
                best[c] = k


def _own_balance(labels, gen_on, load_p, units, energised, has_ext, sums, best, state, keep, gen_p, slack):
    """Islands without an external grid: loads kept in proportion when short, the dispatch, the reference.

    The dispatch (twin: :func:`gridsim.power.fast._dispatch`): every
    generator at its maximum when the net demand passes the sum of maxima;
    in proportion to the minima at or below their sum; otherwise its minimum
    and a share of the rest in proportion to its headroom.
    """
    load_row, load_on, _, _, gen_row, _, gen_low, gen_cap, _, _, _ = units
    for j in range(load_row.shape[0]):
        c = labels[load_row[j]]
        load_mw, sgen_mw, cap_sum = sums[0, c], sums[1, c], sums[2, c]
        if energised[c] and not has_ext[c] and load_mw - sgen_mw > cap_sum:  # short: every load in proportion
            fraction = (cap_sum + sgen_mw) / load_mw if load_mw > 0 else 1.0
            keep[j] = min(max(fraction, 0.0), 1.0)
            if load_p[j] * (1.0 if load_on[j] else 0.0) > 0 and fraction < 1.0 - 1e-12:
                state[j] = _SHED
    for k in range(gen_row.shape[0]):
        c = labels[gen_row[k]]
        if not (gen_on[k] and energised[c] and not has_ext[c]):
            continue
        demand, cap_sum, low_sum, room_sum = sums[0, c] - sums[1, c], sums[2, c], sums[3, c], sums[4, c]
        low, cap = gen_low[k], gen_cap[k]
        if demand > cap_sum:
            gen_p[k] = cap
        elif demand <= low_sum:
            gen_p[k] = low * (max(demand, 0.0) / low_sum) if low_sum > 0 else 0.0
        else:
            gen_p[k] = low + (demand - low_sum) * (cap - low) / room_sum
        if best[c] == k:
            slack[k] = True


def _references(labels, gen_on, units, energised, slack, live, ref_mask):
    """Rows in energised islands, and the references among them: external grids and slack generators."""
    _, _, _, _, gen_row, _, _, _, _, ext_row, row_alive = units
    for i in range(labels.shape[0]):
        live[i] = row_alive[i] and energised[labels[i]]
        ref_mask[i] = False
    for r in ext_row:
        ref_mask[r] = live[r]
    for k in range(gen_row.shape[0]):
        if slack[k] and gen_on[k] and live[gen_row[k]]:
            ref_mask[gen_row[k]] = True


def _balance(labels, n_isl, gen_on, load_p, units, state, keep, gen_p, energised, live, ref_mask):
    """The balance of docs/PROPAGATION.md rule 3, every island at once (twin: ``FastCascade._balance``).

    ``units`` holds the loads', static generators' and generators' arrays
    (:meth:`DcKernel._units`). Fills ``state``, ``keep`` (per load),
    ``gen_p`` (per generator), ``energised`` (per island), ``live`` and
    ``ref_mask`` (per row). An island holding an external grid takes its
    imbalance there (its generators keep their set points and slack flags);
    every other energised island is balanced by its generators
    (:func:`_own_balance`).
    """
    load_row, _, _, _, gen_row, gen_p0, _, _, gen_slack, ext_row, _ = units
    has_ext = np.empty(n_isl, dtype=np.bool_)
    _sources(labels, n_isl, gen_on, gen_row, ext_row, energised, has_ext)
    for j in range(load_row.shape[0]):
        on = energised[labels[load_row[j]]]
        state[j] = _SERVED if on else _ISLAND
        keep[j] = 1.0 if on else 0.0
    slack = np.empty(gen_row.shape[0], dtype=np.bool_)
    gen_p[:] = gen_p0
    for k in range(gen_row.shape[0]):
        slack[k] = gen_slack[k] and has_ext[labels[gen_row[k]]]
    sums = np.empty((5, n_isl))
    best = np.empty(n_isl, dtype=np.int64)
    _island_sums(labels, n_isl, gen_on, load_p, units, energised, has_ext, sums, best)
    _own_balance(labels, gen_on, load_p, units, energised, has_ext, sums, best, state, keep, gen_p, slack)
    _references(labels, gen_on, units, energised, slack, live, ref_mask)


def _injections(gen_on, gen_p, keep, load_p, units, fixed_mw, base_mva, p):
    """Net injection of every row (per unit) before phase-shift injections (twin: ``FastCascade._injections``)."""
    load_row, load_on, sgen_row, sgen_p, gen_row, _, _, _, _, _, _ = units
    n = p.shape[0]
    gen = np.zeros(n)
    sgen = np.zeros(n)
    load = np.zeros(n)
    for k in range(gen_row.shape[0]):
        if gen_on[k]:
            gen[gen_row[k]] += gen_p[k]
    for j in range(sgen_row.shape[0]):
        sgen[sgen_row[j]] += sgen_p[j]
    for j in range(load_row.shape[0]):
        load[load_row[j]] += load_p[j] * keep[j] * (1.0 if load_on[j] else 0.0)
    for i in range(n):
        p[i] = (gen[i] + sgen[i] - load[i] - fixed_mw[i]) / base_mva


def _shifted(p, branch_on, live, shifters, branches, shift_rad, out):
    """``p`` plus the phase shifters' injections (pandapower's ``Pfinj``) of the branches in service, into ``out``.

    ``branches`` is ``(from rows, to rows, susceptances)``.
    """
    from_row, to_row, b_pu = branches
    out[:] = p
    if shifters.shape[0] == 0:
        return
    into = np.zeros(p.shape[0])
    away = np.zeros(p.shape[0])
    for k in shifters:
        f, t = from_row[k], to_row[k]
        if branch_on[k] and live[f] and live[t]:
            injection = b_pu[k] * -shift_rad[k]
            into[t] += injection
            away[f] += injection
    for i in range(p.shape[0]):
        out[i] = p[i] + (into[i] - away[i])


def _gauss(a, x):
    """``a⁻¹ x`` in place by Gaussian elimination with partial pivoting (``a`` overwritten); False if singular."""
    k = a.shape[0]
    for col in range(k):
        pivot = col
        for r in range(col + 1, k):
            if abs(a[r, col]) > abs(a[pivot, col]):
                pivot = r
        if a[pivot, col] == 0.0:
            return False
        if pivot != col:
            for c in range(k):
                a[col, c], a[pivot, c] = a[pivot, c], a[col, c]
            x[col], x[pivot] = x[pivot], x[col]
        for r in range(col + 1, k):
            factor = a[r, col] / a[col, col]
            for c in range(col, k):
                a[r, c] -= factor * a[col, c]
            x[r] -= factor * x[col]
    for r in range(k - 1, -1, -1):
        for c in range(r + 1, k):
            x[r] -= a[r, c] * x[c]
        x[r] /= a[r, r]
    return True


def _solve(a, b):
    """``a⁻¹ b`` (``b`` a vector), or an empty array when ``a`` is singular (``a`` and ``b`` kept).

    Gaussian elimination here, not LAPACK's: the systems are small, and
    numba's binding of ``np.linalg.solve`` would add seconds to the compile.
    """
    x = b.copy()
    return x if _gauss(a.copy(), x) else np.zeros(0)


def _fresh_layout(branch_on, labels, n_isl, live, ref_mask, branches, va_rad, theta, local, size, b_start, b_list):
    """The rows to solve of every island (``local``: their places) and its branches in service, grouped.

    ``theta`` gets the references' initial angles (0 elsewhere). Returns a
    status: an island whose rows cannot be solved (no reference).
    """
    from_row, to_row, _ = branches
    refs = np.zeros(n_isl, dtype=np.int64)
    size[:] = 0
    for i in range(labels.shape[0]):
        theta[i] = va_rad[i] if (live[i] and ref_mask[i]) else 0.0
        local[i] = -1
        if live[i] and ref_mask[i]:
            refs[labels[i]] += 1
        elif live[i]:
            local[i] = size[labels[i]]
            size[labels[i]] += 1
    for c in range(n_isl):
        if size[c] > 0 and refs[c] == 0:
            return _NO_REFERENCE
    b_start[:] = 0
    for k in range(from_row.shape[0]):
        if branch_on[k] and live[from_row[k]] and live[to_row[k]]:
            b_start[labels[from_row[k]] + 1] += 1
    for c in range(n_isl):
        b_start[c + 1] += b_start[c]
    fill = b_start[:n_isl].copy()
    for k in range(from_row.shape[0]):
        if branch_on[k] and live[from_row[k]] and live[to_row[k]]:
            b_list[fill[labels[from_row[k]]]] = k
            fill[labels[from_row[k]]] += 1
    return _OK


def _fresh_island(p, branches, theta, local, rows, island_branches):
    """Solve one island's ``rows`` by a dense LU of its ``B`` over its branches, references held. Status."""
    from_row, to_row, b_pu = branches
    size = rows.shape[0]
    a = np.zeros((size, size))
    rhs = np.empty(size)
    for j in range(size):
        rhs[j] = p[rows[j]]
    for k in island_branches:
        f, t, b = from_row[k], to_row[k], b_pu[k]
        lf, lt = local[f], local[t]
        if lf >= 0:
            a[lf, lf] += b
        if lt >= 0:
            a[lt, lt] += b
        if lf >= 0 and lt >= 0:
            a[lf, lt] -= b
            a[lt, lf] -= b
        elif lf >= 0:
            rhs[lf] += b * theta[t]
        elif lt >= 0:
            rhs[lt] += b * theta[f]
    x = _solve(a, rhs)
    if x.shape[0] != size:
        return _SINGULAR
    for j in range(size):
        theta[rows[j]] = x[j]
    return _OK


def _fresh(p, branch_on, labels, n_isl, live, ref_mask, branches, va_rad, fresh_rows, theta):
    """Angles of every energised island by a dense LU of its own ``B``, references at their initial angle.

    The fast engine's :func:`gridsim.power.dcsolver.fresh_solve`, one dense
    system per island. Returns a status.
    """
    n = labels.shape[0]
    local = np.empty(n, dtype=np.int64)
    size = np.empty(n_isl, dtype=np.int64)
    b_start = np.empty(n_isl + 1, dtype=np.int64)
    b_list = np.empty(branches[0].shape[0], dtype=np.int64)
    status = _fresh_layout(branch_on, labels, n_isl, live, ref_mask, branches, va_rad, theta, local, size, b_start,
                           b_list)
    if status != _OK:
        return status
    for c in range(n_isl):
        if size[c] > fresh_rows:
            return _FRESH_TOO_LARGE
    rows_of = np.empty(n, dtype=np.int64)  # the rows of each island, in order of ``local``
    start = np.zeros(n_isl + 1, dtype=np.int64)
    for c in range(n_isl):
        start[c + 1] = start[c] + size[c]
    for i in range(n):
        if local[i] >= 0:
            rows_of[start[labels[i]] + local[i]] = i
    for c in range(n_isl):
        if size[c]:
            status = _fresh_island(p, branches, theta, local, rows_of[start[c]:start[c + 1]],
                                   b_list[b_start[c]:b_start[c + 1]])
            if status != _OK:
                return status
    return _OK


def _kept_and_grounded(labels, live, ref_mask, base_solve, base_refs, kept, ground):
    """Islands holding a reference of the base (``kept``), and the reference grounded in every other energised one.

    False where the update does not apply: a reference of the base lost (its
    generator out, its island dark), or an island pinned at two references.
    """
    kept[:] = False
    ground[:] = -1
    for r in base_refs:
        if not ref_mask[r]:
            return False
        kept[labels[r]] = True
    for i in range(labels.shape[0]):
        c = labels[i]
        if base_solve[i] and live[i] and ref_mask[i]:
            if kept[c] or ground[c] >= 0:
                return False
            ground[c] = i
    return True


def _hung(branch_on, live, adj, branches, base_on, base_solve, dark_of, stack, hung):
    """Dark rows hung from the energised grid: which branches out the update keeps (into ``hung``).

    A dark piece (``dark_of``: the base's branches among rows now dark)
    keeps one of its branches to the energised rows, now out: with no
    injection it hangs from that one point and carries no flow, so neither
    the branch nor the piece costs the update a column. Its other branches
    to energised rows are taken out; branches between dark rows stay.
    """
    adj_ptr, adj_nbr, adj_br = adj
    from_row, to_row, _ = branches
    dark_of[:] = -1
    count = 0
    for start in range(dark_of.shape[0]):
        if not base_solve[start] or live[start] or dark_of[start] >= 0:
            continue
        dark_of[start] = count
        stack[0] = start
        top = 1
        while top:
            top -= 1
            u = stack[top]
            for e in range(adj_ptr[u], adj_ptr[u + 1]):
                v = adj_nbr[e]
                if base_on[adj_br[e]] and base_solve[v] and not live[v] and dark_of[v] < 0:
                    dark_of[v] = count
                    stack[top] = v
                    top += 1
        count += 1
    linked = np.zeros(count, dtype=np.bool_)
    hung[:] = False
    for k in range(base_on.shape[0]):
        if base_on[k] and not branch_on[k]:
            piece_f, piece_t = dark_of[from_row[k]], dark_of[to_row[k]]
            piece = piece_f if piece_f >= 0 else piece_t
            if piece_f >= 0 and piece_t >= 0:
                hung[k] = True
            elif piece >= 0 and not linked[piece]:
                linked[piece] = True
                hung[k] = True


def _plan(branch_on, labels, n_isl, live, ref_mask, adj, branches, base_on, base_solve, base_refs, rank_rows, kept,
          ground, hung):
    """What the update takes out and grounds: ``kind`` per column (a branch, or ``-1 - row`` grounded).

    ``kept``, ``ground`` and ``hung`` as :func:`_kept_and_grounded` and
    :func:`_hung` fill them. The second value is False where the update does
    not apply (there, or a rank above ``rank_rows``).
    """
    none = np.zeros(0, dtype=np.int64)
    if not _kept_and_grounded(labels, live, ref_mask, base_solve, base_refs, kept, ground):
        return none, False
    n = labels.shape[0]
    _hung(branch_on, live, adj, branches, base_on, base_solve, np.empty(n, dtype=np.int64),
          np.empty(n, dtype=np.int64), hung)
    rank = 0
    for k in range(base_on.shape[0]):
        if base_on[k] and not branch_on[k] and not hung[k]:
            rank += 1
    for c in range(n_isl):
        if ground[c] >= 0:
            rank += 1
    if rank > rank_rows:
        return none, False
    kind = np.empty(rank, dtype=np.int64)
    a = 0
    for k in range(base_on.shape[0]):
        if base_on[k] and not branch_on[k] and not hung[k]:
            kind[a] = k
            a += 1
    for c in range(n_isl):
        if ground[c] >= 0:
            kind[a] = -1 - ground[c]
            a += 1
    return kind, True


def _base_solution(p, live, xc, theta0, q0, base_solve, q):
    """``X q``: the base's ``X q₀`` plus the columns of the rows whose injection changed (or ``X q`` if fewer).

    ``q`` (filled here) is ``p`` on the energised rows the base solves and 0
    on dark ones (they hang from one point: :func:`_hung`).
    """
    n = q.shape[0]
    changed = 0
    nonzero = 0
    for i in range(n):
        q[i] = p[i] if (base_solve[i] and live[i]) else 0.0
        if q[i] != q0[i]:
            changed += 1
        if q[i] != 0.0:
            nonzero += 1
    y = theta0.copy() if changed <= nonzero else np.zeros(n)
    for j in range(n):
        d = q[j] - q0[j] if changed <= nonzero else q[j]
        if d != 0.0:
            col = xc[j]
            for i in range(n):
                y[i] += d * col[i]
    return y


def _project(kind, a, branches, base_solve, vector):
    """Column ``a`` of ``V`` times ``vector``: the difference across a branch out, or a grounded row's entry."""
    k = kind[a]
    if k < 0:
        return vector[-1 - k]
    f, t = branches[0][k], branches[1][k]
    return (vector[f] if base_solve[f] else 0.0) - (vector[t] if base_solve[t] else 0.0)


def _update_system(kind, branches, xc, base_solve, weight, xv, mat):
    """The update's columns ``X V`` (into ``xv``) and its matrix ``C - Vᵀ X V`` (into ``mat``).

    ``C`` holds ``1 / b`` for a branch taken out and ``-1 / w`` for a row
    grounded at ``w``: ``B' = B₀ - U D Uᵀ + w E Eᵀ`` has the inverse
    ``X + X V (C - Vᵀ X V)⁻¹ Vᵀ X``.
    """
    from_row, to_row, b_pu = branches
    rank = kind.shape[0]
    n = xc.shape[1]
    for a in range(rank):
        k = kind[a]
        if k < 0:
            xv[a, :] = xc[-1 - k]
            continue
        f, t = from_row[k], to_row[k]
        fs, ts = base_solve[f], base_solve[t]
        for i in range(n):
            xv[a, i] = (xc[f, i] if fs else 0.0) - (xc[t, i] if ts else 0.0)
    for a in range(rank):
        k = kind[a]
        for c in range(rank):
            mat[a, c] = -_project(kind, a, branches, base_solve, xv[c])
        mat[a, a] += 1.0 / b_pu[k] if k >= 0 else -1.0 / weight


def _add_columns(kind, branches, base_solve, xv, mat, y):
    """``y += X V (C - Vᵀ X V)⁻¹ Vᵀ y``: the update applied to a solution of the base. False if singular."""
    rank = kind.shape[0]
    rhs = np.empty(rank)
    for a in range(rank):
        rhs[a] = _project(kind, a, branches, base_solve, y)
    z = _solve(mat, rhs)
    if z.shape[0] != rank:
        return False
    for a in range(rank):
        if z[a] != 0.0:
            col = xv[a]
            for i in range(y.shape[0]):
                y[i] += z[a] * col[i]
    return True


def _residual(y, q, branch_on, labels, kept, ground, hung, adj, b_pu, base_on, base_solve, weight, residual):
    """``q - B' y`` on the rows of the update, its 1-norm and the 1-norm of its rounding.

    In a DC network a unit injected at a row and taken out at the reference
    moves at most one unit through any branch, so an error ``r`` in the
    injections moves no flow by more than ``|r|₁`` (per unit): the 1-norm of
    the residual bounds the error of every flow the angles ``y`` give.
    """
    adj_ptr, adj_nbr, adj_br = adj
    mass = 0.0
    floor = 0.0
    for i in range(y.shape[0]):
        residual[i] = 0.0
        if not base_solve[i]:
            continue
        total = q[i]
        scale = abs(q[i])
        if not kept[labels[i]] and ground[labels[i]] == i:
            total -= weight * y[i]
            scale += weight * abs(y[i])
        for e in range(adj_ptr[i], adj_ptr[i + 1]):
            k = adj_br[e]
            if base_on[k] and (branch_on[k] or hung[k]):
                other = y[adj_nbr[e]] if base_solve[adj_nbr[e]] else 0.0
                total -= b_pu[k] * (y[i] - other)
                scale += b_pu[k] * (abs(y[i]) + abs(other))
        residual[i] = total
        mass += abs(total)
        floor += scale
    return mass, floor * 2.220446049250313e-16


def _correction(residual, mass, left_out, kind, branches, xc, base_solve, xv, mat, delta):
    """``X' r`` from the residual's largest entries, leaving out at most ``left_out`` of its mass. False if singular.

    The entries kept are those of at least ``2^-s`` times the largest, ``s``
    the largest shift that leaves out no more than that (binned by binary
    exponent, not sorted). Each entry costs a column of ``X``: the residual
    of an update is spread over every row (``X``'s own rounding, amplified
    by the update), and only the columns of ``X`` correct it.
    """
    largest = np.abs(residual).max()
    binned = np.zeros(_BINS + 1)  # mass by how many halvings below the largest (the last bin: all further)
    for d in residual:
        if d != 0.0:
            binned[min(int(-np.log2(abs(d) / largest)), _BINS)] += abs(d)
    cut, left = _BINS + 1, 0.0
    while cut > 0 and left + binned[cut - 1] <= left_out:
        cut -= 1
        left += binned[cut]
    delta[:] = 0.0
    for j in range(residual.shape[0]):
        d = residual[j]
        if d != 0.0 and min(int(-np.log2(abs(d) / largest)), _BINS) < cut:
            col = xc[j]
            for i in range(delta.shape[0]):
                delta[i] += d * col[i]
    return _add_columns(kind, branches, base_solve, xv, mat, delta)


def _woodbury(p, branch_on, labels, n_isl, live, ref_mask, adj, branches, base_mva, base, limits, theta):
    """Angles from the base inverse by one Woodbury update, or a status saying it does not apply.

    The update takes out the branches of the base now out (but those a dark
    piece hangs from, :func:`_hung`), and grounds each energised island
    without a reference of the base at its own reference: an island held at
    one reference and the same island grounded there have the same flows.
    The update is not backward stable, so it is refined until the residual
    bounds every flow's error by ``TOL_MW`` or by rounding
    (:func:`_residual`). (The base's twin:
    :meth:`gridsim.power.dcsolver.BaseSolver.theta`.)
    """
    _, xc, theta0, q0, base_on, base_solve, base_refs, weight = base
    n = labels.shape[0]
    kept = np.empty(n_isl, dtype=np.bool_)
    ground = np.empty(n_isl, dtype=np.int64)
    hung = np.empty(base_on.shape[0], dtype=np.bool_)
    kind, applies = _plan(branch_on, labels, n_isl, live, ref_mask, adj, branches, base_on, base_solve, base_refs,
                          limits[_RANK_ROWS], kept, ground, hung)
    if not applies:
        return _NEEDS_FRESH
    q = np.empty(n)
    y = _base_solution(p, live, xc, theta0, q0, base_solve, q)
    rank = kind.shape[0]
    if rank:
        xv = np.empty((rank, n))
        mat = np.empty((rank, rank))
        _update_system(kind, branches, xc, base_solve, weight, xv, mat)
        if not _add_columns(kind, branches, base_solve, xv, mat, y):
            return _SINGULAR
        residual = np.empty(n)
        delta = np.empty(n)
        for step in range(_REFINE_STEPS + 1):
            mass, floor = _residual(y, q, branch_on, labels, kept, ground, hung, adj, branches[2], base_on,
                                    base_solve, weight, residual)
            enough = max(limits[_TOL_MW] / base_mva, limits[_ROUNDING] * floor)
            if mass <= enough:
                break
            if step == _REFINE_STEPS or not _correction(residual, mass, max(0.1 * mass, 0.5 * enough), kind,
                                                        branches, xc, base_solve, xv, mat, delta):
                return _ILL_CONDITIONED
            for i in range(n):
                y[i] += delta[i]
    for i in range(n):
        theta[i] = y[i] if live[i] else 0.0
    return _OK


def _protection(branch_on, live, theta, branches, shift_rad, watch, base_mva, flow, new):
    """``|P|`` of every watched branch (into ``flow``) and those above their limit (into ``new``); their count.

    ``watch`` is ``(branch rows, ratings, limit)``. Twin:
    ``FastCascade._overloaded``. A branch out, or without a finite rating,
    never trips.
    """
    from_row, to_row, b_pu = branches
    watched, rating, limit = watch
    m = from_row.shape[0]
    count = 0
    for w in range(watched.shape[0]):
        r = watched[w]
        k = r + m if r < 0 else r  # a watched branch without a row (-1) reads the last, as numpy does
        f, t = from_row[k], to_row[k]
        flow[w] = 0.0
        if branch_on[k] and live[f] and live[t]:
            flow[w] = abs((b_pu[k] * (theta[f] - theta[t]) + b_pu[k] * -shift_rad[k]) * base_mva)
        loading = flow[w] / rating[w] if np.isfinite(rating[w]) else 0.0
        if r >= 0 and branch_on[r] and loading > limit:
            new[count] = w
            count += 1
    return count


def _fixed_point(labels, n_isl, state, keep, load_p, demand, units, buses, energised):
    """Served load and states, islands of pandapower's buses and the energised buses (twin: ``_fixed_point``).

    ``buses`` is ``(rows of pandapower's buses in service, row of every pandapower bus)``.
    """
    load_row, load_on, _, _, _, _, _, _, _, _, row_alive = units
    pp_rows, bus_row = buses
    n_load = load_row.shape[0]
    served = np.empty(n_load)
    codes = np.empty(n_load, dtype=np.int8)
    sums = np.zeros((3, n_isl))  # per island: demand, served, loads
    for j in range(n_load):
        c = labels[load_row[j]]
        served[j] = 0.0
        if state[j] != _ISLAND:
            served[j] = min(max(load_p[j] * keep[j] * (1.0 if load_on[j] else 0.0), 0.0), demand[j])
        codes[j] = _SHED if (state[j] == _SERVED and served[j] < demand[j] - _EPS) else state[j]
        sums[0, c] += demand[j]
        sums[1, c] += served[j]
        sums[2, c] += 1.0
    seen = np.zeros(n_isl, dtype=np.bool_)
    for r in pp_rows:
        seen[labels[r]] = True
    bus = np.empty(bus_row.shape[0], dtype=np.bool_)
    for j in range(bus_row.shape[0]):
        c = labels[bus_row[j]]
        collapsed = sums[2, c] > 0 and sums[0, c] > _EPS and sums[1, c] <= _EPS
        bus[j] = row_alive[bus_row[j]] and energised[c] and not collapsed
    return served, codes, int(seen.sum()), bus


def _switched_off(on, positions):
    """A copy of ``on`` with ``positions`` off (negative ones from the end, as numpy), and whether all were valid."""
    out = on.copy()
    size = on.shape[0]
    for r in positions:
        k = r + size if r < 0 else r
        if k < 0 or k >= size:
            return out, False
        out[k] = False
    return out, True


def _units(grid):
    """The loads', static generators' and generators' arrays of ``grid`` (what the balance reads), and the rows'."""
    return (grid[_LOAD_ROW], grid[_LOAD_ON], grid[_SGEN_ROW], grid[_SGEN_P], grid[_GEN_ROW], grid[_GEN_P],
            grid[_GEN_LOW], grid[_GEN_CAP], grid[_GEN_SLACK], grid[_EXT_ROW], grid[_ALIVE])


def _untouched(load_p, grid):
    """Islands, balance and injections (phase shifts included) of the untouched grid: what the base is built from."""
    units = _units(grid)
    n = grid[_ALIVE].shape[0]
    labels = np.empty(n, dtype=np.int64)
    n_isl = _islands(grid[_BRANCH_ON], (grid[_ADJ_PTR], grid[_ADJ_NBR], grid[_ADJ_BR]), labels,
                     np.empty(n, dtype=np.int64))
    n_load = grid[_LOAD_ROW].shape[0]
    keep = np.empty(n_load)
    gen_p = np.empty(grid[_GEN_ROW].shape[0])
    live = np.empty(n, dtype=np.bool_)
    ref_mask = np.empty(n, dtype=np.bool_)
    _balance(labels, n_isl, grid[_GEN_ON], load_p, units, np.empty(n_load, dtype=np.int8), keep, gen_p,
             np.empty(n, dtype=np.bool_), live, ref_mask)
    p = np.empty(n)
    _injections(grid[_GEN_ON], gen_p, keep, load_p, units, grid[_FIXED], grid[_BASE_MVA], p)
    p_pu = np.empty(n)
    _shifted(p, grid[_BRANCH_ON], live, grid[_SHIFTERS], (grid[_FROM], grid[_TO], grid[_B]), grid[_SHIFT], p_pu)
    return n_isl, labels, live, ref_mask, p_pu


def _cascade(out_rows, out_gens, load_p, demand, grid, base, limits):
    """One DC cascade to its fixed point (twin: ``FastCascade.run_rows`` with ``flow="dc"``).

    Returns ``(status, served, state codes, trip positions, trip
    generations, trip ratios, depth, islands, watched flows, energised
    buses, branches in service)``. With a status other than 0 the kernel
    declined: the trips and depth are those of the generations it ran, the
    branches in service those the next generation starts from, and the rest
    is empty.
    """
    units = _units(grid)
    adj = (grid[_ADJ_PTR], grid[_ADJ_NBR], grid[_ADJ_BR])
    branches = (grid[_FROM], grid[_TO], grid[_B])
    watch = (grid[_WATCHED], grid[_RATING], grid[_LIMIT])
    n, n_watch, n_load, base_mva = grid[_ALIVE].shape[0], grid[_WATCHED].shape[0], grid[_LOAD_ROW].shape[0], \
        grid[_BASE_MVA]
    branch_on, fine_rows = _switched_off(grid[_BRANCH_ON], out_rows)
    gen_on, fine_gens = _switched_off(grid[_GEN_ON], out_gens)
    labels = np.empty(n, dtype=np.int64)
    state = np.empty(n_load, dtype=np.int8)
    keep = np.empty(n_load)
    gen_p = np.empty(gen_on.shape[0])
    energised = np.empty(n, dtype=np.bool_)
    live = np.empty(n, dtype=np.bool_)
    ref_mask = np.empty(n, dtype=np.bool_)
    injection = np.empty(n)
    p = np.empty(n)
    theta = np.zeros(n)
    flow = np.zeros(n_watch)
    new = np.empty(n_watch, dtype=np.int64)
    trips = np.empty((2, n_watch), dtype=np.int64)  # position, generation
    ratios = np.empty(n_watch)
    status = _OK if (fine_rows and fine_gens) else _BAD_INDEX
    n_trips, generation, balanced_for, n_isl = 0, 0, -1, 0
    while status == _OK:
        n_isl = _islands(branch_on, adj, labels, np.empty(n, dtype=np.int64))
        if n_isl != balanced_for:  # branches only go out: the same count of islands is the same partition
            _balance(labels, n_isl, gen_on, load_p, units, state, keep, gen_p, energised, live, ref_mask)
            _injections(gen_on, gen_p, keep, load_p, units, grid[_FIXED], base_mva, injection)
            balanced_for = n_isl
        _shifted(injection, branch_on, live, grid[_SHIFTERS], branches, grid[_SHIFT], p)
        # The angles: by the base's update where it applies, else afresh (nothing energised: all zero).
        status = _NEEDS_FRESH if (base[_HAS_BASE] and live.any()) else _OK
        if status == _NEEDS_FRESH:
            status = _woodbury(p, branch_on, labels, n_isl, live, ref_mask, adj, branches, base_mva, base, limits,
                               theta)
        if status == _NEEDS_FRESH or (not base[_HAS_BASE] and live.any()):
            status = _fresh(p, branch_on, labels, n_isl, live, ref_mask, branches, grid[_VA], limits[_FRESH_ROWS],
                            theta)
        count = _protection(branch_on, live, theta, branches, grid[_SHIFT], watch, base_mva, flow, new) \
            if status == _OK else 0
        if count == 0:
            break
        generation += 1
        for w in new[:count]:
            branch_on[watch[0][w]] = False
            trips[0, n_trips], trips[1, n_trips] = w, generation
            ratios[n_trips] = flow[w] / watch[1][w]
            n_trips += 1
    served, codes, islands, bus = np.zeros(0), np.zeros(0, dtype=np.int8), 0, np.zeros(0, dtype=np.bool_)
    if status == _OK:
        served, codes, islands, bus = _fixed_point(labels, n_isl, state, keep, load_p, demand, units,
                                                   (grid[_PP_ROWS], grid[_BUS_ROW]), energised)
    return (status, served, codes, trips[0, :n_trips].copy(), trips[1, :n_trips].copy(), ratios[:n_trips].copy(),
            generation, islands, flow, bus, branch_on)
