"""The double-outage screen (issue 13): every pair it settles equals its cascade.

:meth:`gridsim.power.fast.FastCascade.double_outages` decides pairs of
branch outages without a cascade where that is exact; each pair it settles
must be what ``run_rows`` of the pair gives: nothing trips (depth 0), the
loads it says are cut serve nothing and have all their customers out, every
other load is served as in the untouched grid, and the islands are the
untouched grid's plus the ones it counts. Unsettled pairs are allowed (they
go to the cascade). Here: every pair of case30 and case118; random grids
with dead ends, generator spurs, parallel lines, dark islands, islands held
by generators alone, phase shifters and branches out of service (Hypothesis);
the column-block and sparse paths against the full matrix; that a good share
is settled, so that the checks are not vacuous.
``benchmarks/check_pair_screening.py`` does the same on 100,000 pairs of
case2869pegase.
"""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pandapower as pp
import pytest
from conftest import _line, stock_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_engine import multivoltage, shifter_grid

from gridsim.loading import system_from_net
from gridsim.power import dcsolver, screening
from gridsim.power.compiled import compile_grid
from gridsim.power.fast import FastCascade, fast_engine


def all_pairs(engine: FastCascade, *, every_row: bool = False) -> np.ndarray:
    """Every pair of the lines' and transformers' branch rows (``every_row``: of every branch row, twins too)."""
    g = engine.grid
    rows = np.arange(g.n_branch) if every_row else np.concatenate([g.line_branch, g.trafo_branch])
    pairs = itertools.combinations_with_replacement(rows.tolist(), 2) if every_row else itertools.combinations(
        rows.tolist(), 2)
    return np.array(list(pairs), dtype=np.int64).reshape(-1, 2)


def assert_settled_pairs_equal_their_cascades(engine: FastCascade, pairs: np.ndarray) -> np.ndarray:
    """Every pair ``double_outages`` settles is its cascade; returns ``trivial``."""
    trivial, cut, extra = engine.double_outages(pairs)
    assert trivial.shape == extra.shape == (len(pairs),) and len(cut) == len(pairs)
    base = engine.run_rows(np.zeros(0, dtype=np.int64))
    base_fraction = base.out_fraction()
    for k in np.flatnonzero(trivial):
        result = engine.run_rows(pairs[k])
        served, fraction = base.served_mw.copy(), base_fraction.copy()
        served[cut[k]] = 0.0
        fraction[cut[k]] = 1.0
        where = f"pair {pairs[k].tolist()}"
        assert not result.trips and result.depth == 0, where
        np.testing.assert_allclose(result.served_mw, served, atol=1e-6, rtol=0, err_msg=where)
        assert result.islands == base.islands + extra[k], where
        np.testing.assert_allclose(result.out_fraction(), fraction, atol=1e-9, rtol=0, err_msg=where)
    return trivial


def test_every_settled_pair_of_case30_equals_its_cascade():
    engine = fast_engine(stock_system("case30"))
    trivial = assert_settled_pairs_equal_their_cascades(engine, all_pairs(engine))
    assert trivial.mean() > 0.9


def test_every_settled_pair_of_case118_equals_its_cascade():
    engine = fast_engine(stock_system("case118"))
    pairs = all_pairs(engine)
    trivial = assert_settled_pairs_equal_their_cascades(engine, pairs)
    _, cut, extra = engine.double_outages(pairs)
    # Not vacuous: most pairs are settled, among them pairs that cut off load, and pairs that split the grid twice.
    assert trivial.mean() > 0.5
    assert sum(len(c) > 0 for c in cut) > 100 and (extra[trivial] == 2).any()
    assert (trivial & engine.pair_screen.splits(pairs)).sum() > 500


def test_twins_rows_out_already_and_every_branch_row_are_settled_as_their_cascade():
    # multivoltage: a three-winding transformer (three branch rows and a star point), an impedance, switches.
    for system in (multivoltage(), shifter_grid(), stock_system("case9")):
        engine = FastCascade(compile_grid(system), system)
        assert_settled_pairs_equal_their_cascades(engine, all_pairs(engine, every_row=True))


