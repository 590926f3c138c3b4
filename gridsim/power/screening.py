"""Double-outage screening: pairs of branch outages settled from the untouched grid, without a cascade each.

A sweep of every double outage (N-2) of a large grid runs millions of pairs,
and most of them neither split the grid nor overload a branch: a cascade is
a long way to learn that nothing trips. :class:`PairScreen` decides such
pairs from the untouched grid's DC flows and its factorisation alone,
vectorised over many pairs, and leaves every other pair to the cascade. A
pair it settles trips nothing; what it returns is what the cascade would:

- the topology, once per grid (:func:`branch_topology`): a depth-first
  forest over the branches in service, whose subtrees are ranges of the
  visiting order; bridges from low links; and the classes of two-edge cuts
  (two branches that split their island only together share a class: they
  lie on exactly the same cycles; found by hashing the fundamental cycles
  through each branch, then checked exactly, so a hash collision costs time,
  never a wrong class);
- a pair that splits nothing: multiple-outage distribution factors, a 2x2
  solve per pair, ``f' = f + M_O (I - M_OO)^-1 f_O``, with
  ``M_wk = b_w (e_fw - e_tw)^T X (e_fk - e_tk)`` from the base
  factorisation ``X`` (Güler, Gross and Liu, IEEE Trans. Power Systems
  22(2), 2007);
- a pair that cuts off pieces without a source while the rest keeps its
  external grid: the pieces' loads are cut, and the flow they drew through
  a bridge is taken off its near end (transfer factors ``b_w (X[f_w, n] -
  X[t_w, n])``); the branch of a loop in the pair is then taken out by its
  factor; a two-edge cut takes one branch out by its factor, after which the
  other is a bridge. A bridge to a piece with a generator is settled the
  same way where the engine says that piece, balanced alone by the
  cascade's rules, sheds nothing and overloads nothing (``holds``), and
  the pair leaves it whole. Other pieces holding a source, and any split of
  an island without an external grid, change the dispatch: such pairs are
  the cascade's;
- the check, in three steps, each exact where it clears a pair: a bound,
  O(1) per pair, ``|f'_w| <= |f_w| + |Q_wi| |alpha| + |Q_wj| |beta|`` with
  the largest ratio of ``|Q_wk|`` to the headroom of ``w`` kept per column
  ``k``; then the flows on the rows of each column's largest ratios, the
  bound on the others; then every flow. Whatever comes within
  :data:`MARGIN` of a limit goes to the cascade.

The factors of every branch (and of the near end of every cut-off bridge)
are kept as one matrix while it fits in :data:`FULL_MATRIX_BYTES` (a full
N-2 touches every column many times), computed from a dense Cholesky
inverse of the base ``B`` (cheaper than a sparse solve per branch); a
larger grid has the columns of each block of pairs solved for that block by
the base factorisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from gridsim.power.compiled import CompiledGrid
from gridsim.power.dcsolver import BaseSolver

__all__ = ["FULL_MATRIX_BYTES", "MARGIN", "BranchTopology", "PairScreen", "branch_topology"]

#: A flow within this share of its trip limit is left to the cascade (rounding of the two computations).
MARGIN = 1e-6
#: Up to this size (bytes) the factors of every branch are kept as one matrix; beyond, solved per block of pairs.
FULL_MATRIX_BYTES = 512 * 2**20
#: Denominators ``1 - M_kk`` and ``det(I - M_OO)`` below this: ill-conditioned, left to the cascade.
_SINGULAR = 1e-6
#: Watched rows per column whose flows are computed before the bound is tried on the rest.
_TOP = 16
#: Pairs whose every flow is computed at once (memory: this many times the watched branches, float64, a few times).
_EXACT_ROWS = 256

# What a branch is to the screen.
_ABSENT = 0  # out of service, at a dead row, or from a row to itself: taking it out changes nothing
_LOOP = 1  # on a cycle, in an island with a source: taken out by its factor
_END = 2  # a bridge whose far side has no source, in an island with an external grid: that side goes dark
_ISLE = 3  # a bridge to a far side with a generator that holds alone (``holds``), in an island with an ext grid
_HARD = 4  # any other bridge in an island with a source (a re-dispatch): the cascade's
_DEAD_BRIDGE = 5  # a bridge in an island without a source: one dark island more, nothing else
_DEAD_LOOP = 6  # on a cycle in an island without a source: nothing, unless a two-edge cut with another


@dataclass(frozen=True)
class BranchTopology:
    """A depth-first forest over the rows of a grid, through its branches in service.

    The subtree below a row is the range of rows visited from it:
    ``tin[r] <= tin[x] < tout[r]``. A tree branch leads down to ``child``;
    a bridge is a tree branch no other branch spans; two branches share a
    ``cut_class`` when taking out both (and neither alone) splits their
    island.

    Attributes
    ----------
    in_graph : numpy.ndarray
        Per branch: in service, between two live, different rows.
    tin, tout : numpy.ndarray
        Per row: its place in the visiting order, and the end of its subtree's range.
    child : numpy.ndarray
        Per branch: the row below a tree branch (-1: not a tree branch).
    bridge : numpy.ndarray
        Per branch: taking it out alone splits its island.
    cut_class : numpy.ndarray
        Per branch: its two-edge cut class (-1: in none).
    """

    in_graph: np.ndarray
    tin: np.ndarray
    tout: np.ndarray
    child: np.ndarray
    bridge: np.ndarray
    cut_class: np.ndarray

    def below(self, top: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` lies in the subtree of the matching row of ``top`` (-1: none).

        Parameters
        ----------
        top : numpy.ndarray
            Rows whose subtrees are asked about (-1: no subtree, never below).
        rows : numpy.ndarray
            Rows, one per entry of ``top``.

        Returns
        -------
        numpy.ndarray
            Booleans, one per pair.
        """
        top = np.asarray(top)
        safe = np.maximum(top, 0)
        at = self.tin[rows]
        return (top >= 0) & (self.tin[safe] <= at) & (at < self.tout[safe])


