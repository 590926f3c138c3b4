"""DC angles for the fast engine: a factorised base grid with low-rank updates, or a fresh factorisation.

``B θ = P`` on the rows of energised islands, references held at 0. While
the grid keeps the islands of the untouched net, the angles come from one
factorisation of the base ``B`` (a dense inverse for small grids, a sparse
LU otherwise) and a rank-|O| Sherman–Morrison–Woodbury update for the
branches ``O`` that are out; small pieces split off the base islands are
taken out by a Schur complement and solved alone. A grid that moved further
gets a fresh factorisation of what it has become (multiple-outage factors: Güler, Gross and Liu,
IEEE Trans. Power Systems 22(2), 2007).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from gridsim.power.compiled import CompiledGrid

__all__ = ["DENSE_ROWS", "BaseSolver", "fresh_solve"]


#: Up to this many rows the base grid is inverted densely; above it, a sparse LU is kept.
DENSE_ROWS = 300
#: Most rows split off the base islands that the base factorisation still serves (dense, LU).
_SPLIT_DENSE, _SPLIT_LU = 64, 64
#: Columns of the base inverse kept from the sparse LU (each is one row's worth of floats).
_COLUMN_CACHE = 4096


@dataclass
class BaseSolver:
    """``B`` of the untouched grid on its energised, non-reference rows, factorised once.

    With branches ``O`` out and the islands unchanged, the angles follow from
    the base factorisation by Sherman–Morrison–Woodbury:
    ``(B - U D Uᵀ)⁻¹ = X + X U (D⁻¹ - Uᵀ X U)⁻¹ Uᵀ X`` with ``U`` the
    incidence of ``O`` and ``D`` their susceptances. Reference angles are 0:
    with one reference per island only angle differences matter.
    """

    n_islands: int
    live_row: np.ndarray
    refs: np.ndarray
    on: np.ndarray
    rows: np.ndarray
    from_row: np.ndarray
    to_row: np.ndarray
    b_pu: np.ndarray
    inverse: np.ndarray | None  # (n_bus, n_bus), zero outside ``rows``
    lu: object | None
    solve_mask: np.ndarray
    va_rad: np.ndarray
    grid: CompiledGrid
    ref_mask: np.ndarray
    position: np.ndarray  # row -> position among ``rows`` (-1 if not solved)
    column_cache: dict = field(default_factory=dict)

    @classmethod
    def build(cls, g: CompiledGrid, n_islands: int, labels: np.ndarray, island: Any) -> BaseSolver | None:
        live_row, refs = island.live_row, island.refs
        if len(np.unique(labels[refs])) != len(refs):
            return None  # an island with two references: angles are pinned apart, solve afresh
        on = g.branch_on & live_row[g.from_row] & live_row[g.to_row]
        if (g.b_pu[on] == 0).any():
            return None
        solve = live_row.copy()
        solve[refs] = False
        rows = np.flatnonzero(solve)
        matrix = _b_matrix(g, np.where(on, g.b_pu, 0.0), on, rows)
        inverse = lu = None
        if g.n_bus <= DENSE_ROWS:  # the dense inverse spans every bus: small grids only, never n_bus² on a large one
            inverse = np.zeros((g.n_bus, g.n_bus))
            inverse[np.ix_(rows, rows)] = np.linalg.inv(matrix.toarray())
        else:
            lu = splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        position = np.full(g.n_bus, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        return cls(n_islands, live_row, refs, on, rows, g.from_row, g.to_row, g.b_pu, inverse, lu, solve, g.va_rad, g,
                   island.ref_mask, position)

    def _apply(self, rhs: np.ndarray) -> np.ndarray:
        """X @ rhs for full-length rows (a vector or a matrix of columns)."""
        if self.inverse is not None:
            return self.inverse @ rhs
        out = np.zeros(rhs.shape)
        out[self.rows] = self.lu.solve(np.ascontiguousarray(rhs[self.rows]))
        return out

    def columns(self, rows: np.ndarray) -> np.ndarray:
        """``X[:, rows]``; from the sparse LU, each column solved once and kept (sweeps reuse them)."""
        if self.inverse is not None:
            return self.inverse[:, rows]
        cache = self.column_cache
        wanted = [int(r) for r in dict.fromkeys(rows.tolist()) if self.position[r] >= 0]
        missing = [r for r in wanted if r not in cache]
        if missing and len(cache) + len(missing) > _COLUMN_CACHE:
            cache.clear()  # full: start again, solving every column asked for now (a cleared one is not zero)
            missing = wanted
        if missing:
            unit = np.zeros((len(self.rows), len(missing)))
            unit[self.position[missing], np.arange(len(missing))] = 1.0
            solved = self.lu.solve(unit)
            for k, row in enumerate(missing):
                column = np.zeros(len(self.live_row))
                column[self.rows] = solved[:, k]
                cache[row] = column
        zero = np.zeros(len(self.live_row))  # a row not solved for (a reference): its column is zero
        return (np.stack([cache.get(int(r), zero) for r in rows], axis=1) if len(rows)
                else np.zeros((len(self.live_row), 0)))

    def column_difference(self, f: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``X (e_f - e_t)`` for each pair: the angles one unit of flow from ``f`` to ``t`` makes."""
        if self.inverse is not None:
            return self.inverse[:, f] - self.inverse[:, t]
        unit = np.zeros((len(self.rows), len(f)))
        k = np.arange(len(f))
        pf, pt = self.position[f], self.position[t]
        unit[pf[pf >= 0], k[pf >= 0]] += 1.0
        unit[pt[pt >= 0], k[pt >= 0]] -= 1.0
        out = np.zeros((len(self.live_row), len(f)))
        out[self.rows] = self.lu.solve(unit)
        return out

    def theta(self, p_pu: np.ndarray, on: np.ndarray, labels: np.ndarray, island: Any) -> np.ndarray | None:
        """Angles from the base factorisation, or None when the grid moved too far from the base.

        ``R``, the rows still in an island with a base reference, are solved by
        Woodbury on ``(B0_RR)⁻¹ = X_RR - X_RS X_SS⁻¹ X_SR`` (Schur complement),
        where ``S`` are the base rows split off from them. The pieces split off
        that hold a source of their own are small: they are solved afresh.
        """
        live_row, refs, ref_mask = island.live_row, island.refs, island.ref_mask
        if not ref_mask[self.refs].all():
            return None  # a base reference was lost (its generator tripped, its island died)
        with_base_ref = np.zeros(labels.max() + 1, dtype=bool)
        with_base_ref[labels[self.refs]] = True
        kept = live_row & with_base_ref[labels]
        if (kept & ref_mask & ~self.ref_mask).any():
            return None
        split = np.flatnonzero(self.solve_mask & ~kept)
        if len(split) > (_SPLIT_DENSE if self.inverse is not None else _SPLIT_LU):
            return None
        q = np.where(kept & self.solve_mask, p_pu, 0.0)
        y_q = self._apply(q)
        if len(split):
            x_s = self.columns(split)
            x_ss = x_s[split]
            y_q = y_q - x_s @ np.linalg.solve(x_ss, y_q[split])
        removed = np.flatnonzero(self.on & ~on & (kept[self.from_row] | kept[self.to_row]))
        if len(removed):
            f, t = self.from_row[removed], self.to_row[removed]
            f_in, t_in = kept[f] & self.solve_mask[f], kept[t] & self.solve_mask[t]
            y_u = self.columns(f) * f_in - self.columns(t) * t_in
            if len(split):
                y_u = y_u - x_s @ np.linalg.solve(x_ss, y_u[split])
            ut_y_u = y_u[f] * f_in[:, None] - y_u[t] * t_in[:, None]
            m = np.diag(1.0 / self.b_pu[removed]) - ut_y_u
            ut_y_q = y_q[f] * f_in - y_q[t] * t_in
            y_q = y_q + y_u @ np.linalg.solve(m, ut_y_q)
        theta = np.where(kept, y_q, 0.0)
        rest = live_row & ~kept
        if rest.any():
            solve = rest.copy()
            solve[refs] = False
            theta[refs] = np.where(rest[refs], self.va_rad[refs], theta[refs])
            theta = fresh_solve(self.grid, np.where(on, self.b_pu, 0.0), on & rest[self.from_row],
                                 np.flatnonzero(solve), refs[rest[refs]], theta, p_pu)
        return theta