def test_a_pair_of_one_row_twice_is_the_single_outage():
    engine = fast_engine(stock_system("case118"))
    rows = np.concatenate([engine.grid.line_branch, engine.grid.trafo_branch])
    single, single_cut = engine.single_outages(rows)
    double, double_cut, extra = engine.double_outages(np.stack([rows, rows], axis=1))
    assert (double >= single).all()  # the pair screen settles what the single one does, and bridges to generators
    for k in np.flatnonzero(single):
        np.testing.assert_array_equal(np.sort(double_cut[k]), np.sort(single_cut[k]))
        assert extra[k] == (1 if len(single_cut[k]) else 0)


def dead_end_with_a_load_out_of_service():
    """ext - b1 - b2 in a loop, b3 hanging off b2 with one load in service and one out."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110) for _ in range(4)]
    pp.create_ext_grid(net, b[0])
    for x, y in ((0, 1), (1, 2), (0, 2), (2, 3)):
        _line(net, b[x], b[y])
    pp.create_load(net, b[1], p_mw=10)
    pp.create_load(net, b[3], p_mw=5, in_service=False)
    pp.create_load(net, b[3], p_mw=5)
    return system_from_net(net, name="dead-end", overload_tolerance=0.0, base_overloads="raise")


def test_a_load_out_of_service_behind_a_dead_end_is_cut_off_with_it():
    # In a dark island every load's customers are off supply, a load out of service too (its state is "island").
    system = dead_end_with_a_load_out_of_service()
    engine = FastCascade(compile_grid(system), system)
    spur = engine.grid.line_branch[3]
    assert engine.run_rows(np.array([spur])).out_fraction().tolist() == [0.0, 1.0, 1.0]
    trivial, cut = engine.single_outages(np.array([spur]))
    assert trivial[0] and sorted(cut[0].tolist()) == [1, 2]
    trivial, cut, extra = engine.double_outages(np.array([[spur, spur], [spur, engine.grid.line_branch[0]]]))
    assert trivial.all() and [sorted(c.tolist()) for c in cut] == [[1, 2], [1, 2]] and extra.tolist() == [1, 1]


def test_the_column_blocks_and_the_sparse_factorisation_settle_the_same(monkeypatch):
    system = stock_system("case30")
    pairs = all_pairs(FastCascade(compile_grid(system), system))
    full = FastCascade(compile_grid(system), system).double_outages(pairs)
    monkeypatch.setattr(screening, "FULL_MATRIX_BYTES", 0)  # factors solved per block of pairs
    blocks = FastCascade(compile_grid(system), system).double_outages(pairs, block=97)
    monkeypatch.setattr(dcsolver, "DENSE_ROWS", 10)  # a sparse LU: the columns come from it
    sparse = FastCascade(compile_grid(system), system)
    assert sparse.factorisation == "sparse-lu"
    lu_blocks = sparse.double_outages(pairs)
    monkeypatch.setattr(screening, "FULL_MATRIX_BYTES", 2**30)  # the whole matrix from a Cholesky inverse
    cholesky = FastCascade(compile_grid(system), system).double_outages(pairs)
    for other in (blocks, lu_blocks, cholesky):
        np.testing.assert_array_equal(other[0], full[0])
        np.testing.assert_array_equal(other[2], full[2])
        assert all(np.array_equal(a, b) for a, b in zip(other[1], full[1]))


def test_the_engine_pickles_without_its_screen_and_builds_it_again():
    engine = FastCascade(compile_grid(stock_system("case30")), stock_system("case30"))
    pairs = all_pairs(engine)
    before = engine.double_outages(pairs)
    twin = pickle.loads(pickle.dumps(engine))
    assert "_pair_screen" not in twin.__dict__
    after = twin.double_outages(pairs)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[2], before[2])


def test_rows_outside_the_grid_are_refused():
    engine = fast_engine(stock_system("case30"))
    with pytest.raises(ValueError, match="outside the grid"):
        engine.double_outages(np.array([[0, engine.grid.n_branch]]))
    trivial, cut, extra = engine.double_outages(np.zeros((0, 2), dtype=np.int64))
    assert trivial.shape == extra.shape == (0,) and cut == []


# ------------------------------------------------------------ random grids


@st.composite
def random_grids(draw):
    """A small 110 kV grid: a random tree plus loops, with the features the screen must get right.

    Parallel lines, radial dead ends (some with an out-of-service load),
    spurs to generators, an out-of-service line, optionally a dark island
    and an island held by a generator alone, and a phase-shifting
    transformer to a second external grid's bus or a plain one.
    """
    n = draw(st.integers(4, 9))
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, 110) for _ in range(n)]
    pp.create_ext_grid(net, buses[0])
    max_i = st.floats(0.08, 0.6)
    for i in range(1, n):
        _line(net, buses[draw(st.integers(0, i - 1))], buses[i], max_i_ka=draw(max_i))
    for _ in range(draw(st.integers(0, 5))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a != b:
            _line(net, buses[a], buses[b], max_i_ka=draw(max_i), length_km=draw(st.floats(2.0, 30.0)))
    for i in range(1, n):
        if draw(st.booleans()):
            pp.create_load(net, buses[i], p_mw=draw(st.floats(1.0, 40.0)))
    for _ in range(draw(st.integers(0, 3))):  # dead ends: a bus with a load, maybe one more behind it
        at = buses[draw(st.integers(0, n - 1))]
        end = pp.create_bus(net, 110)
        _line(net, at, end, max_i_ka=draw(max_i))
        pp.create_load(net, end, p_mw=draw(st.floats(0.5, 20.0)), in_service=draw(st.booleans()))
        if draw(st.booleans()):
            further = pp.create_bus(net, 110)
            _line(net, end, further, max_i_ka=draw(max_i))
            pp.create_load(net, further, p_mw=draw(st.floats(0.5, 10.0)))
    for _ in range(draw(st.integers(0, 2))):  # spurs to generators, some with a load of their own
        spur = pp.create_bus(net, 110)
        _line(net, buses[draw(st.integers(0, n - 1))], spur, max_i_ka=draw(max_i))
        pp.create_gen(net, spur, p_mw=draw(st.floats(0.0, 30.0)), max_p_mw=draw(st.floats(5.0, 60.0)), min_p_mw=0.0)
        if draw(st.booleans()):
            pp.create_load(net, spur, p_mw=draw(st.floats(0.5, 40.0)))
    if draw(st.booleans()):
        net.line.loc[draw(st.integers(0, len(net.line) - 1)), "in_service"] = False
    if draw(st.booleans()):  # a dark island, no source: a ring (its two-edge cuts split it) and a spur
        a, b, c, d = (pp.create_bus(net, 110) for _ in range(4))
        for x, y in ((a, b), (b, c), (c, a), (c, d)):
            _line(net, x, y)
        pp.create_load(net, b, p_mw=5.0)
    if draw(st.booleans()):  # an island held by a generator alone, a loop in it
        a, b, c = (pp.create_bus(net, 110) for _ in range(3))
        for x, y in ((a, b), (b, c), (c, a)):
            _line(net, x, y, max_i_ka=draw(max_i))
        pp.create_gen(net, a, p_mw=10.0, max_p_mw=50.0, min_p_mw=0.0, slack=True)
        pp.create_load(net, c, p_mw=draw(st.floats(1.0, 40.0)))
    if draw(st.booleans()):  # a transformer from a 220 kV bus, phase-shifting or not
        hv = pp.create_bus(net, 220)
        pp.create_line_from_parameters(net, hv, pp.create_bus(net, 220), length_km=5, r_ohm_per_km=0.05,
                                       x_ohm_per_km=0.4, c_nf_per_km=0, max_i_ka=draw(max_i))
        pp.create_transformer_from_parameters(net, hv, buses[draw(st.integers(0, n - 1))], sn_mva=100,
                                              vn_hv_kv=220, vn_lv_kv=110, vkr_percent=0.3, vk_percent=12,
                                              pfe_kw=0, i0_percent=0, shift_degree=draw(st.sampled_from([0, 5])))
        pp.create_load(net, hv, p_mw=draw(st.floats(1.0, 30.0)))
    return net


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=random_grids())
def test_every_settled_pair_of_a_random_grid_equals_its_cascade(net):
    system = system_from_net(net, name="random", overload_tolerance=0.0, base_overloads="raise")
    engine = FastCascade(compile_grid(system), system)
    assert_settled_pairs_equal_their_cascades(engine, all_pairs(engine, every_row=True))
