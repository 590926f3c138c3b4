"""Road traffic: readers check every id and number, the assignment reaches Wardrop's user equilibrium."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from gridsim.errors import InputError
from gridsim.layers import transport
from gridsim.layers.transport import (
    Demand,
    RoadNetwork,
    _biconjugate,
    _conjugate,
    assign,
    bpr_time_min,
    read_demand_csv,
    read_road_csv,
    read_road_graphml,
)
from gridsim.loading import load_system


def bpr(flow, capacity, free_flow, alpha=0.15, beta=4.0):
    """The BPR link time, written out here so the tests do not lean on the module's own."""
    return free_flow * (1 + alpha * (flow / capacity) ** beta)

METHODS = ("plain", "conjugate", "biconjugate")
#: Gaps the property tests ask for: the classic algorithm converges sublinearly, so it gets a looser one.
GAPS = {"plain": 1e-3, "conjugate": 1e-6, "biconjugate": 1e-6}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def network(links: list[tuple], n_nodes: int) -> RoadNetwork:
    """Links as ``(from, to, capacity_veh_h, free_flow_min[, bpr_alpha, bpr_beta])`` between nodes N0, N1, ..."""
    a, b, capacity, free_flow, *bpr_parameters = (np.array(column) for column in zip(*links))
    return RoadNetwork(tuple(f"N{i}" for i in range(n_nodes)), tuple(f"L{k}" for k in range(len(links))),
                       a, b, capacity, free_flow, np.empty(0), np.empty(0), *bpr_parameters)


def demand(*pairs: tuple[int, int, float]) -> Demand:
    origin, destination, trips = (np.array(column) for column in zip(*pairs)) if pairs else ([], [], [])
    return Demand(origin, destination, trips)


def beckmann(flow: np.ndarray, capacity: np.ndarray, free_flow: np.ndarray) -> float:
    """Sum over links of the integral of the BPR time from 0 to the flow (closed form), veh*min/h."""
    return float(np.sum(free_flow * (flow + 0.15 * flow ** 5 / (5 * capacity ** 4))))


def shortest_min(net: RoadNetwork, time_min: np.ndarray, origin: int) -> dict[int, float]:
    """Shortest times from ``origin`` by networkx (independent of the module's Dijkstra), parallel links included."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(len(net.node_ids)))
    for a, b, t in zip(net.from_node, net.to_node, time_min):
        graph.add_edge(int(a), int(b), time=float(t))
    return nx.single_source_dijkstra_path_length(graph, origin, weight="time")


# ----------------------------------------------------------------------------- equilibrium by hand


def test_bpr_time():
    assert bpr_time_min(np.array([0.0, 500.0, 1000.0]), 500.0, 10.0).tolist() == pytest.approx([10.0, 11.5, 34.0])

# Two ways from N0 to N1: two parallel links, or two routes through nodes of their own.
PARALLEL = network([(0, 1, 1000.0, 10.0), (0, 1, 500.0, 12.0)], 2)
ROUTES = network([(0, 2, 2000.0, 4.0), (2, 1, 1000.0, 6.0), (0, 3, 500.0, 5.0), (3, 1, 1e6, 7.0)], 4)


def route_times(net: RoadNetwork, result) -> tuple[float, float]:
    t = result.time_min
    return (t[0], t[1]) if net is PARALLEL else (t[0] + t[1], t[2] + t[3])


def route_flows(net: RoadNetwork, result) -> tuple[float, float]:
    x = result.flow_veh_h
    return (x[0], x[1]) if net is PARALLEL else (x[0], x[2])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("net", [PARALLEL, ROUTES], ids=["parallel-links", "two-routes"])
def test_both_routes_used_take_equal_time(net, method):
    result = assign(net, demand((0, 1, 2500.0)), gap=1e-10, method=method)
    first, second = route_flows(net, result)
    assert first > 100 and second > 100  # both used
    assert first + second == pytest.approx(2500.0, rel=1e-12)
    # Wardrop's first principle: every used route takes the same time.
    assert route_times(net, result)[0] == pytest.approx(route_times(net, result)[1], rel=1e-8)
    if net is ROUTES:  # a route's links carry the same flow
        assert result.flow_veh_h[1] == pytest.approx(first) and result.flow_veh_h[3] == pytest.approx(second)
    assert result.converged and result.relative_gap <= 1e-10


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("net", [PARALLEL, ROUTES], ids=["parallel-links", "two-routes"])
def test_light_demand_takes_only_the_faster_route(net, method):
    result = assign(net, demand((0, 1, 20.0)), method=method)
    first, second = route_flows(net, result)
    assert first == pytest.approx(20.0, rel=1e-12) and second == 0.0
    used, unused = route_times(net, result)
    # The unused route is no faster even empty.
    unused_free = net.free_flow_min[1] if net is PARALLEL else net.free_flow_min[2] + net.free_flow_min[3]
    assert unused == pytest.approx(unused_free) and unused_free >= used


def test_the_cheaper_of_two_parallel_links_wins_whatever_its_position():
    # The faster link listed second: a parallel-link mix-up would load the first.
    net = network([(0, 1, 1000.0, 12.0), (0, 1, 1000.0, 10.0)], 2)
    result = assign(net, demand((0, 1, 20.0)))
    assert list(result.flow_veh_h) == [0.0, 20.0]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("trips, links", [
    (2000.0, [(1000.0, 10.0), (500.0, 12.0)]),
    (3000.0, [(800.0, 5.0), (1600.0, 5.0)]),  # same free-flow time, capacities 1:2
    (600.0, [(300.0, 20.0), (1200.0, 21.0)]),
    (5000.0, [(4000.0, 30.0), (600.0, 8.0)]),
])
def test_two_link_split_matches_a_hand_solution(trips, links, method):
    (c1, t1), (c2, t2) = links
    net = network([(0, 1, c1, t1), (0, 1, c2, t2)], 2)

    def difference(x1: float) -> float:  # time on link 1 minus time on link 2 with x1 on link 1
        return bpr(x1, c1, t1) - bpr(trips - x1, c2, t2)

    expected = brentq(difference, 0.0, trips, xtol=1e-12)
    result = assign(net, demand((0, 1, trips)), gap=1e-12, method=method)
    np.testing.assert_allclose(result.flow_veh_h, [expected, trips - expected], rtol=1e-7)
    assert result.total_veh_h == pytest.approx(trips * bpr(expected, c1, t1) / 60.0, rel=1e-7)


@pytest.mark.parametrize("trips", [demand(), demand((0, 1, 0.0), (2, 3, 0.0)), demand((0, 0, 50.0))],
                         ids=["no-pairs", "zero-trips", "staying-put"])
def test_no_demand_gives_free_flow(trips):
    for capacity in (None, ROUTES.capacity_veh_h * 0.5):
        result = assign(ROUTES, trips, capacity)
        assert np.array_equal(result.flow_veh_h, np.zeros(4))
        assert np.array_equal(result.time_min, ROUTES.free_flow_min)
        assert result.total_veh_h == 0.0 and result.relative_gap == 0.0 and result.iterations == 0


def test_lower_capacity_on_a_route_moves_traffic_off_it():
    trips = demand((0, 1, 2500.0))
    base = assign(ROUTES, trips, gap=1e-9)
    capacity = ROUTES.capacity_veh_h.copy()
    capacity[0] *= 0.5  # a dark signal on the first route
    dark = assign(ROUTES, trips, capacity, gap=1e-9)
    assert dark.flow_veh_h[0] < base.flow_veh_h[0]
    assert dark.total_veh_h > base.total_veh_h
    assert ROUTES.capacity_veh_h[0] == 2000.0  # the network is untouched


def test_braess_less_capacity_can_mean_less_travel():
    """Why the property tests below use Beckmann's objective: total travel time is not monotone."""
    # N0 -> N1 -> N3 and N0 -> N2 -> N3, each one congestible link and one long wide one; a bridge N1 -> N2.
    net = network([(0, 1, 1000.0, 1.0), (1, 3, 1e6, 15.0), (0, 2, 1e6, 15.0), (2, 3, 1000.0, 1.0),
                   (1, 2, 1e6, 0.1)], 4)
    trips = demand((0, 3, 3000.0))
    with_bridge = assign(net, trips, gap=1e-9)
    capacity = net.capacity_veh_h.copy()
    capacity[4] = 1e-3
    closed = assign(net, trips, capacity, gap=1e-9)
    assert closed.total_veh_h < 0.7 * with_bridge.total_veh_h
    assert beckmann(closed.flow_veh_h, capacity, net.free_flow_min) >= beckmann(
        with_bridge.flow_veh_h, net.capacity_veh_h, net.free_flow_min)


