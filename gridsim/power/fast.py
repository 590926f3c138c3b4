"""The fast power cascade: the reference engine's rules on compiled arrays.

Same rules, same results as :func:`gridsim.power.cascade.run_cascade` (the
conformance suite ``tests/test_engine_contract.py``, the test suite and
``benchmarks/check_fast_engine.py`` hold the two equal: the same branches
trip, served load within 1e-6 MW), without rebuilding pandapower's case at
every step:

- islands by :func:`scipy.sparse.csgraph.connected_components` over the
  branches in service;
- balancing per island with the reference's rule, vectorised over islands;
- the DC power flow ``B θ = P`` on the rows of energised islands, with
  pandapower's own susceptances and phase-shift injections, solved by
  :mod:`gridsim.power.dcsolver` (a factorised base grid with Woodbury
  updates, or a fresh factorisation of a grid that split).

The AC cascade follows the same loop with pandapower's admittance matrices
and lightsim2grid's Newton-Raphson per island (:mod:`gridsim.power.acflow`),
the reference's out-of-step screen on the DC angles, and its voltage-collapse
rule (10 % shedding stages, in the area around the buses whose voltage
sags).

This engine is written apart from the reference, so that each checks the
other: the two share the contract (:mod:`gridsim.power.contract`) and no
rule code. Where both need the same rule, each writes it its own way and
names its twin: the dispatch (:func:`_dispatch`), the slack's shares
(:meth:`FastCascade._slack_share`), the search of the shedding stages
(:func:`_lightest_stage`).

The fallback: two kinds of cascade are beyond the arrays, and the engine
hands them whole to the reference (its ``fallback``): outages that open
bus-bus switches (they change which buses pandapower fuses into one row,
which the compiled grid fixed once), and AC islands held at two reference
buses (pandapower fixes the angle of both; the arrays' Newton-Raphson takes
one slack per island). Their results are the reference's, so the engines
agree on them by construction; every other cascade runs on the arrays.

Many outages at once: a sweep asks :meth:`FastCascade.single_outages`
(N-1) and :meth:`FastCascade.double_outages` (N-2, by
:mod:`gridsim.power.screening`) which outages need no cascade at all (they
trip nothing: outage factors on the base factorisation, dead ends found on
the grid's bridges and two-edge cuts), and runs the cascade of the rest.

An engine is an object the caller holds (:class:`FastCascade`, or
:func:`fast_engine`'s one per system, kept by :func:`gridsim.power.cache.per_system`
beside the system, never on it). It pickles without its factorisations, for
worker processes, which import this module without pandapower or
lightsim2grid (each is imported where a solver first needs it).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra

from gridsim.model.system import System
from gridsim.power.acflow import AcNetwork
from gridsim.power.cache import per_system
from gridsim.power.cascade import run_cascade
from gridsim.power.compiled import CompiledGrid, compile_grid
from gridsim.power.contract import (
    AC_SHED_STAGES,
    LOAD_ISLAND,
    LOAD_SERVED,
    LOAD_SHED,
    MAX_RINGS,
    STABILITY_LIMIT_RAD,
    TRIP_OUT_OF_STEP,
    TRIP_OVERLOAD,
    UVLS_PU,
    CascadeEngine,
    CascadeResult,
    Outages,
    Trip,
    VoltageCollapse,
    check_flow,
    labelled,
    stage_kept,
)
from gridsim.power.dcsolver import BaseSolver, fresh_solve
from gridsim.power.kernel import DcKernel
from gridsim.power.screening import MARGIN, PairScreen

__all__ = ["FastCascade", "fast_engine", "run_fast_cascade"]

try:  # scipy's own kernel behind connected_components, without its input checks (about 30 us a call)
    from scipy.sparse.csgraph._traversal import _connected_components_undirected as _undirected_components
except ImportError:  # pragma: no cover - a scipy that moved it: the public function is used
    _undirected_components = None

_EPS = 1e-9
_SERVED, _ISLAND, _SHED = 0, 1, 2
_STATE_NAMES = np.array([LOAD_SERVED, LOAD_ISLAND, LOAD_SHED], dtype=object)
_NO_LOADS = np.zeros(0, dtype=np.int64)


class _NeedsReference(Exception):
    """This cascade is beyond the arrays (two references in one island in AC): the fallback runs it."""


@labelled("fast")
def run_fast_cascade(system: System, outages: Outages = Outages(), *, flow: str = "dc") -> CascadeResult:
    """Drop-in replacement for :func:`gridsim.power.cascade.run_cascade`, compiled once per system.

    A :class:`~gridsim.power.contract.CascadeEngine` labelled ``fast``: the
    engine of :func:`fast_engine` (``system``'s, built on first use and kept
    beside it) runs the cascade.

    Parameters
    ----------
    system : gridsim.model.System
        Grid, ratings and protection tolerance.
    outages : Outages
        Branches and generators out, and load multipliers, at the start.
    flow : {"dc", "ac"}
        Power flow used by the protection rule.

    Returns
    -------
    CascadeResult
        The reference's result: the same trips in the same generations, the same load served.

    Examples
    --------
    >>> from gridsim import load_system
    >>> from gridsim.power.contract import Outages
    >>> result = run_fast_cascade(load_system("pandapower:case30"), Outages(lines=frozenset({14, 15})))
    >>> [(trip.index, trip.generation) for trip in result.trips]
    [(29, 1), (20, 2), (21, 3), (22, 3), (23, 3), (24, 3)]
    >>> result.depth, round(result.lost_mw, 1)
    (3, 44.0)
    """
    return fast_engine(system).run(outages, flow=flow)


def fast_engine(system: System) -> FastCascade:
    """The compiled engine of ``system``, built on first use and kept beside the system (never on it).

    Later calls with the same (live) system hand back the same engine; see
    :func:`gridsim.power.cache.per_system`. A caller may as well build and
    hold its own, ``FastCascade(compile_grid(system), system)``.

    Parameters
    ----------
    system : System
        The system whose grid is compiled.

    Returns
    -------
    FastCascade
        A :class:`~gridsim.power.contract.CascadeEngine` for this system:
        ``engine(system, outages, flow="dc")``.

    Examples
    --------
    >>> from gridsim import Outages, load_system
    >>> system = load_system("pandapower:case9")
    >>> engine = fast_engine(system)
    >>> engine is fast_engine(system), engine.label
    (True, 'fast')
    >>> engine(system, Outages(lines=frozenset({3}))).lost_mw >= 0
    True
    """
    return per_system(system, "fast_engine", lambda: FastCascade.kept_beside(system))


class FastCascade:
    """A compiled grid and what is worth keeping between cascades on it: the fast engine of one system.

    Parameters
    ----------
    grid : CompiledGrid
        From :func:`gridsim.power.compiled.compile_grid`.
    system : System, optional
        The system compiled; needed only to hand the cascades the arrays
        cannot express (see the module's docstring) to ``fallback``.
    fallback : CascadeEngine
        The engine of those cascades: the reference.
    """

    label = "fast"
    #: The compiled DC loop this engine runs its DC cascades in (None: the Python loop); see :meth:`with_kernel`.
    kernel: DcKernel | None = None

    def __init__(self, grid: CompiledGrid, system: System | None = None, *,
                 fallback: CascadeEngine = run_cascade) -> None:
        self.grid, self.fallback = grid, fallback
        self._system: System | weakref.ref | None = system
        g = grid
        self._line_pos = {int(i): p for p, i in enumerate(g.line_index)}
        self._trafo_pos = {int(i): p for p, i in enumerate(g.trafo_index)}
        self._trafo3w_pos = {int(i): p for p, i in enumerate(g.trafo3w_index)}
        self._gen_pos = {int(i): p for p, i in enumerate(g.gen_index)}
        self._load_pos = {int(i): p for p, i in enumerate(g.load_index)}
        # Protection watches lines and transformers: their branch rows and ratings, lines first.
        self._watched_rows = np.concatenate([g.line_branch, g.trafo_branch]).astype(np.int64)
        self._watched_rating = np.concatenate([g.line_rating_mva, g.trafo_rating_mva])
        self._watched_table = np.array(["line"] * len(g.line_branch) + ["trafo"] * len(g.trafo_branch))
        self._watched_index = np.concatenate([g.line_index, g.trafo_index]).astype(np.int64)
        self._pandapower_rows = g.bus_row[g.row_alive[g.bus_row]]
        # Both directions of every branch, sorted by row: the island graph in CSR form, masked per call.
        alive = g.row_alive[g.from_row] & g.row_alive[g.to_row]
        rows, cols = np.concatenate([g.from_row, g.to_row]), np.concatenate([g.to_row, g.from_row])
        self._sym_order = np.argsort(rows, kind="stable")
        self._sym_row = rows[self._sym_order]
        self._sym_col = cols[self._sym_order].astype(np.int32)
        self._sym_alive = np.concatenate([alive, alive])[self._sym_order]
        self._has_shift = bool(np.any(g.shift_rad != 0.0))
        self._gs_mw = g.shunt_mw
        self._all_alive: tuple[np.ndarray, frozenset[int]] | None = None
        self._base: BaseSolver | None | bool = False  # False: not built yet

    @classmethod
    def kept_beside(cls, system: System) -> FastCascade:
        """The engine :func:`fast_engine` keeps beside ``system``: it refers to the system weakly.

        The cache holds the engine for as long as the system lives; an engine
        holding the system strongly would keep it alive for ever.
        """
        engine = cls(compile_grid(system))
        engine._system = weakref.ref(system)
        return engine

    @property
    def system(self) -> System | None:
        """The system the fallback runs on (None: an engine for what the arrays express only)."""
        held = self._system
        return held() if isinstance(held, weakref.ref) else held

    @system.setter
    def system(self, system: System | None) -> None:
        self._system = system

    def __getstate__(self) -> dict:
        """Pickles without its factorisations (SuperLU objects do not pickle): rebuilt on first use.

        A system held weakly pickles as itself: an unpickled engine holds its own copy.
        """
        state = dict(self.__dict__)
        state["_system"] = self.system
        state["_base"] = False
        state.pop("_untouched_cache", None)
        state.pop("_pair_screen", None)
        state["_all_alive"] = None
        return state

    def __copy__(self) -> FastCascade:
        """A twin sharing everything built so far (factorisations, screens): ``copy.copy`` would go through
        :meth:`__getstate__` and drop them, so that every copy factorised the grid again."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def for_system(self, system: System | None) -> FastCascade:
        """This engine (its compiled grid and what it has built: factorisations, screens) with ``system`` as fallback.

        ``system`` is the one compiled, or a copy of it with the same net
        (a sweep's, without its layers); None: an engine for a worker that
        only runs what the arrays express, and pickles without the net.
        """
        twin = copy.copy(self)
        twin.system = system
        return twin

    @property
    def factorisation(self) -> str | None:
        """How the untouched grid's DC flow is factorised: ``"dense"`` (small grids), ``"sparse-lu"``, or None.

        None: its islands do not each hold one reference, and every DC flow is solved afresh.
        """
        base = self._base_solver()
        if base is None:
            return None
        return "dense" if base.inverse is not None else "sparse-lu"

    # ------------------------------------------------------------ one cascade

    def __call__(self, system: System, outages: Outages = Outages(), *, flow: str = "dc") -> CascadeResult:
        """This engine as a :class:`~gridsim.power.contract.CascadeEngine` (say ``simulate(cascade=engine)``).

        ``system`` must be the one it was compiled from (or a copy with the
        same net, ratings and tolerance): an engine runs on its own compiled
        grid, whose limits were the system's when it was compiled.
        """
        own = self.system
        if own is None:
            raise ValueError("this engine was compiled from another system, or holds none (built without one, or "
                             "its system is gone): build one with fast_engine(system)")
        same = system is own or (system.net is own.net and system.overload_tolerance == own.overload_tolerance
                                 and np.array_equal(system.line_rating_mva, own.line_rating_mva)
                                 and np.array_equal(system.trafo_rating_mva, own.trafo_rating_mva))
        if not same:
            raise ValueError("this engine was compiled from another system: build one with fast_engine(system)")
        return self.run(outages, flow=flow)

    def run(self, outages: Outages = Outages(), flow: str = "dc") -> CascadeResult:
        """Run the cascade rules to a fixed point. See :func:`gridsim.power.cascade.run_cascade`.

        Outages that open bus-bus switches, and AC islands held at two
        references, go to the fallback (the module's docstring says why).
        """
        g = self.grid
        if outages.switches:
            return self._reference(outages, flow)
        rows = [g.line_branch[self._line_pos[int(i)]] for i in outages.lines]
        rows += [g.trafo_branch[self._trafo_pos[int(i)]] for i in outages.trafos]
        rows += [r for i in outages.trafo3ws for r in g.trafo3w_branch[self._trafo3w_pos[int(i)]]]
        gens = [self._gen_pos[int(i)] for i in outages.gens]
        factor = np.ones(len(g.load_index))
        for index, value in outages.load_factor.items():
            factor[self._load_pos[int(index)]] = value
        kept = None
        if outages.load_shed:
            kept = np.ones(len(g.load_index))
            for index, share in outages.load_shed.items():
                kept[self._load_pos[int(index)]] = 1.0 - share
        try:
            return self.run_rows(np.array(rows, dtype=np.int64), np.array(gens, dtype=np.int64), factor, flow=flow,
                                 load_kept=kept)
        except _NeedsReference:
            return self._reference(outages, flow)

    def _reference(self, outages: Outages, flow: str) -> CascadeResult:
        """The fallback's cascade, for what the arrays cannot express."""
        if self.system is None:
            raise ValueError("this cascade needs the reference engine, and the engine was built without a system")
        return self.fallback(self.system, outages, flow=flow)

    def run_rows(self, branch_rows: np.ndarray, gen_positions: np.ndarray | None = None,
                 load_factor: np.ndarray | None = None, *, flow: str = "dc",
                 load_kept: np.ndarray | None = None) -> CascadeResult:
        """:meth:`run` with the outages as branch rows, generator positions and per-load factors (sweeps).

        ``load_kept`` is the share of each load's demand not cut by under-frequency relays. An
        engine with a compiled DC loop (:meth:`with_kernel`) runs DC cascades in it, and the
        generations it declines here.
        """
        check_flow(flow)
        kernel = self.kernel
        if flow == "dc" and kernel is not None:
            outcome = kernel.run(branch_rows, gen_positions, load_factor, load_kept=load_kept)
            if outcome.handled:
                return kernel.result(outcome)
            if outcome.resume_rows is not None:  # declined part-way: the rest of the cascade from where it stopped
                rest = self._run_rows_here(outcome.resume_rows, gen_positions, load_factor, flow, load_kept)
                return kernel.continued(outcome, rest)
        return self._run_rows_here(branch_rows, gen_positions, load_factor, flow, load_kept)

    def with_kernel(self, kernel: DcKernel | None = None) -> FastCascade:
        """This engine with its DC loop compiled by numba (:class:`gridsim.power.kernel.DcKernel`), for sweeps.

        Same results (``tests/test_kernel.py`` holds the two paths equal), a
        tenth of the time a cascade; but numba compiles the loop on its first
        use in a fresh install (about 15 s, then kept on disk), so a single
        run keeps the Python loop. Returns this engine unchanged where numba
        is not installed or the grid is too large for the kernel's dense inverse.
        ``kernel`` may be one already built for this grid (its inverse is then shared).
        """
        kernel = kernel if kernel is not None else DcKernel.of(self)
        if not kernel.usable:
            return self
        twin = copy.copy(self)
        twin.kernel = kernel
        return twin

    def _run_rows_here(self, branch_rows: np.ndarray, gen_positions: np.ndarray | None,
                       load_factor: np.ndarray | None, flow: str, load_kept: np.ndarray | None) -> CascadeResult:
        """The cascade loop in Python, with numpy and scipy: every flow, and what the kernel declines."""
        g = self.grid
        branch_on = g.branch_on.copy()
        branch_on[branch_rows] = False
        gen_on = g.gen_on.copy()
        if gen_positions is not None and len(gen_positions):
            gen_on[gen_positions] = False
        load_p = g.load_p_mw * load_factor if load_factor is not None else g.load_p_mw
        demand = np.maximum(load_p, 0.0) * g.load_on
        if load_kept is not None:  # shed by under-frequency relays: still demand, not in the balance or the flow
            load_p = load_p * load_kept

        trips: list[Trip] = []
        generation = 0
        balanced_for = -1
        while True:
            n_islands, labels = self._islands(branch_on)
            if n_islands != balanced_for:
                # Branches only go out within a cascade: the same count of islands is the same partition,
                # so the balance and the injections of the last generation still hold.
                island = self._balance(labels, gen_on, load_p)
                injection_pu = self._injections(island, gen_on, load_p)
                balanced_for = n_islands
            step = self._protection(flow, branch_on, n_islands, labels, island, injection_pu, gen_on, load_p)
            if not len(step.new):
                break
            generation += 1
            for k in step.new:
                branch_on[self._watched_rows[k]] = False
                trips.append(Trip(str(self._watched_table[k]), int(self._watched_index[k]), generation,
                                  float(step.ratio[k]), step.cause))
        return self._fixed_point(trips, generation, labels, island, step, load_p, demand)

    def _protection(self, flow: str, branch_on: np.ndarray, n_islands: int, labels: np.ndarray, island: _Island,
                    injection_pu: np.ndarray, gen_on: np.ndarray, load_p: np.ndarray) -> _Generation:
        """One generation's protection: in AC the out-of-step screen first; else the power flow and the overloads."""
        if flow == "ac":
            if (np.bincount(labels[island.refs], minlength=len(island.energised)) > 1).any():
                raise _NeedsReference  # an island pinned at two references: pandapower fixes both
            angles = self._angles(branch_on, labels, island, injection_pu)
            unstable = self._out_of_step(*angles[:2])
            if unstable is not None:
                return _Generation(unstable[0], unstable[1], TRIP_OUT_OF_STEP)
            carried, stage_keep, collapse = self._ac(branch_on, labels, island, angles, gen_on, load_p)
        else:
            carried = np.abs(self._flows(branch_on, n_islands, labels, island, injection_pu))
            stage_keep, collapse = None, None
        watched = carried[self._watched_rows] if len(self._watched_rows) else np.zeros(0)
        new, ratio = self._overloaded(branch_on, watched)
        return _Generation(new, ratio, TRIP_OVERLOAD, watched, stage_keep, collapse)

    def _fixed_point(self, trips: list[Trip], generation: int, labels: np.ndarray, island: _Island,
                     last: _Generation, load_p: np.ndarray, demand: np.ndarray) -> CascadeResult:
        """The result of a cascade whose generation ``last`` tripped nothing."""
        g = self.grid
        state, keep = island.state, island.keep
        if last.stage_keep is not None:
            keep = keep * last.stage_keep
        served = np.where(state == _ISLAND, 0.0, np.clip(load_p * keep * g.load_on, 0.0, demand))
        state = _STATE_NAMES[np.where((state == _SERVED) & (served < demand - _EPS), _SHED, state)]
        n_lines = len(g.line_branch)
        energised = self._energised(labels, island.energised, served, demand)
        n_islands = int(np.count_nonzero(np.bincount(labels[self._pandapower_rows])))
        watched = last.watched
        return CascadeResult(
            trips=trips, demand_mw=demand, served_mw=served, load_state=state, depth=generation,
            islands=n_islands, line_flow_mva=watched[:n_lines], trafo_flow_mva=watched[n_lines:],
            collapse=last.collapse, energised_buses=energised)

    # ------------------------------------------------------------ many single outages at once

    def single_outages(self, rows: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
        """Single-branch outages decided at once, without a cascade each, where that is exact.

        Returns ``trivial`` (per row) and, per row, the load positions the
        outage cuts off. A trivial outage trips nothing: either it splits
        nothing and overloads nothing, or it is a bridge whose far side holds no
        source (its loads are cut off) while the near side keeps an external
        grid and overloads nothing. The rest need :meth:`run_rows`.

        Flows after the outage come from the base factorisation: line outage
        distribution factors ``f'_w = f_w + Φ_wk / (1 - Φ_kk) f_k`` for a
        branch inside a loop; for a bridge, the flow it carried into the dead
        side is taken off the near end, ``f'_w = f_w + PTDF_wm f_k``. Cases
        near a bridge or near a limit are left to the exact cascade. Nothing is
        trivial if the untouched grid is not itself quiet.
        """
        g = self.grid
        rows = np.asarray(rows, dtype=np.int64)
        trivial = np.zeros(len(rows), dtype=bool)
        cut: list[np.ndarray] = [_NO_LOADS] * len(rows)
        base = self._base_solver()
        start = self._untouched()
        if base is None or start is None:
            return trivial, cut
        flow, labels, island = start
        on = base.on
        trivial[~on[rows]] = True  # an outage of a branch already out changes nothing
        live = np.flatnonzero(on[rows])
        watched = self._watched_rows
        watched_on = (watched >= 0) & on[np.maximum(watched, 0)]
        w_rows = watched[watched_on]
        allowed = (g.limit * self._watched_rating[watched_on]) * (1.0 - 1e-9)
        b_w = g.b_pu[w_rows]
        fw, tw = g.from_row[w_rows], g.to_row[w_rows]
        bridges: list[int] = []
        for start_at in range(0, len(live), chunk):
            positions = live[start_at:start_at + chunk]
            k = rows[positions]
            f, t = g.from_row[k], g.to_row[k]
            z = base.column_difference(f, t)  # X (e_f - e_t), one column per outage
            cols = np.arange(len(k))
            phi_kk = g.b_pu[k] * (z[f, cols] - z[t, cols])
            denominator = 1.0 - phi_kk
            bridge = np.abs(denominator) < 1e-8
            with np.errstate(divide="ignore", invalid="ignore"):
                after = flow[w_rows][:, None] + b_w[:, None] * (z[fw] - z[tw]) * (
                    flow[k] / np.where(bridge, 1.0, denominator))[None, :]
            fine = (np.abs(after) <= allowed[:, None]) | (w_rows[:, None] == k[None, :])
            trivial[positions] = ~bridge & fine.all(axis=0)
            bridges.extend(positions[bridge].tolist())
        if bridges:
            self._dead_ends(rows, np.array(bridges), flow, labels, island, trivial, cut, w_rows, allowed)
        return trivial, cut

    def double_outages(self, pairs: np.ndarray, block: int = 4096) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Double-branch outages decided at once, without a cascade each, where that is exact (DC).

        The N-2 twin of :meth:`single_outages`, by
        :class:`gridsim.power.screening.PairScreen` (its docstring says how):
        a pair is trivial when its cascade trips nothing, either because it
        splits nothing and overloads nothing, or because what it splits off
        holds no source while the rest keeps its external grid and overloads
        nothing. Pairs with a row already out, twice the same row, parallel
        branches, a two-edge cut: all decided as their cascade. The rest need
        :meth:`run_rows`. Nothing is trivial if the untouched grid is not
        itself quiet, or its islands do not each hold one reference.

        Parameters
        ----------
        pairs : numpy.ndarray
            Shape (n, 2): the two branch rows of each scenario (lines' rows
            are ``grid.line_branch``, transformers' ``grid.trafo_branch``).
        block : int
            Pairs screened at once; memory grows with it.

        Returns
        -------
        trivial : numpy.ndarray
            Per pair (bool): its cascade trips nothing (depth 0, no trips).
        cut : list of numpy.ndarray
            Per pair: load positions cut off (in islands without a source:
            served 0, all their customers out); every other load is served
            as in the untouched grid. Meaningful where ``trivial``; read-only
            arrays, shared between pairs that cut off the same pieces.
        extra_islands : numpy.ndarray
            Per pair (int): islands more than the untouched grid has, 0, 1 or
            2 (a pair may cut off two separate pieces, or split a dark island);
            the cascade's ``islands`` is the untouched grid's plus this.

        Examples
        --------
        case9's lines 1 and 2 are the only two into bus 4: out together,
        they cut off its load (position 0); lines 3 and 6 out overload line 0,
        a pair for the cascade.

        >>> from gridsim import load_system
        >>> engine = fast_engine(load_system("pandapower:case9"))
        >>> rows = engine.grid.line_branch
        >>> trivial, cut, extra = engine.double_outages(np.array([[rows[1], rows[2]], [rows[3], rows[6]]]))
        >>> trivial.tolist(), [loads.tolist() for loads in cut], extra.tolist()
        ([True, False], [[0], []], [1, 0])
        """
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        screen = self.pair_screen
        if screen is None:
            return np.zeros(len(pairs), dtype=bool), [_NO_LOADS] * len(pairs), np.zeros(len(pairs), dtype=np.int64)
        return screen.screen(pairs, block)

    @property
    def pair_screen(self) -> PairScreen | None:
        """The screen of :meth:`double_outages` (built on first use, not pickled; None: nothing can be settled)."""
        if getattr(self, "_pair_screen", False) is False:
            base, start = self._base_solver(), self._untouched()
            screen = None
            if base is not None and start is not None:
                flow, labels, island = start
                watched = self._watched_rows
                watched_on = (watched >= 0) & base.on[np.maximum(watched, 0)]
                allowed = (self.grid.limit * self._watched_rating[watched_on]) * (1.0 - MARGIN)
                screen = PairScreen(self.grid, base, flow, labels, island.energised, island.has_ext,
                                    watched[watched_on], allowed, self._pandapower_rows, self._islands_hold)
            self._pair_screen = screen
        return self._pair_screen

    def _islands_hold(self, bridges: np.ndarray, far_rows: np.ndarray) -> np.ndarray:
        """With ``bridges`` out at once, whether the island of each of ``far_rows`` sheds nothing and trips nothing.

        The cascade's own rules on the grid without them: the balance of
        every island (a generator's island re-dispatched alone), its DC flow,
        the limits less the screen's margin. Each bridge leads to a far side
        with a generator and no other such bridge beyond it, so each far side
        is one island here, as it is when its bridge goes out with any branch
        outside it.
        """
        g = self.grid
        branch_on = g.branch_on.copy()
        branch_on[bridges] = False
        n_islands, labels = self._islands(branch_on)
        island = self._balance(labels, g.gen_on, g.load_p_mw)
        flow = self._flows(branch_on, n_islands, labels, island, self._injections(island, g.gen_on, g.load_p_mw))
        far = labels[far_rows]
        shed = np.zeros(n_islands, dtype=bool)
        shed[labels[g.load_row][(island.state != _SERVED) | (island.keep != 1.0)]] = True
        rows = self._watched_rows
        on = (rows >= 0) & branch_on[np.maximum(rows, 0)]
        over = np.abs(flow[rows]) > self._watched_rating * g.limit * (1.0 - MARGIN)
        overloaded = np.zeros(n_islands, dtype=bool)
        overloaded[labels[g.from_row[rows[on & over]]]] = True
        return island.energised[far] & ~shed[far] & ~overloaded[far]

    def _dead_ends(self, rows, positions, flow, labels, island, trivial, cut, w_rows, allowed) -> None:
        """Bridges whose far side has no source, while the near side keeps an external grid.

        The far side of every bridge at once: islands of the grid without all
        the bridges are the nodes of a forest whose edges are the bridges; the
        far side of a bridge is the subtree below it, seen from the island's
        reference, and a depth-first order makes every subtree a range.
        """
        g = self.grid
        base = self._base_solver()
        k_all = rows[positions]
        branch_on = base.on.copy()
        branch_on[k_all] = False
        _, comp = self._islands(branch_on)
        n_comp = int(comp.max()) + 1
        ends = np.stack([comp[g.from_row[k_all]], comp[g.to_row[k_all]]], axis=1)
        roots = [int(comp[ref]) for ref in island.refs[island.has_ext[labels[island.refs]]]]
        tin, tout, child_of_bridge, clock = _bridge_forest(n_comp, ends, roots)
        order = np.full(n_comp, -1, dtype=np.int64)  # component -> position in the depth-first order
        order[tin >= 0] = tin[tin >= 0]
        source_rows = np.concatenate([g.ext_row, g.gen_row[g.gen_on]])
        source_at = np.zeros(clock + 1)
        placed = order[comp[source_rows]]
        np.add.at(source_at, placed[placed >= 0], 1.0)
        sources_before = np.concatenate([[0.0], np.cumsum(source_at)])
        load_order = order[comp[g.load_row]]
        loads_by_order = np.argsort(load_order, kind="stable")
        sorted_order = load_order[loads_by_order]
        keep = []
        for j, child in enumerate(child_of_bridge.tolist()):
            if child < 0:
                continue  # in an island without an external grid: generators would re-dispatch
            lo, hi = tin[child], tout[child]
            if sources_before[hi] - sources_before[lo] > 0:
                continue  # the far side holds a source: balancing, not a dead end
            span = loads_by_order[np.searchsorted(sorted_order, lo):np.searchsorted(sorted_order, hi)]
            keep.append((j, span))  # out of service too: in a dark island its customers count as off supply
        if not keep:
            return
        picked = np.array([j for j, _ in keep])
        k = k_all[picked]
        far_is_to = order[comp[g.to_row[k]]] >= tin[child_of_bridge[picked]]
        far_is_to &= order[comp[g.to_row[k]]] < tout[child_of_bridge[picked]]
        near = np.where(far_is_to, g.from_row[k], g.to_row[k])
        into_far = np.where(far_is_to, flow[k], -flow[k])
        columns = base.columns(near)
        after = flow[w_rows][:, None] + g.b_pu[w_rows][:, None] * (
            columns[g.from_row[w_rows]] - columns[g.to_row[w_rows]]) * into_far[None, :]
        fine = ((np.abs(after) <= allowed[:, None]) | (w_rows[:, None] == k[None, :])).all(axis=0)
        for (j, cut_loads), ok in zip(keep, fine.tolist()):
            if ok:
                trivial[positions[j]] = True
                cut[positions[j]] = cut_loads

    def _untouched(self) -> tuple[np.ndarray, np.ndarray, _Island] | None:
        """Flows, islands and balance of the untouched grid, if its cascade trips nothing (kept)."""
        if getattr(self, "_untouched_cache", False) is False:
            g = self.grid
            n_islands, labels = self._islands(g.branch_on)
            island = self._balance(labels, g.gen_on, g.load_p_mw)
            flow = self._flows(g.branch_on, n_islands, labels, island, self._injections(island, g.gen_on, g.load_p_mw))
            watched = np.abs(flow[self._watched_rows])
            tripping = len(self._overloaded(g.branch_on, watched)[0])
            self._untouched_cache = None if tripping else (flow, labels, island)
        return self._untouched_cache

    # ------------------------------------------------------------ rules

    def _islands(self, branch_on: np.ndarray) -> tuple[int, np.ndarray]:
        """Number of islands over all rows (dead rows count alone) and the island of every row."""
        g = self.grid
        on = np.concatenate([branch_on, branch_on])[self._sym_order] & self._sym_alive
        indptr = np.zeros(g.n_bus + 1, dtype=np.int32)
        np.cumsum(np.bincount(self._sym_row[on], minlength=g.n_bus), out=indptr[1:])
        indices = self._sym_col[on]
        if _undirected_components is not None:
            labels = np.full(g.n_bus, -1, dtype=np.int32)
            count = _undirected_components(indices, indptr, indices, indptr, labels)
            return int(count), labels
        graph = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(g.n_bus, g.n_bus))
        return connected_components(graph, directed=False)

    def _balance(self, labels: np.ndarray, gen_on: np.ndarray, load_p: np.ndarray) -> _Island:
        """The reference's balancing rule, written over every island at once (the dispatch: :func:`_dispatch`)."""
        g = self.grid
        n = labels.max() + 1 if len(labels) else 0
        load_isl, gen_isl, sgen_isl = labels[g.load_row], labels[g.gen_row], labels[g.sgen_row]
        has_ext = np.zeros(n, dtype=bool)
        has_ext[labels[g.ext_row]] = True
        has_gen = np.zeros(n, dtype=bool)
        has_gen[gen_isl[gen_on]] = True
        energised = has_ext | has_gen

        state = np.where(energised[load_isl], _SERVED, _ISLAND)
        keep = energised[load_isl].astype(float)
        gen_p = g.gen_p_mw.copy()
        slack = g.gen_slack & has_ext[gen_isl]  # islands with an external grid keep their slack flags
        own = energised & ~has_ext  # islands the generators must balance alone
        if own.any():
            balancing = own[gen_isl] & gen_on
            load_mw = np.bincount(load_isl, weights=load_p * g.load_on, minlength=n)
            sgen_mw = np.bincount(sgen_isl, weights=g.sgen_p_mw, minlength=n)
            cap_sum = np.bincount(gen_isl[balancing], weights=g.gen_cap_mw[balancing], minlength=n)
            net_demand = load_mw - sgen_mw
            short = own & (net_demand > cap_sum)
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(load_mw > 0, (cap_sum + sgen_mw) / load_mw, 1.0)
            shed_loads = short[load_isl]
            keep[shed_loads] = np.clip(fraction[load_isl[shed_loads]], 0.0, 1.0)
            cut = shed_loads & (load_p * g.load_on > 0) & (fraction[load_isl] < 1.0 - 1e-12)
            state[cut] = _SHED
            gen_p[balancing] = _dispatch(gen_isl[balancing], g.gen_low_mw[balancing], g.gen_cap_mw[balancing],
                                         net_demand)
            # The slack of each such island: its largest generator (first of equals).
            positions = np.flatnonzero(balancing)
            order = np.lexsort((positions, -g.gen_cap_mw[positions], gen_isl[positions]))
            first = np.ones(len(order), dtype=bool)
            first[1:] = gen_isl[positions[order]][1:] != gen_isl[positions[order]][:-1]
            slack[positions[order][first]] = True
        slack &= gen_on
        live_row = g.row_alive & energised[labels]
        ref_mask = np.zeros(g.n_bus, dtype=bool)
        ref_mask[g.ext_row] = True
        ref_mask[g.gen_row[slack]] = True
        ref_mask &= live_row
        return _Island(state=state, keep=keep, gen_p=gen_p, slack=slack, energised=energised, has_ext=has_ext,
                       live_row=live_row, refs=np.flatnonzero(ref_mask), ref_mask=ref_mask)

    def _injections(self, island: _Island, gen_on: np.ndarray, load_p: np.ndarray) -> np.ndarray:
        """Net injection of every row (per unit), before phase-shift injections."""
        g = self.grid
        n = g.n_bus
        p_mw = (np.bincount(g.gen_row[gen_on], weights=island.gen_p[gen_on], minlength=n)
                + np.bincount(g.sgen_row, weights=g.sgen_p_mw, minlength=n)
                - np.bincount(g.load_row, weights=load_p * island.keep * g.load_on, minlength=n)
                - g.fixed_withdrawal_mw)
        return p_mw / g.base_mva

    def _flows(self, branch_on: np.ndarray, n_islands: int, labels: np.ndarray, island: _Island,
               injection_pu: np.ndarray) -> np.ndarray:
        """DC branch flows (MW, from side) of every branch; zero outside energised islands."""
        g = self.grid
        theta, on, b, shift_inj = self._angles(branch_on, labels, island, injection_pu)
        return np.where(on, b * (theta[g.from_row] - theta[g.to_row]) + shift_inj, 0.0) * g.base_mva

    def _angles(self, branch_on: np.ndarray, labels: np.ndarray, island: _Island, injection_pu: np.ndarray):
        """DC angles of every row, the branches in service, their susceptances and phase-shift injections."""
        g = self.grid
        live_row, refs = island.live_row, island.refs
        on = branch_on & live_row[g.from_row] & live_row[g.to_row]
        b = np.where(on, g.b_pu, 0.0)
        shift_inj = b * -g.shift_rad  # pandapower's Pfinj
        if not live_row.any():
            return np.zeros(g.n_bus), on, b, shift_inj
        p_pu = injection_pu
        if self._has_shift:  # a new array: the injections are reused by later generations
            p_pu = p_pu + (np.bincount(g.to_row, weights=shift_inj, minlength=g.n_bus)
                     - np.bincount(g.from_row, weights=shift_inj, minlength=g.n_bus))
        base = self._base_solver()
        theta = base.theta(p_pu, on, labels, island) if base is not None else None
        if theta is None:
            theta = np.zeros(g.n_bus)
            solve = live_row.copy()
            solve[refs] = False
            theta[refs] = g.va_rad[refs]
            theta = fresh_solve(g, b, on, np.flatnonzero(solve), refs, theta, p_pu)
        return theta, on, b, shift_inj

    def _out_of_step(self, theta: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Watched branches whose DC angle passes ``STABILITY_LIMIT_RAD`` (positions, DC flow / limit), or None.

        The reference's rule (:func:`gridsim.power.cascade.run_cascade`): such a
        branch carries more than ``V^2 / X``, which no AC flow does; out-of-step
        protection opens it before an AC flow is tried. ``theta`` and ``on`` are :meth:`_angles`' DC angles
        and branches in service.
        """
        g = self.grid
        rows = self._watched_rows
        if not len(rows):
            return None
        delta = theta[g.from_row[rows]] - theta[g.to_row[rows]] - g.shift_rad[rows]
        ratio = np.where(on[rows] & (rows >= 0), np.abs(delta) / STABILITY_LIMIT_RAD, 0.0)
        beyond = np.flatnonzero(ratio > 1.0)
        return (beyond, ratio) if len(beyond) else None

    def _ac(self, branch_on, labels, island: _Island, angles, gen_on, load_p):
        """AC flows (MVA) with the reference's voltage-collapse rule.

        Islands whose power flow does not converge are shed in 10 % stages
        (their loads and generators together) until every island converges;
        then the area around their buses below ``UVLS_PU`` is tried instead,
        as in :func:`gridsim.power.cascade.run_cascade`; at 0 % the failing
        islands are dark, as in the reference. Returns the flows, the per-load factor the
        stages left (or None) and the :class:`VoltageCollapse` (or None).
        """
        g = self.grid
        live_row, refs = island.live_row, island.refs
        theta, on, _, _ = angles  # the DC solution of this generation, the AC flow's first start
        network = AcNetwork(g, on)
        energised = np.flatnonzero(island.energised & (np.bincount(labels[live_row], minlength=len(
            island.energised)) > 0))
        rows_of = {int(label): np.flatnonzero(live_row & (labels == label)) for label in energised}
        pv = g.gen_row[gen_on & live_row[g.gen_row]]
        voltage = np.zeros(g.n_bus, dtype=complex)
        share = self._slack_share(labels, island, gen_on)
        s_mva = self._complex_injections(island, gen_on, load_p, None, None)
        failing = [label for label, rows in rows_of.items()
                   if not network.solve(rows, refs, pv, s_mva, theta, voltage, share)]
        if not failing:
            return network.branch_mva(voltage), None, None
        load_isl = labels[g.load_row]
        failing_mask = np.zeros(len(island.energised), dtype=bool)
        failing_mask[failing] = True
        loads = failing_mask[load_isl] & (island.state != _ISLAND)
        in_area = failing_mask[labels]
        gens, sgens = in_area[g.gen_row], in_area[g.sgen_row]
        demand = np.maximum(load_p * island.keep * g.load_on, 0.0)

        def converges(zone: np.ndarray | None, kept: float) -> bool:
            """Whether the failing islands converge with ``zone``'s rows (None: all) cut to ``kept``."""
            at = np.ones(g.n_bus, dtype=bool) if zone is None else zone
            s = self._complex_injections(island, gen_on, load_p, np.where(loads & at[g.load_row], kept, 1.0),
                                         np.where(gens & at[g.gen_row], kept, 1.0),
                                         np.where(sgens & at[g.sgen_row], kept, 1.0))
            # pandapower's init="dc": the DC angles of the injections being tried, not of the full load.
            start = self._angles(branch_on, labels, island, (s.real - self._gs_mw) / g.base_mva)[0]
            return all(network.solve(rows_of[label], refs, pv, s, start, voltage, share) for label in failing)

        stages = _lightest_stage(lambda kept: converges(None, kept))
        if stages is None:  # not even without their load: the failing islands go dark, the others stand
            voltage[in_area] = 0.0
            return (network.branch_mva(voltage), np.where(loads, 0.0, 1.0),
                    VoltageCollapse(AC_SHED_STAGES, loads, float(demand[loads].sum()), None))
        chosen = VoltageCollapse(stages, loads, float(demand[loads].sum()) * (1.0 - stage_kept(stages)), None)
        local = self._local_collapse(branch_on, labels, failing_mask, voltage, loads, demand, chosen, converges)
        if local is None:
            converges(None, stage_kept(stages))  # back to the whole islands' stage
        else:
            chosen = local
        return (network.branch_mva(voltage), np.where(chosen.loads, stage_kept(chosen.stages), 1.0), chosen)

    def _slack_share(self, labels: np.ndarray, island: _Island, gen_on: np.ndarray) -> np.ndarray:
        """Per row, its generators' share of the AC slack in islands without an external grid.

        The reference's rule, written here over every island at once: in
        proportion to their dispatch range (max_p - min_p), equal shares where
        every range is zero; zero in islands an external grid holds. A
        deliberate pair: its twin is :func:`gridsim.power.cascade.slack_weights`.
        """
        g = self.grid
        gen_isl = labels[g.gen_row]
        own = gen_on & island.energised[gen_isl] & ~island.has_ext[gen_isl]
        weight = np.where(own, np.maximum(g.gen_cap_mw - g.gen_low_mw, 0.0), 0.0)
        total = np.bincount(gen_isl[own], weights=weight[own], minlength=len(island.energised))
        weight = np.where(own & (total[gen_isl] <= 0.0), 1.0, weight)
        return np.bincount(g.gen_row[own], weights=weight[own], minlength=g.n_bus)

    def _local_collapse(self, branch_on, labels, failing_mask, voltage, loads, demand, uniform: VoltageCollapse,
                        converges) -> VoltageCollapse | None:
        """The reference's smaller area: buses below ``UVLS_PU`` and one branch more at a time.

        Distances count branches as the reference's graph does: pandapower
        fuses switched buses into one row, and a three-winding transformer's
        two halves through its star point count half each. Returns None where
        no area converges while cutting less than ``uniform``; the voltages
        are then left at some trial and must be solved again.
        """
        g = self.grid
        bus_row = np.zeros(g.n_bus, dtype=bool)
        bus_row[self._pandapower_rows] = True  # rows that stand for pandapower buses (not star points)
        area = bus_row & g.row_alive & failing_mask[labels]
        weak = np.flatnonzero(area & (np.abs(voltage) < UVLS_PU))
        if not len(weak):
            return None
        distance = self._hops_from(branch_on, weak)
        previous = None
        for ring in range(MAX_RINGS + 1):
            zone = distance <= ring
            if (zone | ~area).all() or (previous is not None and np.array_equal(zone & bus_row, previous)):
                break
            previous = zone & bus_row
            if not converges(zone, 0.0):
                continue
            stages = _lightest_stage(lambda kept, z=zone: converges(z, kept), known=AC_SHED_STAGES)
            zone_loads = loads & zone[g.load_row]
            shed_mw = float(demand[zone_loads].sum()) * (1.0 - stage_kept(stages))
            return VoltageCollapse(stages, zone_loads, shed_mw, ring) if shed_mw <= uniform.shed_mw else None
        return None

    def _hops_from(self, branch_on: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Branches to cross from the nearest of ``rows`` to every row (inf beyond ``MAX_RINGS``)."""
        g = self.grid
        on = branch_on & g.row_alive[g.from_row] & g.row_alive[g.to_row] & (g.from_row != g.to_row)
        half = np.zeros(g.n_branch, dtype=bool)
        star = g.trafo3w_branch.ravel()
        half[star[star >= 0]] = True
        a, b = np.minimum(g.from_row, g.to_row)[on], np.maximum(g.from_row, g.to_row)[on]
        weight = np.where(half[on], 0.5, 1.0)
        order = np.lexsort((weight, b, a))  # parallel branches: the lightest
        a, b, weight = a[order], b[order], weight[order]
        first = np.ones(len(a), dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        graph = sp.csr_matrix((weight[first], (a[first], b[first])), shape=(g.n_bus, g.n_bus))
        return dijkstra(graph, directed=False, indices=rows, min_only=True, limit=MAX_RINGS)

    def _complex_injections(self, island: _Island, gen_on, load_p, load_scale, gen_scale,
                            sgen_scale=None) -> np.ndarray:
        """Generation minus load at every row (MVA, complex); shunts are in the admittance matrix.

        ``load_scale``, ``gen_scale`` and ``sgen_scale`` (per element, or None) are the voltage-collapse
        rule's cuts.
        """
        g = self.grid
        n = g.n_bus
        keep = island.keep * g.load_on * (load_scale if load_scale is not None else 1.0)
        gen_p = island.gen_p * (gen_scale if gen_scale is not None else 1.0)
        sgen = sgen_scale if sgen_scale is not None else 1.0
        p = (np.bincount(g.gen_row[gen_on], weights=gen_p[gen_on], minlength=n)
             + np.bincount(g.sgen_row, weights=g.sgen_p_mw * sgen, minlength=n)
             - np.bincount(g.load_row, weights=load_p * keep, minlength=n)
             - (g.fixed_withdrawal_mw - self._gs_mw))
        q = (np.bincount(g.sgen_row, weights=g.sgen_q_mvar * sgen, minlength=n)
             - np.bincount(g.load_row, weights=g.load_q_mvar * self._load_q_factor(load_p) * keep, minlength=n)
             - g.fixed_withdrawal_q_mvar)
        return p + 1j * q

    def _load_q_factor(self, load_p: np.ndarray) -> np.ndarray:
        """Loads scaled by an attack draw reactive power in proportion (pandapower's ``scaling``)."""
        g = self.grid
        return np.divide(load_p, g.load_p_mw, out=np.ones_like(load_p), where=g.load_p_mw != 0)

    def _base_solver(self) -> BaseSolver | None:
        """The factorised untouched grid, if its islands each hold one reference (built once)."""
        if self._base is False:
            g = self.grid
            n_islands, labels = self._islands(g.branch_on)
            island = self._balance(labels, g.gen_on, g.load_p_mw)
            self._base = BaseSolver.build(g, n_islands, labels, island)
        return self._base

    def _overloaded(self, branch_on: np.ndarray, watched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the watched branches in service above their limit, and every one's flow / rating."""
        rating = self._watched_rating
        loading = np.divide(watched, rating, out=np.zeros_like(watched), where=np.isfinite(rating))
        in_service = branch_on[self._watched_rows] & (self._watched_rows >= 0)
        return np.flatnonzero(in_service & (loading > self.grid.limit)), loading

    def _energised(self, labels, energised_island, served, demand) -> frozenset[int]:
        """Buses of islands with a source, less islands whose whole demand went unserved."""
        g = self.grid
        n = len(energised_island)
        load_isl = labels[g.load_row]
        demand_isl = np.bincount(load_isl, weights=demand, minlength=n)
        served_isl = np.bincount(load_isl, weights=served, minlength=n)
        has_load = np.bincount(load_isl, minlength=n) > 0
        collapsed = has_load & (demand_isl > _EPS) & (served_isl <= _EPS)
        alive = energised_island & ~collapsed
        bus_alive = g.row_alive[g.bus_row] & alive[labels[g.bus_row]]
        if self._all_alive is not None and np.array_equal(bus_alive, self._all_alive[0]):
            return self._all_alive[1]
        buses = frozenset(g.bus_index[bus_alive].tolist())
        if self._all_alive is None:
            self._all_alive = (bus_alive, buses)  # the first cascade's (usually everything): reused when equal
        return buses


def _dispatch(island_of: np.ndarray, low: np.ndarray, cap: np.ndarray, net_demand: np.ndarray) -> np.ndarray:
    """The dispatch rule, every island at once: the output of each balancing generator.

    ``island_of``, ``low`` and ``cap`` are per generator (its island, its
    limits), ``net_demand`` per island. In an island short of capacity every
    generator runs at its maximum; at or below the sum of the minimums they
    share the demand in proportion to their minimums; in between each takes
    its minimum and a share of the rest in proportion to its headroom. This
    engine's one home of the rule; a deliberate pair, its twin (one island at
    a time) is :func:`gridsim.power.cascade.dispatch`.
    """
    n = len(net_demand)
    low_sum = np.bincount(island_of, weights=low, minlength=n)[island_of]
    cap_sum = np.bincount(island_of, weights=cap, minlength=n)[island_of]
    room_sum = np.bincount(island_of, weights=cap - low, minlength=n)[island_of]
    demand = net_demand[island_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        at_low = np.where(low_sum > 0, low * (np.maximum(demand, 0.0) / low_sum), 0.0)
        between = low + (demand - low_sum) * (cap - low) / room_sum
    return np.where(demand > cap_sum, cap, np.where(demand <= low_sum, at_low, between))


def _lightest_stage(converges: Callable[[float], bool], known: int | None = None) -> int | None:
    """The first 10 % stage at which ``converges(kept)`` holds (None: none), the flow left solved at it.

    ``known`` is a stage known to converge: reached, it is solved once more
    rather than tested. A deliberate pair: the reference's twin is
    :func:`gridsim.power.cascade._lightest_stage`.
    """
    stages = next((s for s in range(1, AC_SHED_STAGES + 1) if s == known or converges(stage_kept(s))), None)
    if stages is not None and stages == known:
        converges(stage_kept(stages))  # leave the voltages at it
    return stages


def _bridge_forest(n_comp: int, ends: np.ndarray, roots: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Depth-first entry and exit times over a forest of components joined by bridges.

    ``ends`` holds the two components of each bridge; the walk starts at each
    of ``roots`` in turn (a component already reached is skipped). Returns
    ``tin`` (-1: not reached), ``tout``, the component each bridge leads down
    to (-1: not walked) and the clock at the end: the subtree below a bridge
    is the range ``tin[child] .. tout[child]``.
    """
    adjacency: dict[int, list[tuple[int, int]]] = {}
    for j, (a, b) in enumerate(ends.tolist()):
        adjacency.setdefault(a, []).append((b, j))
        adjacency.setdefault(b, []).append((a, j))
    tin = np.full(n_comp, -1, dtype=np.int64)
    tout = np.zeros(n_comp, dtype=np.int64)
    child_of_bridge = np.full(len(ends), -1, dtype=np.int64)
    clock = 0
    for root in roots:
        if tin[root] >= 0:
            continue
        stack = [(root, iter(adjacency.get(root, ())))]
        tin[root] = clock
        clock += 1
        while stack:
            node, edges = stack[-1]
            step = next(edges, None)
            if step is None:
                tout[node] = clock
                stack.pop()
                continue
            other, j = step
            if tin[other] < 0:
                tin[other] = clock
                clock += 1
                child_of_bridge[j] = other
                stack.append((other, iter(adjacency.get(other, ()))))
    return tin, tout, child_of_bridge, clock


@dataclass(frozen=True)
class _Generation:
    """What one generation's protection decided: the watched branches to trip, and what the flow left."""

    new: np.ndarray  # positions among the watched branches
    ratio: np.ndarray  # per watched branch: flow / rating (overload) or DC angle / limit (out of step)
    cause: str
    watched: np.ndarray | None = None  # per watched branch: its flow (MVA); None for an out-of-step generation
    stage_keep: np.ndarray | None = None  # per load: what the voltage-collapse stages left
    collapse: VoltageCollapse | None = None


@dataclass
class _Island:
    """The balance of one partition into islands: what each load keeps, dispatch, references."""

    state: np.ndarray  # per load: _SERVED, _ISLAND or _SHED
    keep: np.ndarray  # per load: fraction kept
    gen_p: np.ndarray
    slack: np.ndarray  # per generator
    energised: np.ndarray  # per island
    has_ext: np.ndarray  # per island
    live_row: np.ndarray  # per row: in an energised island
    refs: np.ndarray  # reference rows (external grids, slack generators) of energised islands
    ref_mask: np.ndarray