def branch_topology(n_rows: int, from_row: np.ndarray, to_row: np.ndarray, in_graph: np.ndarray,
                    roots: np.ndarray) -> BranchTopology:
    """Bridges and two-edge cut classes of a multigraph, over a depth-first forest.

    Parallel branches are separate edges (one spans the other). The walk
    starts from ``roots`` in turn, then from every row not yet reached, so
    that each island's root is its first row in ``roots``.

    Parameters
    ----------
    n_rows : int
        Rows (nodes) of the grid.
    from_row, to_row : numpy.ndarray
        Ends of every branch.
    in_graph : numpy.ndarray
        Per branch: whether it is an edge (in service, between two different live rows).
    roots : numpy.ndarray
        Rows to start the walk from, first first (an island's external grid, say).

    Returns
    -------
    BranchTopology
        The forest, its bridges and cut classes.
    """
    tin, tout, low, child = _walk(n_rows, from_row, to_row, in_graph, roots)
    tree = child >= 0
    parent_end = np.where(to_row == child, from_row, to_row)
    bridge = tree & (low[np.maximum(child, 0)] > tin[parent_end])
    cut_class = _cut_classes(n_rows, from_row, to_row, in_graph & ~bridge, tree, child, tin, tout)
    return BranchTopology(in_graph=in_graph.copy(), tin=tin, tout=tout, child=child, bridge=bridge,
                          cut_class=np.where(in_graph, cut_class, -1))