def test_bad_capacity_override_and_method_are_programming_errors():
    with pytest.raises(ValueError, match="one entry per link"):
        assign(ROUTES, demand((0, 1, 10.0)), np.ones(3))
    with pytest.raises(ValueError, match="finite and > 0"):
        assign(ROUTES, demand((0, 1, 10.0)), np.array([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="method must be"):
        assign(ROUTES, demand((0, 1, 10.0)), method="guess")
    with pytest.raises(ValueError, match="no route"):
        assign(ROUTES, demand((1, 0, 10.0)))


# ----------------------------------------------------------------------------- per-link BPR coefficients


def wardrop_flow_on_first(trips: float, first: tuple, second: tuple) -> float:
    """Flow on the first of two parallel links ``(capacity, free_flow, alpha, beta)`` at Wardrop's equilibrium.

    Solved here, independently of the module: the link times are equal where both links are used (a root of
    ``t1(x1) - t2(trips - x1)``, increasing in ``x1``), else all trips take the link that is faster even then.
    """
    def difference(x1: float) -> float:
        return bpr(x1, *first) - bpr(trips - x1, *second)

    if difference(0.0) >= 0:
        return 0.0
    if difference(trips) <= 0:
        return trips
    return brentq(difference, 0.0, trips, xtol=1e-12 * trips, rtol=1e-15)


# Link 1 gentler but steeper at heavy load (beta 6), link 2 a sharper bend at capacity (alpha 1, beta 2).
STEEP, SHARP = (1000.0, 10.0, 0.05, 6.0), (500.0, 12.0, 1.0, 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_per_link_bpr_parameters_move_the_two_link_equilibrium(method):
    trips = 2500.0
    expected = wardrop_flow_on_first(trips, STEEP, SHARP)
    with_defaults = wardrop_flow_on_first(trips, (*STEEP[:2], 0.15, 4.0), (*SHARP[:2], 0.15, 4.0))
    assert abs(expected - with_defaults) > 0.05 * trips  # the parameters matter here
    net = network([(0, 1, *STEEP), (0, 1, *SHARP)], 2)
    result = assign(net, demand((0, 1, trips)), gap=1e-12, method=method)
    np.testing.assert_allclose(result.flow_veh_h, [expected, trips - expected], rtol=1e-3)
    np.testing.assert_allclose(result.time_min, [bpr(expected, *STEEP), bpr(trips - expected, *SHARP)], rtol=1e-3)
    assert result.total_veh_h == pytest.approx(trips * bpr(expected, *STEEP) / 60.0, rel=1e-3)


def link_parameters(alpha_low: float, beta_low: float):
    """``(capacity, free_flow, alpha, beta)`` of one link, alpha and beta from the given least values."""
    return st.tuples(st.floats(100.0, 2000.0), st.floats(1.0, 20.0), st.floats(alpha_low, 2.0),
                     st.floats(beta_low, 8.0))


@SETTINGS
@given(link_parameters(0.0, 0.0), link_parameters(0.01, 0.5), st.floats(1.0, 4000.0), st.sampled_from(METHODS))
def test_two_parallel_links_with_their_own_bpr_parameters_match_brentq(first, second, trips, method):
    # The first link may have a time that does not depend on its flow (alpha or beta 0); the second always rises
    # with its flow (beta down to 0.5: infinitely steep at zero flow), so the equilibrium is unique.
    expected = wardrop_flow_on_first(trips, first, second)
    # ... in exact arithmetic. In floating point the split is fuzzy where the second link's time hardly rises
    # (beta 8 at a small share of capacity: (x / c) ** 8 vanishes beside 1): both links then take the same time
    # to the last bit over a range of splits, and any of them is an equilibrium. Keep the cases where moving
    # a ten-thousandth of the trips off the equilibrium changes the times measurably.
    shift = 1e-4 * trips
    scale = 1e-9 * max(bpr(trips, *first), bpr(trips, *second))

    def difference(x1: float) -> float:
        return bpr(x1, *first) - bpr(trips - x1, *second)

    assume(expected - shift < 0 or difference(expected - shift) < -scale)
    assume(expected + shift > trips or difference(expected + shift) > scale)
    net = network([(0, 1, *first), (0, 1, *second)], 2)
    result = assign(net, demand((0, 1, trips)), gap=1e-12, max_iter=10_000, method=method)
    np.testing.assert_allclose(result.flow_veh_h, [expected, trips - expected], rtol=1e-3, atol=shift)
    np.testing.assert_allclose(result.time_min, bpr(result.flow_veh_h, *np.transpose([first, second])),
                               rtol=1e-12)


def test_two_routes_with_per_link_bpr_parameters_take_equal_time():
    # ROUTES with other curves on three of its links: both routes used, equal times, by the module's own Dijkstra.
    net = network([(0, 2, 2000.0, 4.0, 0.5, 2.0), (2, 1, 1000.0, 6.0, 0.15, 4.0), (0, 3, 500.0, 5.0, 0.05, 6.0),
                   (3, 1, 1e6, 7.0, 0.0, 4.0)], 4)
    result = assign(net, demand((0, 1, 2500.0)), gap=1e-10)
    t = result.time_min
    assert result.flow_veh_h[0] > 100 and result.flow_veh_h[2] > 100
    assert t[0] + t[1] == pytest.approx(t[2] + t[3], rel=1e-8)
    assert t[3] == 7.0  # alpha 0: free-flow time at any flow
    check_equilibrium(net, demand((0, 1, 2500.0)), result, 1e-10)


def test_no_demand_gives_the_times_at_zero_flow_whatever_the_exponent():
    # beta 0 makes the time t0 (1 + alpha) at every flow, zero included (0 ** 0 is 1).
    net = network([(0, 1, 1000.0, 10.0, 0.5, 0.0), (0, 1, 500.0, 12.0, 0.5, 0.5)], 2)
    result = assign(net, demand())
    assert list(result.time_min) == [15.0, 12.0] and list(result.flow_veh_h) == [0.0, 0.0]


def test_bpr_time_takes_per_link_parameters():
    flow = np.array([500.0, 500.0, 500.0])
    times = bpr_time_min(flow, 500.0, 10.0, np.array([0.15, 1.0, 0.0]), np.array([4.0, 2.0, 4.0]))
    assert times.tolist() == pytest.approx([11.5, 20.0, 10.0])


@pytest.mark.parametrize("name", ["bpr_alpha", "bpr_beta"])
@pytest.mark.parametrize("values, message", [
    ([0.15, -0.1], "be finite and >= 0"), ([np.nan, 4.0], "be finite and >= 0"),
    ([np.inf, 4.0], "be finite and >= 0"), ([0.15], r"have one entry per link \(2\)"),
])
def test_road_network_refuses_bad_bpr_arrays(name, values, message):
    other = "bpr_beta" if name == "bpr_alpha" else "bpr_alpha"
    arrays = {name: np.array(values), other: np.array([1.0, 1.0])}
    with pytest.raises(ValueError, match=f"RoadNetwork.{name} must {message}"):
        RoadNetwork(("A", "B"), ("L1", "L2"), [0, 1], [1, 0], [1.0, 1.0], [1.0, 1.0], **arrays)


# ----------------------------------------------------------------------------- properties


@st.composite
def road_cases(draw):
    """A strongly connected network (a ring plus random links, parallels allowed) and random demand."""
    n = draw(st.integers(3, 6))
    node = st.integers(0, n - 1)
    extra = draw(st.lists(st.tuples(node, node).filter(lambda p: p[0] != p[1]), max_size=8))
    pairs = [(i, (i + 1) % n) for i in range(n)] + extra
    links = [(a, b, draw(st.floats(100.0, 1000.0)), draw(st.floats(0.5, 10.0))) for a, b in pairs]
    od = draw(st.lists(st.tuples(node, node).filter(lambda p: p[0] != p[1]), min_size=1, max_size=6,
                       unique=True))
    trips = [(a, b, draw(st.just(0.0) | st.floats(0.01, 800.0))) for a, b in od]  # no denormal trips
    return network(links, n), demand(*trips)


def check_equilibrium(net: RoadNetwork, trips: Demand, result, gap: float) -> float:
    """Assert conservation and the equilibrium conditions by an independent route search; return the gap (veh*min/h)."""
    x, t = result.flow_veh_h, result.time_min
    n = len(net.node_ids)
    assert np.all(x >= 0)
    np.testing.assert_allclose(t, bpr(x, net.capacity_veh_h, net.free_flow_min, net.bpr_alpha, net.bpr_beta),
                               rtol=1e-12)
    assert result.total_veh_h == pytest.approx(float(x @ t) / 60.0, rel=1e-12)
    # Flow conservation: what enters a node minus what leaves it is what ends there minus what starts there.
    net_in = np.bincount(net.to_node, x, n) - np.bincount(net.from_node, x, n)
    ends = np.bincount(trips.destination, trips.trips_per_h, n) - np.bincount(trips.origin, trips.trips_per_h, n)
    np.testing.assert_allclose(net_in, ends, atol=1e-9 * (1 + trips.trips_per_h.sum()))
    # Shortest routes from every origin, independently of the module.
    origins = sorted({int(o) for o, q in zip(trips.origin, trips.trips_per_h) if q > 0})
    dist = {o: shortest_min(net, t, o) for o in origins}
    shortest = sum(q * dist[int(o)][int(d)] for o, d, q in zip(trips.origin, trips.destination, trips.trips_per_h)
                   if q > 0)
    total = float(x @ t)
    if total == 0:
        return 0.0
    excess = total - shortest  # = sum over used routes of flow x (route time - shortest time)
    assert excess / total <= gap * (1 + 1e-9) + 1e-12
    assert excess / total == pytest.approx(result.relative_gap, abs=1e-9)
    # Every link carrying flow lies on a shortest route from some origin, up to the gap: its flow times its
    # smallest reduced cost (time to reach its end through it, less the shortest time there) is within the gap.
    reduced = np.array([min(dist[o][int(a)] + ta - dist[o][int(b)] for o in origins if int(a) in dist[o])
                        if any(int(a) in dist[o] for o in origins) else 0.0
                        for a, b, ta in zip(net.from_node, net.to_node, t)])
    assert np.all(reduced >= -1e-9 * (1 + t.max()))
    assert np.all(x * reduced <= excess + 1e-9 * total)
    return excess


@SETTINGS
@given(road_cases(), st.sampled_from(METHODS), st.data())
def test_equilibrium_on_random_networks(case, method, data):
    net, trips = case
    gap = GAPS[method]
    result = assign(net, trips, gap=gap, max_iter=20_000, method=method)
    assert result.converged
    excess = check_equilibrium(net, trips, result, gap)
    # Lowering one link's capacity raises every link's cost at every flow, so the least Beckmann objective
    # cannot fall; each computed value is within its gap of the least.
    link = data.draw(st.integers(0, len(net.link_ids) - 1))
    capacity = net.capacity_veh_h.copy()
    capacity[link] *= data.draw(st.floats(0.1, 0.9))
    lowered = assign(net, trips, capacity, gap=gap, max_iter=20_000, method=method)
    before = beckmann(result.flow_veh_h, net.capacity_veh_h, net.free_flow_min)
    after = beckmann(lowered.flow_veh_h, capacity, net.free_flow_min)
    assert after >= before - max(excess, 0.0) * (1 + 1e-9) - 1e-12 * before


@st.composite
def road_cases_with_bpr(draw):
    """A case of :func:`road_cases` with BPR coefficients and exponents of its own on every link."""
    net, trips = draw(road_cases())
    m = len(net.link_ids)
    alpha = draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m))
    beta = draw(st.lists(st.floats(1.0, 6.0), min_size=m, max_size=m))
    return RoadNetwork(net.node_ids, net.link_ids, net.from_node, net.to_node, net.capacity_veh_h, net.free_flow_min,
                       bpr_alpha=np.array(alpha), bpr_beta=np.array(beta)), trips


@SETTINGS
@given(road_cases_with_bpr(), st.sampled_from(METHODS))
def test_equilibrium_on_random_networks_with_per_link_bpr(case, method):
    net, trips = case
    result = assign(net, trips, gap=GAPS[method], max_iter=20_000, method=method)
    assert result.converged
    check_equilibrium(net, trips, result, GAPS[method])


@st.composite
def separate_routes(draw):
    """One origin-destination pair joined by 2-4 routes sharing no link: direct links or two-link detours."""
    links, n = [], 2
    for _ in range(draw(st.integers(2, 4))):
        capacity, free_flow = draw(st.floats(100.0, 2000.0)), draw(st.floats(1.0, 20.0))
        if draw(st.booleans()):
            links.append((0, 1, capacity, free_flow))
        else:
            links += [(0, n, capacity, free_flow), (n, 1, draw(st.floats(100.0, 2000.0)), draw(st.floats(1.0, 20.0)))]
            n += 1
    return network(links, n), demand((0, 1, draw(st.floats(1.0, 4000.0))))


@SETTINGS
@given(separate_routes(), st.data())
def test_less_capacity_on_separate_routes_never_shortens_travel(case, data):
    # With one pair and routes sharing no link, the equilibrium time is the level at which the routes' flows
    # add up to the demand; less capacity on a route lowers its flow at every level, so the level rises.
    net, trips = case
    result = assign(net, trips, gap=1e-9, max_iter=10_000)
    assert result.converged
    check_equilibrium(net, trips, result, 1e-9)
    link = data.draw(st.integers(0, len(net.link_ids) - 1))
    capacity = net.capacity_veh_h.copy()
    capacity[link] *= data.draw(st.floats(0.1, 0.9))
    lowered = assign(net, trips, capacity, gap=1e-9, max_iter=10_000)
    assert lowered.converged
    assert lowered.total_veh_h >= result.total_veh_h * (1 - 1e-7)


def grid(rows: int, cols: int, pairs: int, seed: int) -> tuple[RoadNetwork, Demand]:
    """A two-way street grid with random capacities and times, and random demand."""
    rng = np.random.default_rng(seed)
    node = np.arange(rows * cols).reshape(rows, cols)
    ends = np.concatenate([np.stack([node[:, :-1].ravel(), node[:, 1:].ravel()], 1),
                           np.stack([node[:-1, :].ravel(), node[1:, :].ravel()], 1)])
    a, b = np.concatenate([ends[:, 0], ends[:, 1]]), np.concatenate([ends[:, 1], ends[:, 0]])
    m = len(a)
    net = RoadNetwork(tuple(f"N{i}" for i in range(rows * cols)), tuple(f"L{k}" for k in range(m)), a, b,
                      rng.uniform(300, 1500, m), rng.uniform(0.5, 3.0, m))
    od = rng.choice(rows * cols, size=(4 * pairs, 2))
    od = np.unique(od[od[:, 0] != od[:, 1]], axis=0)[:pairs]
    return net, Demand(od[:, 0], od[:, 1], rng.uniform(20, 120, len(od)))


def test_every_method_reaches_the_same_equilibrium_on_a_grid():
    # Each method's Beckmann objective is within its gap of the least (the objective is convex), so within
    # the larger gap of each other. (Flows on lightly loaded links are loosely pinned down by a gap: BPR
    # times hardly change there, so they are not compared.)
    net, trips = grid(6, 7, 60, seed=3)
    results = {method: assign(net, trips, gap=1e-5, max_iter=100_000, method=method) for method in METHODS}
    objective, excess = {}, {}
    for method, result in results.items():
        assert result.converged, method
        excess[method] = check_equilibrium(net, trips, result, 1e-5)
        objective[method] = beckmann(result.flow_veh_h, net.capacity_veh_h, net.free_flow_min)
    for method in ("conjugate", "biconjugate"):
        assert abs(objective[method] - objective["plain"]) <= max(excess[method], excess["plain"]) * (1 + 1e-9)
    # The conjugate directions exist to save steps.
    assert results["conjugate"].iterations < results["plain"].iterations / 5
    assert results["biconjugate"].iterations < results["plain"].iterations / 5


def test_conjugate_targets_are_conjugate_convex_mixes():
    """The mixes by the closed forms of Mitradjieva and Lindberg, against a direct 2x2 solve."""
    rng = np.random.default_rng(7)
    solved = 0
    for _ in range(1000):
        m = 6
        hessian = rng.uniform(0.1, 2.0, m)
        flow, last, load = (rng.dirichlet(np.ones(m)) * 100 for _ in range(3))  # loads of one total: 100
        recent = last - flow
        # One target on: conjugate to the last direction.
        target = _conjugate(flow, load, last, hessian)
        if target is not load:
            assert target.sum() == pytest.approx(100.0) and np.all(target >= 0)
            assert (target - flow) @ (hessian * recent) == pytest.approx(0.0, abs=1e-9 * 100 ** 2)
        # Two: build a direction before it, H-conjugate to it, as a past step would have left it.
        step = rng.uniform(0.05, 0.95)
        v = rng.dirichlet(np.ones(m)) * 100 - flow
        earlier = v - (v @ (hessian * recent)) / (recent @ (hessian * recent)) * recent
        before = (earlier + flow - step * last) / (1 - step)
        target = _biconjugate(flow, load, last, before, step, hessian)
        # Directly: load - flow + nu (last - flow) + mu (before - flow), H-conjugate to both directions.
        basis = np.stack([last - flow, before - flow])
        lhs = np.array([[b @ (hessian * d) for b in basis] for d in (recent, earlier)])
        rhs = -np.array([(load - flow) @ (hessian * d) for d in (recent, earlier)])
        nu, mu = np.linalg.solve(lhs, rhs)
        if nu >= 0 and mu >= 0 and 1 / (1 + nu + mu) >= 0.01:
            solved += 1
            np.testing.assert_allclose(target, (load + nu * last + mu * before) / (1 + nu + mu), rtol=1e-8,
                                       atol=1e-8)
            assert target.sum() == pytest.approx(100.0)
    assert solved > 30  # the direct solve had nonnegative weights often enough to test something


def test_max_iter_stops_early_and_says_so():
    net, trips = grid(6, 7, 60, seed=3)
    result = assign(net, trips, gap=1e-12, max_iter=3, method="plain")
    assert result.iterations == 3 and not result.converged and result.relative_gap > 1e-12


def gap_of(net: RoadNetwork, trips: Demand, flow: np.ndarray) -> float:
    """Relative gap of link flows, by the tests' own BPR times and networkx shortest paths."""
    time = bpr(flow, net.capacity_veh_h, net.free_flow_min, net.bpr_alpha, net.bpr_beta)
    moving = [(int(o), int(d), q) for o, d, q in zip(trips.origin, trips.destination, trips.trips_per_h) if q > 0]
    dist = {o: shortest_min(net, time, o) for o in {o for o, _, _ in moving}}
    total = float(flow @ time)
    return max(0.0, 1.0 - sum(q * dist[o][d] for o, d, q in moving) / total)


def record_iterates(monkeypatch) -> list[np.ndarray]:
    """Flows at which :func:`assign` computes BPR times: every iterate (and zero flows, which carry no demand)."""
    seen: list[np.ndarray] = []
    original = transport.bpr_time_min

    def recording(flow, *args, **kwargs):
        seen.append(np.array(flow))
        return original(flow, *args, **kwargs)

    monkeypatch.setattr(transport, "bpr_time_min", recording)
    return seen


def test_assign_returns_the_best_iterate_not_the_last(monkeypatch):
    # Good steps, then a sabotaged last one (a full step onto the all-or-nothing load): the last iterate is the
    # worst, and the result must be the best one seen.
    net, trips = grid(6, 7, 60, seed=3)
    flows = record_iterates(monkeypatch)
    original, steps = transport._step_size, []

    def sabotaged(*args, **kwargs):
        steps.append(None)
        return 1.0 if len(steps) == 6 else original(*args, **kwargs)

    monkeypatch.setattr(transport, "_step_size", sabotaged)
    result = assign(net, trips, gap=1e-12, max_iter=6, method="plain")
    iterates = [flow for flow in flows if flow.any()]
    assert len(iterates) == 7 and result.iterations == 6  # the first load, then one per step
    gaps = [gap_of(net, trips, flow) for flow in iterates]
    best = int(np.argmin(gaps))
    assert gaps[-1] > 2 * gaps[best]  # the sabotage worked
    assert result.relative_gap == pytest.approx(min(gaps), rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(result.flow_veh_h, iterates[best])
    np.testing.assert_allclose(result.time_min, bpr(iterates[best], net.capacity_veh_h, net.free_flow_min),
                               rtol=1e-12)
    assert result.total_veh_h == pytest.approx(float(result.flow_veh_h @ result.time_min) / 60.0, rel=1e-12)
    assert not result.converged


@SETTINGS
@given(road_cases_with_bpr(), st.sampled_from(METHODS), st.integers(1, 8))
def test_assign_returns_the_least_gap_of_its_iterates(case, method, max_iter):
    net, trips = case
    with pytest.MonkeyPatch.context() as monkeypatch:
        flows = record_iterates(monkeypatch)
        result = assign(net, trips, gap=1e-12, max_iter=max_iter, method=method)
    iterates = [flow for flow in flows if flow.any()]
    if not iterates:  # no trips at all
        assert result.relative_gap == 0.0
        return
    gaps = [gap_of(net, trips, flow) for flow in iterates]
    assert result.relative_gap == pytest.approx(min(gaps), abs=1e-9)
    assert result.relative_gap <= gap_of(net, trips, iterates[-1]) + 1e-9


# ----------------------------------------------------------------------------- readers

NODES = "id,x,y\nA,0,0\nB,1,0\nC,1,1\n"
LINKS = ("id,from,to,capacity_veh_h,free_flow_min\n"
         "L1,A,B,1000,2\nL2,B,A,1000,2\nL3,B,C,800,3\nL4,C,A,500,4.5\nL5,A,B,400,3\n")  # L5 parallel to L1
DEMAND = "origin,destination,trips_per_h\nA,C,100\nC,B,50\n"


def write(tmp_path: Path, **changes: str) -> dict[str, Path]:
    files = {"nodes": NODES, "links": LINKS, "demand": DEMAND, **changes}
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def load(paths: dict[str, Path]) -> tuple[RoadNetwork, Demand]:
    net = read_road_csv(paths["nodes"], paths["links"])
    return net, read_demand_csv(paths["demand"], net)


def test_csv_network_and_demand_load(tmp_path):
    net, trips = load(write(tmp_path))
    assert net.node_ids == ("A", "B", "C") and net.link_ids == ("L1", "L2", "L3", "L4", "L5")
    assert list(net.from_node) == [0, 1, 1, 2, 0] and list(net.to_node) == [1, 0, 2, 0, 1]
    assert list(net.capacity_veh_h) == [1000, 1000, 800, 500, 400]
    assert list(net.free_flow_min) == [2, 2, 3, 4.5, 3]
    assert list(net.node_x) == [0, 1, 1] and list(net.node_y) == [0, 0, 1]
    assert list(trips.origin) == [0, 2] and list(trips.destination) == [2, 1]
    assert list(trips.trips_per_h) == [100, 50] and trips.trips_per_h.sum() == 150
    with pytest.raises(ValueError):
        net.capacity_veh_h[0] = 1.0  # frozen: nobody changes the network under a cached assignment


def test_coordinates_and_demand_rows_are_optional(tmp_path):
    net, trips = load(write(tmp_path, nodes="id\nA\nB\nC\n", demand="origin,destination,trips_per_h\n"))
    assert np.isnan(net.node_x).all() and np.isnan(net.node_y).all()
    assert len(trips.trips_per_h) == 0 and assign(net, trips).total_veh_h == 0.0


@pytest.mark.parametrize("changes, message", [
    ({"links": LINKS.replace("L3,B,C", "L3,B,Z")}, r"links.csv: line 4: link 'L3': no road node 'Z' \(column to\)"),
    ({"links": LINKS.replace("L1,A,B", "L1,Q,B")}, r"links.csv: line 2: link 'L1': no road node 'Q' \(column from\)"),
    ({"links": LINKS.replace("L1,A,B,1000", "L1,A,B,x")},
     r"links.csv: line 2: link 'L1': capacity_veh_h must be a number > 0, got 'x'"),
    ({"links": LINKS.replace("L1,A,B,1000", "L1,A,B,0")}, r"line 2: link 'L1': capacity_veh_h must be .*got '0'"),
    ({"links": LINKS.replace("L1,A,B,1000", "L1,A,B,inf")}, r"line 2: .*capacity_veh_h must be .*got 'inf'"),
    ({"links": LINKS.replace("L3,B,C,800,3", "L3,B,C,800,-3")},
     r"links.csv: line 4: link 'L3': free_flow_min must be a number > 0, got '-3'"),
    ({"links": LINKS.replace("L4,C,A,500,4.5", "L4,C,A,500,")}, r"line 5: link 'L4': free_flow_min .*got ''"),
    ({"links": LINKS.replace("L2,B,A", "L1,B,A")}, r"links.csv: line 3: duplicate link id 'L1' \(first on line 2\)"),
    ({"links": LINKS.replace("L2,B,A", "L2,B,B")}, r"links.csv: line 3: link 'L2' goes from road node 'B' to itself"),
    ({"links": LINKS.replace("L2,B,A", ",B,A")}, r"links.csv: line 3: empty id"),
    ({"links": "id,from,to,capacity_veh_h\nL1,A,B,1000\n"}, r"links.csv: line 1: missing column\(s\) free_flow_min"),
    ({"links": "id,from,to,capacity_veh_h,free_flow_min\n"}, r"links.csv: no road links"),
    ({"links": LINKS + "L6,A,C,1,1,9\n"}, r"links.csv: line 7: more fields than columns"),
    ({"nodes": NODES + "B,5,5\n"}, r"nodes.csv: line 5: duplicate road node id 'B' \(first on line 3\)"),
    ({"nodes": NODES.replace("B,1,0", "B,east,0")},
     r"nodes.csv: line 3: road node 'B': x must be a number, got 'east'"),
    ({"nodes": "id,x,y\n"}, r"nodes.csv: no road nodes"),
    ({"nodes": "name\nA\n"}, r"nodes.csv: line 1: missing column\(s\) id"),
    ({"demand": DEMAND.replace("C,B,50", "C,Q,50")},
     r"demand.csv: line 3: no road node 'Q' \(column destination\)"),
    ({"demand": DEMAND.replace("A,C,100", "Z,C,100")}, r"demand.csv: line 2: no road node 'Z' \(column origin\)"),
    ({"demand": DEMAND.replace("A,C,100", "A,C,-3")},
     r"demand.csv: line 2: trips_per_h must be a number >= 0, got '-3'"),
    ({"demand": DEMAND.replace("A,C,100", "A,C,many")}, r"line 2: trips_per_h must be a number >= 0, got 'many'"),
    ({"demand": DEMAND.replace("A,C,100", "A,C,nan")}, r"line 2: trips_per_h must be a number >= 0, got 'nan'"),
    ({"demand": DEMAND.replace("A,C,100", "A,A,100")}, r"demand.csv: line 2: origin and destination are both 'A'"),
    ({"demand": DEMAND + "A,C,7\n"}, r"demand.csv: line 4: pair 'A' -> 'C' listed twice \(first on line 2\)"),
    ({"nodes": NODES + "D,2,2\n", "links": LINKS + "L6,D,A,100,1\n", "demand": DEMAND + "C,D,5\n"},
     r"demand.csv: line 4: no route from road node 'C' to 'D' over the links"),
    ({"demand": "origin,destination\nA,B\n"}, r"demand.csv: line 1: missing column\(s\) trips_per_h"),
])
def test_bad_csv_inputs_name_file_and_line(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        load(write(tmp_path, **changes))


BPR_LINKS = ("id,from,to,capacity_veh_h,free_flow_min,bpr_alpha,bpr_beta\n"
             "L1,A,B,1000,2,0.5,2\nL2,B,A,1000,2,,\nL3,B,C,800,3,0,0\nL4,C,A,500,4.5,1e-1,5.5\nL5,A,B,400,3,0.15,\n")


def test_csv_bpr_columns_are_read_and_blanks_take_the_defaults(tmp_path):
    net, _ = load(write(tmp_path, links=BPR_LINKS))
    assert list(net.bpr_alpha) == [0.5, 0.15, 0.0, 0.1, 0.15]
    assert list(net.bpr_beta) == [2.0, 4.0, 0.0, 5.5, 4.0]
    # Either column alone; without both, the defaults everywhere.
    only_beta = "\n".join(",".join(f for k, f in enumerate(row.split(",")) if k != 5)
                          for row in BPR_LINKS.splitlines()) + "\n"
    net, _ = load(write(tmp_path, links=only_beta))
    assert list(net.bpr_alpha) == [0.15] * 5 and list(net.bpr_beta) == [2.0, 4.0, 0.0, 5.5, 4.0]
    net, _ = load(write(tmp_path))
    assert list(net.bpr_alpha) == [0.15] * 5 and list(net.bpr_beta) == [4.0] * 5
    with pytest.raises(ValueError):
        net.bpr_alpha[0] = 1.0


@pytest.mark.parametrize("column", [5, 6], ids=["bpr_alpha", "bpr_beta"])
@pytest.mark.parametrize("text", ["-0.1", "nan", "inf", "-inf", "steep", "1e999"])
def test_csv_bad_bpr_value_is_one_input_error_naming_file_line_and_column(tmp_path, column, text):
    rows = BPR_LINKS.splitlines()
    fields = rows[3].split(",")  # L3, line 4 of the file
    fields[column] = text
    rows[3] = ",".join(fields)
    name = ("bpr_alpha", "bpr_beta")[column - 5]
    with pytest.raises(InputError) as error:
        load(write(tmp_path, links="\n".join(rows) + "\n"))
    assert str(error.value) == (f"{tmp_path / 'links.csv'}: line 4: link 'L3': {name} must be a number >= 0, "
                                f"got {text!r}")


def test_graphml_bpr_attributes_are_read_with_defaults(tmp_path):
    keys = ('<key id="a" for="edge" attr.name="bpr_alpha" attr.type="double"/>\n'
            '<key id="b" for="edge" attr.name="bpr_beta" attr.type="double"><default>5</default></key>\n')
    edges = (edge("A", "B", edge_id="e1").replace("</edge>", '<data key="a">0.4</data></edge>')
             + edge("B", "C", edge_id="e2").replace("</edge>", '<data key="b">2.5</data></edge>'))
    path = tmp_path / "roads.graphml"
    path.write_text(graphml(edges, keys=keys))
    net = read_road_graphml(path)
    assert net.link_ids == ("e1", "e2")
    assert list(net.bpr_alpha) == [0.4, 0.15] and list(net.bpr_beta) == [5.0, 2.5]
    path.write_text(graphml(edges.replace(">0.4<", ">-1<"), keys=keys))
    with pytest.raises(InputError, match=r"roads.graphml: edge 'e1' \('A' -> 'B'\): bpr_alpha must be a number >= 0, "
                                         r"got '-1.0'"):
        read_road_graphml(path)


def test_graphml_network_loads_to_the_same_arrays_as_csv(tmp_path):
    paths = write(tmp_path)
    from_csv = read_road_csv(paths["nodes"], paths["links"])
    graph = nx.MultiDiGraph()
    for node, x, y in zip(from_csv.node_ids, from_csv.node_x, from_csv.node_y):
        graph.add_node(node, x=float(x), y=float(y))
    for link, a, b, capacity, free_flow in zip(from_csv.link_ids, from_csv.from_node, from_csv.to_node,
                                                from_csv.capacity_veh_h, from_csv.free_flow_min):
        graph.add_edge(from_csv.node_ids[a], from_csv.node_ids[b], key=link, capacity_veh_h=float(capacity),
                       free_flow_min=float(free_flow))
    nx.write_graphml(graph, tmp_path / "roads.graphml")
    from_graphml = read_road_graphml(tmp_path / "roads.graphml")
    assert from_graphml.node_ids == from_csv.node_ids
    for name in ("node_x", "node_y"):
        np.testing.assert_array_equal(getattr(from_graphml, name), getattr(from_csv, name), err_msg=name)
    # networkx lists edges node by node, not in file order: match links by id.
    assert sorted(from_graphml.link_ids) == sorted(from_csv.link_ids)
    order = [from_graphml.link_ids.index(link) for link in from_csv.link_ids]
    for name in ("from_node", "to_node", "capacity_veh_h", "free_flow_min"):
        np.testing.assert_array_equal(getattr(from_graphml, name)[order], getattr(from_csv, name), err_msg=name)


def graphml(edges: str, *, directed: bool = True, nodes: str = "ABC", keys: str = "") -> str:
    kinds = "directed" if directed else "undirected"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
            '<key id="c" for="edge" attr.name="capacity_veh_h" attr.type="string"/>\n'
            '<key id="t" for="edge" attr.name="free_flow_min" attr.type="double"/>\n'
            f'{keys}<graph edgedefault="{kinds}">\n'
            + "".join(f'<node id="{n}"/>\n' for n in nodes)
            + edges + "</graph>\n</graphml>\n")


def edge(source: str, target: str, capacity: str | None = "900", free_flow: str | None = "2", edge_id: str = "") -> str:
    data = "".join(f'<data key="{k}">{v}</data>' for k, v in (("c", capacity), ("t", free_flow)) if v is not None)
    ident = f' id="{edge_id}"' if edge_id else ""
    return f'<edge{ident} source="{source}" target="{target}">{data}</edge>\n'


def test_graphml_ids_directions_and_defaults(tmp_path):
    path = tmp_path / "roads.graphml"
    path.write_text(graphml(edge("A", "B", edge_id="e1") + edge("B", "C") + edge("A", "B", edge_id="e2")))
    net = read_road_graphml(path)
    assert net.link_ids == ("e1", "e2", "B-C")  # networkx groups parallel edges
    assert list(net.capacity_veh_h) == [900, 900, 900] and np.isnan(net.node_x).all()
    # Undirected: each edge both ways.
    path.write_text(graphml(edge("A", "B", edge_id="e1") + edge("B", "C", capacity="300"), directed=False))
    net = read_road_graphml(path)
    assert net.link_ids == ("e1:A-B", "e1:B-A", "B-C", "C-B")
    assert list(net.from_node) == [0, 1, 1, 2] and list(net.to_node) == [1, 0, 2, 1]
    assert list(net.capacity_veh_h) == [900, 900, 300, 300]
    # A GraphML default stands in for a missing value.
    declared = '<key id="t" for="edge" attr.name="free_flow_min" attr.type="double"/>'
    path.write_text(graphml(edge("A", "B", free_flow=None)).replace(
        declared, declared.replace("/>", "><default>7.5</default></key>")))
    assert list(read_road_graphml(path).free_flow_min) == [7.5]


@pytest.mark.parametrize("text, message", [
    ("<graphml><graph", r"roads.graphml: line 1: not a readable GraphML file"),
    ("<notgraphml/>", r"roads.graphml: not a readable GraphML file"),
    (graphml(edge("A", "B", edge_id="e1").replace('key="c"', 'key="zz"')), r"not a readable GraphML file: .*zz"),
    (graphml(edge("A", "B", free_flow=None, edge_id="e1")),
     r"roads.graphml: edge 'e1' \('A' -> 'B'\): missing attribute free_flow_min"),
    (graphml(edge("A", "B", capacity=None)), r"edge 'A-B' \('A' -> 'B'\): missing attribute capacity_veh_h"),
    (graphml(edge("A", "B", capacity="lots", edge_id="e1")),
     r"edge 'e1' \('A' -> 'B'\): capacity_veh_h must be a number > 0, got 'lots'"),
    (graphml(edge("A", "B", free_flow="0")), r"edge 'A-B' .*free_flow_min must be a number > 0, got '0.0'"),
    (graphml(edge("A", "A")), r"edge 'A-A' \('A' -> 'A'\) is a self-loop"),
    (graphml(edge("A", "B", edge_id="e1") + edge("B", "C", edge_id="e1")), r"duplicate link id 'e1'"),
    (graphml(""), r"roads.graphml: no road links"),
    (graphml("", nodes=""), r"roads.graphml: no road nodes"),
])
def test_bad_graphml_is_one_input_error(tmp_path, text, message):
    path = tmp_path / "roads.graphml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_road_graphml(path)


def test_missing_graphml_file(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nowhere.graphml'}: GraphML file not found")):
        read_road_graphml(tmp_path / "nowhere.graphml")


# ----------------------------------------------------------------------------- in a system


def test_a_system_with_roads_loads_and_dark_signals_slow_traffic(tmp_path):
    write(tmp_path)
    (tmp_path / "signals.csv").write_text("id,node\nS-A,A\n")
    (tmp_path / "system.toml").write_text(
        'name = "t"\n[power]\nsource = "pandapower:case9"\n'
        '[layers.transport]\nnodes = "nodes.csv"\nlinks = "links.csv"\ndemand = "demand.csv"\n'
        'signals = "signals.csv"\ndark_signal_capacity = 0.1\n')
    layers = load_system(tmp_path).layers
    transport = layers.transport
    assert layers.counts()["road_link"] == 5 and layers.counts()["demand_pair"] == 2
    dark = transport.capacity_with_dark(frozenset({"S-A"}))
    assert list(dark) == [1000, 100, 800, 50, 400]  # L2 and L4 enter A
    base = assign(transport.network, transport.demand, transport.capacity_with_dark(frozenset()))
    assert assign(transport.network, transport.demand, dark).total_veh_h > base.total_veh_h
