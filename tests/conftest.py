"""Tiny hand-built grids whose answers are known by hand, shared by the tests."""

from __future__ import annotations

import functools

import pandapower as pp
import pytest

from gridsim.loading import load_system, system_from_net
from gridsim.model.grid import quiet_pandapower
from gridsim.model.system import RestorationParams

quiet_pandapower()


def _line(net, a, b, max_i_ka=1.0, length_km=10.0):
    """A 110 kV line with round numbers: rating sqrt(3)*110*max_i_ka MVA."""
    return pp.create_line_from_parameters(net, a, b, length_km=length_km, r_ohm_per_km=0.05, x_ohm_per_km=0.4,
                                          c_nf_per_km=0.0, max_i_ka=max_i_ka)


def radial_feeder():
    """ext_grid - b0 - b1 - b2, 10 MW at b1 and 20 MW at b2."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110, name=f"b{i}") for i in range(3)]
    pp.create_ext_grid(net, b[0])
    _line(net, b[0], b[1])
    _line(net, b[1], b[2])
    pp.create_load(net, b[1], p_mw=10, name="L1")
    pp.create_load(net, b[2], p_mw=20, name="L2")
    return net


def parallel_pair(load_mw=80.0, rating_mva=50.0):
    """ext_grid - b0 =two identical lines= b1 with one load: each line carries half."""
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    i_ka = rating_mva / (3 ** 0.5 * 110)
    _line(net, b0, b1, max_i_ka=i_ka)
    _line(net, b0, b1, max_i_ka=i_ka)
    pp.create_load(net, b1, p_mw=load_mw)
    return net


def island_with_generator(load_mw=50.0, gen_max_mw=30.0):
    """ext_grid - b0 - b1, with a generator (max gen_max_mw) and a load at b1."""
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    _line(net, b0, b1)
    pp.create_gen(net, b1, p_mw=10.0, max_p_mw=gen_max_mw, min_p_mw=0.0)
    pp.create_load(net, b1, p_mw=load_mw)
    return net


def three_sites(crews=1, manual_h=1.0):
    """ext_grid hub with three radial feeders, each its own site S1..S3 (10, 20, 30 MW)."""
    net = pp.create_empty_network()
    hub = pp.create_bus(net, 110, name="hub")
    pp.create_ext_grid(net, hub)
    sites = {}
    for i, mw in enumerate((10, 20, 30), start=1):
        bus = pp.create_bus(net, 110, name=f"S{i}")
        _line(net, hub, bus)
        pp.create_load(net, bus, p_mw=mw, name=f"L{i}")
        sites[f"S{i}"] = {"buses": [bus], "tags": {"operator": "op", "voltage_kv": 110}}
    restoration = RestorationParams(remote_min=5, manual_h=manual_h, crews=crews, detect_blind_min=30,
                                    max_reclose=2, generator_restart_h=4)
    return system_from_net(net, name="three-sites", substations=sites, restoration=restoration,
                           kw_per_customer=1.0)


@pytest.fixture
def make_system():
    """Wrap a net into a System with ratings taken as given and no tolerance."""

    def make(net, **kw):
        kw.setdefault("overload_tolerance", 0.0)
        return system_from_net(net, **kw)

    return make


@functools.cache
def stock_system(name: str):
    """A bare stock case as a System, loaded once per test session."""
    return load_system(f"pandapower:{name}")