def _walk(n_rows: int, from_row: np.ndarray, to_row: np.ndarray, in_graph: np.ndarray,
          roots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Iterative depth-first walk: entry times, subtree ends, low links, and the row below each tree branch."""
    edges = np.flatnonzero(in_graph)
    ends = np.concatenate([from_row[edges], to_row[edges]])
    order = np.argsort(ends, kind="stable")
    neighbour = np.concatenate([to_row[edges], from_row[edges]])[order].tolist()
    edge_of = np.concatenate([edges, edges])[order].tolist()
    start = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n_rows), out=start[1:])
    start = start.tolist()
    tin, tout, low = [-1] * n_rows, [0] * n_rows, [0] * n_rows
    via = [-1] * n_rows  # the branch each row was reached through
    child = [-1] * len(from_row)
    clock = 0
    for root in [*np.asarray(roots, dtype=np.int64).tolist(), *range(n_rows)]:
        if tin[root] >= 0:
            continue
        tin[root] = low[root] = clock
        clock += 1
        stack = [[root, start[root]]]
        while stack:
            top = stack[-1]
            node, k = top
            if k < start[node + 1]:
                top[1] = k + 1
                edge, other = edge_of[k], neighbour[k]
                if edge == via[node]:
                    continue
                if tin[other] < 0:
                    via[other], child[edge] = edge, other
                    tin[other] = low[other] = clock
                    clock += 1
                    stack.append([other, start[other]])
                elif tin[other] < low[node]:
                    low[node] = tin[other]
                continue
            stack.pop()
            tout[node] = clock
            if stack and low[node] < low[stack[-1][0]]:
                low[stack[-1][0]] = low[node]
    as_array = np.asarray
    return (as_array(tin, dtype=np.int64), as_array(tout, dtype=np.int64), as_array(low, dtype=np.int64),
            as_array(child, dtype=np.int64))


def _cut_classes(n_rows, from_row, to_row, spanned, tree, child, tin, tout) -> np.ndarray:
    """Two-edge cut classes of the branches on cycles (``spanned``): equal sets of fundamental cycles.

    Each branch off the tree gets a random 64-bit label; a tree branch's
    label is the XOR of the labels of the branches off the tree that span it
    (a range XOR over the visiting order). Branches with equal labels are
    then checked exactly: their sets of spanning branches compared bit by bit.
    """
    classes = np.full(len(from_row), -1, dtype=np.int64)
    off = np.flatnonzero(spanned & ~tree)
    if not len(off):
        return classes
    rng = np.random.default_rng(20070401)
    label_off = np.frombuffer(rng.bytes(8 * len(off)), dtype=np.uint64)
    at_row = np.zeros(n_rows, dtype=np.uint64)
    np.bitwise_xor.at(at_row, from_row[off], label_off)
    np.bitwise_xor.at(at_row, to_row[off], label_off)
    by_visit = np.zeros(n_rows, dtype=np.uint64)
    by_visit[tin] = at_row
    prefix = np.concatenate([np.zeros(1, dtype=np.uint64), np.bitwise_xor.accumulate(by_visit)])
    label = np.zeros(len(from_row), dtype=np.uint64)
    on_tree = np.flatnonzero(spanned & tree)
    label[on_tree] = prefix[tout[child[on_tree]]] ^ prefix[tin[child[on_tree]]]
    label[off] = label_off
    members = np.flatnonzero(spanned)
    values, inverse, counts = np.unique(label[members], return_inverse=True, return_counts=True)
    shared = members[counts[inverse] > 1]
    if not len(shared):
        return classes
    position_off = np.full(len(from_row), -1, dtype=np.int64)
    position_off[off] = np.arange(len(off))
    lo_off, hi_off = tin[from_row[off]], tin[to_row[off]]
    keys: dict[tuple[int, bytes], int] = {}
    found = []
    for first in range(0, len(shared), 512):
        batch = shared[first:first + 512]
        sets = np.zeros((len(batch), len(off)), dtype=bool)
        is_tree = tree[batch]
        c = child[batch[is_tree]]
        lo, hi = tin[c][:, None], tout[c][:, None]
        sets[is_tree] = ((lo <= lo_off) & (lo_off < hi)) ^ ((lo <= hi_off) & (hi_off < hi))
        sets[np.flatnonzero(~is_tree), position_off[batch[~is_tree]]] = True
        packed = np.packbits(sets, axis=1)
        for edge, row in zip(batch.tolist(), packed):
            found.append((edge, keys.setdefault((int(label[edge]), row.tobytes()), len(keys))))
    edges, ids = np.array(found, dtype=np.int64).T
    sizes = np.bincount(ids, minlength=len(keys))
    keep = sizes[ids] > 1
    classes[edges[keep]] = ids[keep]
    return classes


@dataclass(frozen=True)
class _Block:
    """One block of pairs, ordered so that the branch with the larger effect is ``a``."""

    a: np.ndarray
    b: np.ndarray
    kind_a: np.ndarray
    kind_b: np.ndarray
    a_in_b: np.ndarray  # a lies beyond bridge b (b's far side is cut off, a with it)
    b_in_a: np.ndarray
    cut: np.ndarray  # a two-edge cut


#: Per island beyond a bridge: whether it holds alone (see :class:`PairScreen`'s ``holds``).
HoldsAlone = Callable[[np.ndarray, np.ndarray], np.ndarray]


class PairScreen:
    """Double branch outages of one grid decided from its untouched DC flows, where that is exact.

    Parameters
    ----------
    grid : CompiledGrid
        The compiled grid.
    base : BaseSolver
        The untouched grid's factorisation (one reference per island).
    flow : numpy.ndarray
        DC flow (MW, from side) of every branch in the untouched grid, whose cascade trips nothing.
    labels : numpy.ndarray
        Island of every row in the untouched grid.
    energised, has_ext : numpy.ndarray
        Per island: it holds a source; it holds an external grid.
    watched_rows : numpy.ndarray
        Branch rows protection watches that are in service in an energised island.
    allowed : numpy.ndarray
        Per watched row: the largest flow (MW) that surely trips nothing (its limit less a margin).
    pandapower_rows : numpy.ndarray
        Rows that stand for a pandapower bus (an island counts where it holds one).
    holds : callable, optional
        ``holds(bridges, far_rows)``: with all of ``bridges`` out at once
        (none beyond another), whether the island beyond each (the one
        holding its ``far_rows`` entry), balanced and solved alone by the
        cascade's rules, sheds no load and overloads no branch. A bridge to
        a generator is then settled like a dead end, the island beyond it
        served as before. None: such bridges are left to the cascade.
    full_matrix_bytes : int, optional
        Largest matrix of factors kept whole (None: :data:`FULL_MATRIX_BYTES`; see the module's docstring).
    """

    def __init__(self, grid: CompiledGrid, base: BaseSolver, flow: np.ndarray, labels: np.ndarray,
                 energised: np.ndarray, has_ext: np.ndarray, watched_rows: np.ndarray, allowed: np.ndarray,
                 pandapower_rows: np.ndarray, holds: HoldsAlone | None = None, *,
                 full_matrix_bytes: int | None = None) -> None:
        g = grid
        self.grid, self.base, self.flow = g, base, np.asarray(flow, dtype=float)
        f, t = g.from_row, g.to_row
        in_graph = g.branch_on & g.row_alive[f] & g.row_alive[t] & (f != t)
        roots = np.concatenate([g.ext_row[has_ext[labels[g.ext_row]]], pandapower_rows]).astype(np.int64)
        self.topology = topo = branch_topology(g.n_bus, f, t, in_graph, roots)
        # What lies in each range of the visiting order: sources, pandapower buses, loads of energised islands.
        source_rows = np.concatenate([g.ext_row, g.gen_row[g.gen_on]]).astype(np.int64)
        self._sources = _prefix(topo.tin[source_rows], g.n_bus)
        self._buses = _prefix(topo.tin[np.asarray(pandapower_rows, dtype=np.int64)], g.n_bus)
        live_loads = np.flatnonzero(energised[labels[g.load_row]])
        by_visit = np.argsort(topo.tin[g.load_row[live_loads]], kind="stable")
        self._loads = live_loads[by_visit]
        self._load_at = topo.tin[g.load_row[self._loads]]
        # Watched rows first: a column's flows on them are one contiguous slice.
        self._n_watched = n_w = len(watched_rows)
        rest = np.setdiff1d(np.arange(g.n_branch), watched_rows)
        order = np.concatenate([np.asarray(watched_rows, dtype=np.int64), rest])
        self._slot = np.empty(g.n_branch, dtype=np.int64)
        self._slot[order] = np.arange(g.n_branch)
        self._f_slot, self._t_slot, self._b_slot = f[order], t[order], g.b_pu[order]
        self._flow_w, self._allowed = self.flow[order[:n_w]], np.asarray(allowed, dtype=float)
        headroom = self._allowed - np.abs(self._flow_w)
        self._inv_headroom = np.where(headroom > 0, 1.0 / np.where(headroom > 0, headroom, 1.0), 1e300)
        self._classify(labels, energised, has_ext, holds)
        self._known_pieces: dict[tuple[int, ...], np.ndarray] = {}
        self._n_columns = g.n_branch + len(self._off_near)
        self._full: np.ndarray | None = None
        self._bounds: _Bounds | None = None
        if self._n_columns * g.n_branch * 8 <= (FULL_MATRIX_BYTES if full_matrix_bytes is None else full_matrix_bytes):
            self._full, self._bounds = self._all_columns()

    def _classify(self, labels: np.ndarray, energised: np.ndarray, has_ext: np.ndarray,
                  holds: HoldsAlone | None) -> None:
        """What each branch is to the screen, and where the far side of each bridge is."""
        g, topo = self.grid, self.topology
        island = labels[g.from_row]
        live, with_ext = energised[island], has_ext[island]
        child = topo.child
        safe = np.maximum(child, 0)
        lo, hi = topo.tin[safe], topo.tout[safe]
        far_sources = self._sources[hi] - self._sources[lo]
        kind = np.full(g.n_branch, _ABSENT, dtype=np.int8)
        cycle = topo.in_graph & ~topo.bridge
        kind[cycle & live] = _LOOP
        kind[cycle & ~live] = _DEAD_LOOP
        kind[topo.bridge & ~live] = _DEAD_BRIDGE
        kind[topo.bridge & live] = _HARD
        kind[topo.bridge & live & with_ext & (far_sources == 0)] = _END
        powered = np.flatnonzero(topo.bridge & live & with_ext & (far_sources > 0))
        while holds is not None and len(powered):
            # The innermost of those left (no other beyond it) are tried all at once: their far sides are apart.
            beyond = _prefix(topo.tin[child[powered]], g.n_bus)
            innermost = (beyond[hi[powered]] - beyond[lo[powered]]) == 1
            tried = powered[innermost]
            kind[tried[np.asarray(holds(tried, child[tried]), dtype=bool)]] = _ISLE
            powered = powered[~innermost]
        self._kind = kind
        self._lo, self._hi = np.where(topo.bridge, lo, 0), np.where(topo.bridge, hi, 0)
        far_is_to = g.to_row == child
        self._into_far = np.where(far_is_to, self.flow, -self.flow)  # what a bridge carries to its far side
        off = np.flatnonzero(np.isin(kind, _CUT_OFF))
        self._off_column = np.full(g.n_branch, -1, dtype=np.int64)
        self._off_column[off] = g.n_branch + np.arange(len(off))
        self._off_near = np.where(far_is_to, g.from_row, g.to_row)[off]
        self._off_branch = off
        self._with_ext = with_ext

    # ------------------------------------------------------------ factors

    def _all_columns(self) -> tuple[np.ndarray, _Bounds]:
        """Every column of factors (see :meth:`_columns`), from a dense inverse of the base grid where one is cheap."""
        inverse = self._dense_inverse()
        if inverse is None:
            return self._columns(np.arange(self._n_columns))
        g = self.grid
        # Flows on every branch (slot order) per unit injected at each row: b_w (X[f_w, r] - X[t_w, r]).
        per_row = np.ascontiguousarray((inverse[self._f_slot] - inverse[self._t_slot]).T)
        per_row *= self._b_slot
        del inverse
        out = np.empty((self._n_columns, g.n_branch))
        for first in range(0, g.n_branch, 512):
            last = min(first + 512, g.n_branch)
            np.subtract(per_row[g.from_row[first:last]], per_row[g.to_row[first:last]], out=out[first:last])
        out[g.n_branch:] = per_row[self._off_near]
        return out, self._ratios(out, np.arange(self._n_columns))

    def _dense_inverse(self) -> np.ndarray | None:
        """``X`` over every row (zero at references and dead rows), if the base grid's ``B`` is positive definite.

        The base factorisation's own dense inverse on small grids; on larger
        ones a Cholesky inverse of ``B = Aᵀ diag(b) A``, which costs less than
        solving the sparse LU for every branch.
        """
        base = self.base
        if base.inverse is not None:
            return base.inverse
        g, rows, position = self.grid, base.rows, base.position
        on = np.flatnonzero(base.on)
        ends = np.stack([position[g.from_row[on]], position[g.to_row[on]]])
        kept = ends >= 0
        n = len(rows)
        cols = np.concatenate([np.flatnonzero(kept[0]), np.flatnonzero(kept[1])])
        incidence = sp.csr_matrix((np.concatenate([np.ones(kept[0].sum()), -np.ones(kept[1].sum())]),
                                   (cols, np.concatenate([ends[0][kept[0]], ends[1][kept[1]]]))),
                                  shape=(len(on), n))
        susceptance = (incidence.T @ sp.diags(g.b_pu[on]) @ incidence).toarray()
        try:
            factor, lower = scipy.linalg.cho_factor(susceptance, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        inverse_rows, info = scipy.linalg.lapack.dpotri(factor, lower=lower)
        if info != 0:
            return None
        inverse_rows = np.tril(inverse_rows)
        inverse_rows += np.tril(inverse_rows, -1).T
        inverse = np.zeros((g.n_bus, g.n_bus))
        inverse[np.ix_(rows, rows)] = inverse_rows
        return inverse

    def _columns(self, columns: np.ndarray) -> tuple[np.ndarray, _Bounds]:
        """Flows on every branch (slot order) per unit of each column, and each column's ratios to the headroom.

        Column ``k < n_branch``: a unit transferred from branch ``k``'s from
        row to its to row; column ``n_branch + j``: a unit injected at the near
        end of the ``j``-th cut-off bridge. Solved by the base factorisation.
        """
        g = self.grid
        out = np.empty((len(columns), g.n_branch))
        for first in range(0, len(columns), 512):
            part = columns[first:first + 512]
            transfer = part < g.n_branch
            angles = np.empty((g.n_bus, len(part)))
            k = part[transfer]
            if len(k):
                angles[:, transfer] = self.base.column_difference(g.from_row[k], g.to_row[k])
            if (~transfer).any():
                angles[:, ~transfer] = self.base.columns(self._off_near[part[~transfer] - g.n_branch])
            out[first:first + len(part)] = self._flows_per_unit(angles)
        return out, self._ratios(out, columns)

    def _ratios(self, matrix: np.ndarray, columns: np.ndarray) -> _Bounds:
        """Per column: ``|flow per unit| / headroom`` over the watched rows but the column's own branch, summed up.

        The largest ratio; the :data:`_TOP` watched rows of the largest
        ratios, and the largest ratio among the others.
        """
        g = self.grid
        own = columns.copy()
        off = columns >= g.n_branch
        own[off] = self._off_branch[columns[off] - g.n_branch]
        mine = self._slot[own]
        n_w, top = self._n_watched, min(_TOP, self._n_watched)
        bounds = _Bounds(np.zeros(len(columns)), np.zeros((len(columns), top), dtype=np.int64),
                         np.zeros(len(columns)))
        if not n_w:
            return bounds
        for first in range(0, len(columns), 512):
            ratio = np.abs(matrix[first:first + 512, :n_w])
            ratio *= self._inv_headroom
            rows = np.arange(len(ratio))
            watched = mine[first:first + 512] < n_w
            ratio[rows[watched], mine[first:first + 512][watched]] = 0.0
            part = slice(first, first + len(ratio))
            bounds.largest[part] = ratio.max(axis=1)
            if top < n_w:
                highest = np.argpartition(ratio, n_w - top, axis=1)[:, n_w - top:]
                bounds.top[part] = highest
                ratio[rows[:, None], highest] = 0.0
                bounds.rest[part] = ratio.max(axis=1)
            else:
                bounds.top[part] = np.arange(n_w)
        return bounds

    def _flows_per_unit(self, angles: np.ndarray) -> np.ndarray:
        """Branch flows (slot order, one row per column of ``angles``) of the angle changes ``angles``."""
        return ((angles[self._f_slot] - angles[self._t_slot]) * self._b_slot[:, None]).T

    def _factors(self, columns: np.ndarray) -> tuple[np.ndarray, _Bounds, np.ndarray]:
        """The matrix of factors holding ``columns``, their bounds, and where each column is in it."""
        if self._full is not None:
            return self._full, self._bounds, np.arange(self._n_columns)
        wanted = np.unique(np.concatenate([[0], columns[columns >= 0]]))  # never empty: indexing stays in range
        matrix, bounds = self._columns(wanted)
        where = np.full(self._n_columns, -1, dtype=np.int64)
        where[wanted] = np.arange(len(wanted))
        return matrix, bounds, where

    # ------------------------------------------------------------ pairs

    def screen(self, pairs: np.ndarray, block: int = 4096) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Decide every pair of branch outages that is exact without a cascade.

        Parameters
        ----------
        pairs : numpy.ndarray
            Shape (n, 2): two branch rows per scenario (equal rows, rows out
            of service already: taken out once, or not at all).
        block : int
            Pairs handled at once (memory grows with it).

        Returns
        -------
        trivial : numpy.ndarray
            Per pair: its cascade trips nothing, and what follows is its whole result.
        cut : list of numpy.ndarray
            Per pair: the load positions the pair cuts off (islands without a
            source; their served load is 0 and their customers are all out);
            every other load is served as in the untouched grid. Read-only
            arrays, shared between pairs that cut off the same pieces.
        extra_islands : numpy.ndarray
            Per pair: islands more than the untouched grid has (0, 1 or 2).
        """
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= self.grid.n_branch):
            raise ValueError("a pair names a branch row outside the grid")
        n = len(pairs)
        trivial = np.zeros(n, dtype=bool)
        extra = np.zeros(n, dtype=np.int64)
        cut: list[np.ndarray] = [_NO_LOADS] * n
        for first in range(0, n, block):
            done, more, loads = self._screen_block(pairs[first:first + block])
            trivial[first:first + len(done)] = done
            extra[first:first + len(done)] = more
            for j, positions in loads.items():
                cut[first + j] = positions
        return trivial, cut, extra

    def splits(self, pairs: np.ndarray) -> np.ndarray:
        """Whether each pair splits an island of the untouched grid (a bridge, or a two-edge cut), settled or not.

        Parameters
        ----------
        pairs : numpy.ndarray
            Shape (n, 2): two branch rows per scenario.

        Returns
        -------
        numpy.ndarray
            Booleans, one per pair.
        """
        p = self._arrange(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
        return np.isin(p.kind_a, _BRIDGES) | np.isin(p.kind_b, _BRIDGES) | p.cut

    def _arrange(self, pairs: np.ndarray) -> _Block:
        """The pairs of a block with what each branch is, the larger effect first."""
        topo, kind = self.topology, self._kind
        a, b = pairs[:, 0].copy(), pairs[:, 1].copy()
        ka, kb = kind[a].copy(), kind[b].copy()
        kb[a == b] = _ABSENT
        bridge_a, bridge_b = np.isin(ka, _BRIDGES), np.isin(kb, _BRIDGES)
        f = self.grid.from_row
        b_in_a = bridge_a & (kb != _ABSENT) & topo.below(np.where(bridge_a, topo.child[a], -1), f[b])
        a_in_b = bridge_b & (ka != _ABSENT) & topo.below(np.where(bridge_b, topo.child[b], -1), f[a])
        cut = (kb != _ABSENT) & (topo.cut_class[a] >= 0) & (topo.cut_class[a] == topo.cut_class[b])
        # The branch whose flows change more goes first: a cut-off bridge before a loop, a loop before nothing.
        rank_a = np.where(a_in_b, 0, np.select([np.isin(ka, _CUT_OFF), ka == _LOOP], [2, 1], 0))
        rank_b = np.where(b_in_a, 0, np.select([np.isin(kb, _CUT_OFF), kb == _LOOP], [2, 1], 0))
        swap = rank_b > rank_a
        a[swap], b[swap] = b[swap], a[swap]
        ka[swap], kb[swap] = kb[swap], ka[swap]
        a_in_b[swap], b_in_a[swap] = b_in_a[swap], a_in_b[swap]
        return _Block(a, b, ka, kb, a_in_b, b_in_a, cut)

    def _screen_block(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """One block: settled pairs, islands more, and the loads cut per settled pair that cuts any."""
        p = self._arrange(pairs)
        pieces = self._pieces(p)
        lo1, hi1, slo1, shi1, lo2, hi2 = pieces
        grows = (_count(self._buses, lo1, hi1, slo1, shi1) > 0).astype(np.int64) + (
            _count(self._buses, lo2, hi2, 0, 0) > 0)
        # An island beyond a bridge to a generator holds alone only while nothing in it goes out too.
        hard = ((p.kind_a == _HARD) | (p.kind_b == _HARD) | ((p.kind_a == _ISLE) & p.b_in_a)
                | ((p.kind_b == _ISLE) & p.a_in_b))
        live_cut = p.cut & (p.kind_a == _LOOP)
        # A two-edge cut in an energised island: the piece it splits off must hold no source, the rest an ext grid.
        cut_ok = live_cut & self._with_ext[p.a] & (_count(self._sources, lo1, hi1, slo1, shi1) == 0)
        plain = ~hard & ~p.cut
        settled = np.zeros(len(pairs), dtype=bool)
        settled[plain] = self._flows_fine(p, np.flatnonzero(plain))
        settled[p.cut & ~live_cut] = True  # a cut inside a dark island: only the islands change
        settled[cut_ok] = self._cut_flows_fine(p, np.flatnonzero(cut_ok), lo1, hi1, slo1, shi1)
        return settled, np.where(settled, grows, 0), self._cut_loads(np.flatnonzero(settled), pieces)

    def _cut_loads(self, settled: np.ndarray, pieces: tuple[np.ndarray, ...]) -> dict[int, np.ndarray]:
        """Per settled pair that splits off a piece without a source: the loads of those pieces (read-only arrays).

        Pairs split off the same few pieces again and again (every pair with
        a given dead end): each piece's loads are found once, and shared.
        """
        lo1, hi1, slo1, shi1, lo2, hi2 = (part[settled] for part in pieces)
        dark1 = (hi1 > lo1) & (_count(self._sources, lo1, hi1, slo1, shi1) == 0)
        dark2 = (hi2 > lo2) & (_count(self._sources, lo2, hi2, 0, 0) == 0)
        some = np.flatnonzero(dark1 | dark2)
        if not len(some):
            return {}
        keys = np.stack([np.where(dark1, lo1, 0), np.where(dark1, hi1, 0), np.where(dark1, slo1, 0),
                         np.where(dark1, shi1, 0), np.where(dark2, lo2, 0), np.where(dark2, hi2, 0)], axis=1)[some]
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        found = [self._piece_loads(tuple(key)) for key in unique.tolist()]
        return {j: found[k] for j, k in zip(settled[some].tolist(), inverse.ravel().tolist()) if len(found[k])}

    def _piece_loads(self, key: tuple[int, ...]) -> np.ndarray:
        """The loads of the pieces ``[lo1, hi1)`` less ``[slo1, shi1)`` and ``[lo2, hi2)`` (kept per key)."""
        known = self._known_pieces.get(key)
        if known is None:
            lo1, hi1, slo1, shi1, lo2, hi2 = key
            known = np.concatenate([self._loads_in(lo1, hi1, slo1, shi1), self._loads_in(lo2, hi2, 0, 0)])
            known.flags.writeable = False
            if len(self._known_pieces) >= 100_000:
                self._known_pieces.clear()
            self._known_pieces[key] = known
        return known

    def _pieces(self, p: _Block) -> tuple[np.ndarray, ...]:
        """The pieces a pair splits off: ``[lo1, hi1)`` less ``[slo1, shi1)``, and ``[lo2, hi2)`` of the visiting order.

        Two bridges split off their far sides (nested: the outer less the
        inner, and the inner); one bridge its far side; a two-edge cut the
        rows below its upper tree branch, less those below the lower one.
        """
        topo = self.topology
        lo_a, hi_a, lo_b, hi_b = self._lo[p.a], self._hi[p.a], self._lo[p.b], self._hi[p.b]
        lo_b, hi_b = np.where(p.kind_b == _ABSENT, 0, lo_b), np.where(p.kind_b == _ABSENT, 0, hi_b)
        lo1 = np.where(p.a_in_b, lo_b, lo_a)
        hi1 = np.where(p.a_in_b, hi_b, hi_a)
        inner = p.a_in_b | p.b_in_a
        slo1 = np.where(p.b_in_a, lo_b, np.where(p.a_in_b, lo_a, 0))
        shi1 = np.where(p.b_in_a, hi_b, np.where(p.a_in_b, hi_a, 0))
        lo2 = np.where(inner, slo1, lo_b)
        hi2 = np.where(inner, shi1, hi_b)
        if p.cut.any():
            c = np.flatnonzero(p.cut)
            upper, lower = self._cut_order(p.a[c], p.b[c])
            tin, tout = topo.tin, topo.tout
            child_u, child_l = topo.child[upper], topo.child[lower]
            lo1[c], hi1[c] = tin[child_u], tout[child_u]
            slo1[c] = np.where(child_l >= 0, tin[np.maximum(child_l, 0)], 0)
            shi1[c] = np.where(child_l >= 0, tout[np.maximum(child_l, 0)], 0)
            lo2[c], hi2[c] = 0, 0
        return lo1, hi1, slo1, shi1, lo2, hi2

    def _cut_order(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two branches of each two-edge cut, the upper tree branch first (the other: below it, or off the tree)."""
        topo = self.topology
        child_a, child_b = topo.child[a], topo.child[b]
        # Equal classes: both on the tree and one below the other, or one on it and one off it.
        a_upper = (child_a >= 0) & ((child_b < 0) | (topo.tin[np.maximum(child_a, 0)]
                                                     < topo.tin[np.maximum(child_b, 0)]))
        return np.where(a_upper, a, b), np.where(a_upper, b, a)

    def _loads_in(self, lo: int, hi: int, slo: int, shi: int) -> np.ndarray:
        """Positions of the loads of energised islands whose rows lie in ``[lo, hi)`` less ``[slo, shi)``."""
        at = self._load_at
        span = slice(np.searchsorted(at, lo), np.searchsorted(at, hi))
        inside = self._loads[span]
        if shi > slo:
            held = at[span]
            inside = inside[(held < slo) | (held >= shi)]
        return inside

    # ------------------------------------------------------------ flows

    def _column_of(self, branch: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """The column of factors a branch of each kind may need (-1: none)."""
        return np.select([np.isin(kind, _CUT_OFF), kind == _LOOP], [self._off_column[branch], branch], -1)

    def _transfers(self, p: _Block, j: np.ndarray, matrix: np.ndarray, where: np.ndarray):
        """Per pair: the two columns of factors (-1: none) and what each carries, ``f' = f + Q_a α + Q_b β``.

        A cut-off bridge carries what it took to its far side; a loop alone
        ``f_a / (1 - M_aa)``; two loops the 2x2 solve; a cut-off bridge and a
        loop: the loop carries what the bridge's removal left on it, by its
        factor.
        """
        a, b, ka, kb = p.a[j], p.b[j], p.kind_a[j], p.kind_b[j]
        slot = self._slot
        col_a = np.where(p.a_in_b[j], -1, self._column_of(a, ka))
        col_b = np.where(p.b_in_a[j], -1, self._column_of(b, kb))
        ia, ib = where[np.maximum(col_a, 0)], where[np.maximum(col_b, 0)]
        f_a, f_b = self.flow[a], self.flow[b]
        m_aa, m_bb = matrix[ia, slot[a]], matrix[ib, slot[b]]
        m_ab, m_ba = matrix[ib, slot[a]], matrix[ia, slot[b]]  # flow change on a per unit of b's column, ...
        off_a, loop_a, off_b, loop_b = np.isin(ka, _CUT_OFF), ka == _LOOP, np.isin(kb, _CUT_OFF), kb == _LOOP
        loop_a &= col_a >= 0
        off_b &= col_b >= 0
        loop_b &= col_b >= 0
        alpha, beta = np.zeros(len(j)), np.zeros(len(j))
        denominator = np.ones(len(j))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            alpha[off_a] = self._into_far[a[off_a]]
            beta[off_a & off_b] = self._into_far[b[off_a & off_b]]
            after = off_a & loop_b
            denominator[after] = (1.0 - m_bb)[after]
            beta[after] = (f_b + m_ba * alpha)[after] / denominator[after]
            single = loop_a & ~loop_b
            denominator[single] = (1.0 - m_aa)[single]
            alpha[single] = f_a[single] / denominator[single]
            two = loop_a & loop_b
            denominator[two] = ((1.0 - m_aa) * (1.0 - m_bb) - m_ab * m_ba)[two]
            alpha[two] = ((1.0 - m_bb) * f_a + m_ab * f_b)[two] / denominator[two]
            beta[two] = (m_ba * f_a + (1.0 - m_aa) * f_b)[two] / denominator[two]
        ok = (np.abs(denominator) >= _SINGULAR) & np.isfinite(alpha) & np.isfinite(beta)
        return np.where(col_a >= 0, ia, -1), np.where(col_b >= 0, ib, -1), alpha, beta, ok

    def _flows_fine(self, p: _Block, j: np.ndarray) -> np.ndarray:
        """Whether every watched branch stays within its limit after each pair ``j`` (no split but cut-off bridges).

        Three steps, each exact where it clears a pair: the bound with each
        column's largest ratio; the flows on each column's rows of largest
        ratio, the bound on the rest; every flow.
        """
        if not len(j):
            return np.zeros(0, dtype=bool)
        matrix, bounds, where = self._factors(np.concatenate([self._column_of(p.a[j], p.kind_a[j]),
                                                              self._column_of(p.b[j], p.kind_b[j])]))
        ia, ib, alpha, beta, ok = self._transfers(p, j, matrix, where)
        fine = ok & (_bound(bounds.largest, ia, alpha, ib, beta) <= 1.0 - 1e-6)
        a, b = p.a[j], p.b[j]
        rest = np.flatnonzero(ok & ~fine)
        if len(rest) and bounds.top.shape[1]:
            fine[rest], over = self._tops_fine(matrix, bounds, ia[rest], alpha[rest], ib[rest], beta[rest], a[rest],
                                               b[rest])
            rest = rest[~fine[rest] & ~over]  # a row of largest ratio over its limit: the pair trips it
        for first in range(0, len(rest), _EXACT_ROWS):
            r = rest[first:first + _EXACT_ROWS]
            fine[r] = self._exact(matrix, ia[r], alpha[r], ib[r], beta[r], (a[r], b[r]))
        return fine

    def _tops_fine(self, matrix, bounds: _Bounds, ia, alpha, ib, beta, a, b) -> tuple[np.ndarray, np.ndarray]:
        """The flows on the rows of largest ratio of both columns, the bound on every other row.

        Returns whether that clears each pair, and whether one of those rows is over its limit.
        """
        col_a, col_b = np.maximum(ia, 0), np.maximum(ib, 0)
        alpha, beta = np.where(ia >= 0, alpha, 0.0), np.where(ib >= 0, beta, 0.0)
        rows = np.concatenate([bounds.top[col_a], bounds.top[col_b]], axis=1)
        after = self._flow_w[rows] + matrix[col_a[:, None], rows] * alpha[:, None]
        after += matrix[col_b[:, None], rows] * beta[:, None]
        over = np.abs(after) > self._allowed[rows]
        over &= (rows != self._slot[a][:, None]) & (rows != self._slot[b][:, None])
        tripped = over.any(axis=1)
        return ~tripped & (_bound(bounds.rest, ia, alpha, ib, beta) <= 1.0 - 1e-6), tripped

    def _exact(self, matrix, ia, alpha, ib, beta, own, extra_flow=None, skip=None) -> np.ndarray:
        """Every watched flow of each pair against its limit; the pair's own branches (and ``skip``) left out."""
        n_w = self._n_watched
        after = np.zeros((len(ia), n_w))
        after += self._flow_w
        for column, share in ((ia, alpha), (ib, beta)):
            has = column >= 0
            if has.any():
                after[has] += matrix[column[has], :n_w] * share[has, None]
        if extra_flow is not None:
            after += extra_flow
        over = np.abs(after) > self._allowed
        rows = np.arange(len(ia))
        for branch in own:
            slot = self._slot[branch]
            mine = slot < n_w
            over[rows[mine], slot[mine]] = False
        if skip is not None:
            over &= ~skip
        return ~over.any(axis=1)

    def _cut_flows_fine(self, p: _Block, j: np.ndarray, lo, hi, slo, shi) -> np.ndarray:
        """Two-edge cuts that split off a piece without a source: the upper branch by its factor, then the other.

        With the upper branch ``o`` out, the other ``i`` is a bridge to the
        piece; the flow it then carries into the piece is taken off its near
        end ``n``, in the grid without ``o``: ``f' = f + M_o α + P_n β`` with
        ``β`` that flow and ``α = (f_o + P_on β) / (1 - M_oo)``. The piece's
        own branches carry nothing and are not checked.
        """
        fine = np.zeros(len(j), dtype=bool)
        for first in range(0, len(j), _EXACT_ROWS):
            r = j[first:first + _EXACT_ROWS]
            fine[first:first + len(r)] = self._cut_chunk(p.a[r], p.b[r], lo[r], hi[r], slo[r], shi[r])
        return fine

    def _cut_chunk(self, a, b, lo, hi, slo, shi) -> np.ndarray:
        """:meth:`_cut_flows_fine` on a few pairs, the piece of each ``[lo, hi)`` less ``[slo, shi)``."""
        g, slot, tin = self.grid, self._slot, self.topology.tin
        upper, other = self._cut_order(a, b)
        matrix, _, where = self._factors(upper)
        io = where[upper]
        m_oo, m_io = matrix[io, slot[upper]], matrix[io, slot[other]]
        lo, hi, slo, shi = lo[:, None], hi[:, None], slo[:, None], shi[:, None]

        def in_piece(at: np.ndarray) -> np.ndarray:
            return (at >= lo) & (at < hi) & ~((at >= slo) & (at < shi))

        piece_is_to = in_piece(tin[g.to_row[other]][:, None])[:, 0]
        near = np.where(piece_is_to, g.from_row[other], g.to_row[other])
        injected = self._flows_per_unit(self.base.columns(near))  # per pair: the flows of a unit in at its near end
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            after_o = self.flow[other] + m_io * self.flow[upper] / (1.0 - m_oo)
            beta = np.where(piece_is_to, after_o, -after_o)
            alpha = (self.flow[upper] + injected[np.arange(len(a)), slot[upper]] * beta) / (1.0 - m_oo)
        ok = (np.abs(1.0 - m_oo) >= _SINGULAR) & np.isfinite(alpha) & np.isfinite(beta)
        skip = in_piece(tin[self._f_slot[:self._n_watched]][None, :])
        fine = self._exact(matrix, np.where(ok, io, -1), np.where(ok, alpha, 0.0), np.full(len(a), -1),
                           beta, (upper, other), extra_flow=injected[:, :self._n_watched] * np.where(
                               ok, beta, 0.0)[:, None], skip=skip)
        return ok & fine


@dataclass(frozen=True)
class _Bounds:
    """Per column of factors: ratios of its flows per unit to the headroom of the watched rows."""

    largest: np.ndarray
    top: np.ndarray  # (columns, _TOP): the watched slots of the largest ratios
    rest: np.ndarray  # the largest ratio among the other slots


def _bound(ratio: np.ndarray, ia: np.ndarray, alpha: np.ndarray, ib: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``ratio_a |α| + ratio_b |β|`` per pair (a column -1 adds nothing): at most 1, no watched row passes its limit."""
    return np.where(ia >= 0, ratio[np.maximum(ia, 0)] * np.abs(alpha), 0.0) + np.where(
        ib >= 0, ratio[np.maximum(ib, 0)] * np.abs(beta), 0.0)


_NO_LOADS = np.zeros(0, dtype=np.int64)
_CUT_OFF = (_END, _ISLE)  # bridges whose far side leaves: the flow they carried is taken off their near end
_BRIDGES = (_END, _ISLE, _HARD, _DEAD_BRIDGE)


def _prefix(at: np.ndarray, n: int) -> np.ndarray:
    """How many of ``at`` (places in the visiting order) lie before each place: a range count is a difference."""
    return np.concatenate([[0], np.cumsum(np.bincount(at, minlength=n))]).astype(np.int64)


def _count(prefix: np.ndarray, lo, hi, slo, shi) -> np.ndarray:
    """How many counted things lie in ``[lo, hi)`` less ``[slo, shi)`` (ranges of the visiting order)."""
    return (prefix[hi] - prefix[lo]) - (prefix[shi] - prefix[slo])