def _b_matrix(g: CompiledGrid, b: np.ndarray, on: np.ndarray, rows: np.ndarray):
    """The bus susceptance matrix restricted to ``rows`` (sparse CSC)."""
    f, t, bb = g.from_row[on], g.to_row[on], b[on]
    full = sp.coo_matrix((np.concatenate([bb, bb, -bb, -bb]),
                          (np.concatenate([f, t, f, t]), np.concatenate([f, t, t, f]))),
                         shape=(g.n_bus, g.n_bus)).tocsr()
    return full[rows][:, rows].tocsc()


def fresh_solve(g: CompiledGrid, b: np.ndarray, on: np.ndarray, rows: np.ndarray, refs: np.ndarray,
                 theta: np.ndarray, p_pu: np.ndarray) -> np.ndarray:
    """Angles of ``rows`` by a fresh factorisation of the branches ``on`` among them and ``refs``.

    Only those rows are assembled, densely when few, so a small piece split
    off a large grid costs little.
    """
    if not len(rows):
        return theta
    nodes = np.concatenate([rows, refs])
    local = np.full(g.n_bus, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    f, t = local[g.from_row[on]], local[g.to_row[on]]
    inside = (f >= 0) & (t >= 0)
    f, t, bb = f[inside], t[inside], b[on][inside]
    n, r = len(nodes), len(rows)
    if n <= DENSE_ROWS // 4:  # dense n x n only for a small island (n counts its references too)
        cells = np.concatenate([f * n + f, t * n + t, f * n + t, t * n + f])
        matrix = np.bincount(cells, weights=np.concatenate([bb, bb, -bb, -bb]), minlength=n * n).reshape(n, n)
        rhs = p_pu[rows] - matrix[:r, r:] @ theta[refs]
        theta[rows] = np.linalg.solve(matrix[:r, :r], rhs)
        return theta
    matrix = sp.coo_matrix((np.concatenate([bb, bb, -bb, -bb]),
                            (np.concatenate([f, t, f, t]), np.concatenate([f, t, t, f]))), shape=(n, n)).tocsr()
    rhs = p_pu[rows] - matrix[:r, r:] @ theta[refs]
    theta[rows] = splu(matrix[:r, :r].tocsc(), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}).solve(rhs)
    return theta
