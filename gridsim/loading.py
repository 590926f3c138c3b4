"""Loading a rated system: the model's reader, with the power room's branch ratings.

A system is read and checked by :mod:`gridsim.model.system`; its branch
ratings need a power flow (:mod:`gridsim.power.ratings`). This module joins
the two, so the model never imports the power room and the power room never
reads a manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridsim.model.system import System, read_system, system_on_net
from gridsim.power.ratings import branch_ratings

__all__ = ["load_system", "system_from_net"]


def load_system(spec: str | Path, **overrides: Any) -> System:
    """Load a system from a folder, a ``system.toml`` path or ``pandapower:<case>``.

    A bare name (``ukraine-2015``) that is not a path is looked up among the
    bundled topologies.

    Parameters
    ----------
    spec : str or Path
        Where the system is.
    **overrides
        Power settings that replace the manifest's (``overload_tolerance``,
        ``unrated_branches``, ``rating_margin``).

    Returns
    -------
    System
        The grid with its substations, customers, restoration rules, layers
        and branch ratings, checked.

    Raises
    ------
    InputError
        Missing or malformed manifest, unknown key, unknown bus or load.

    Examples
    --------
    >>> system = load_system("pandapower:case9")
    >>> len(system.net.bus), len(system.net.line)
    (9, 9)
    >>> load_system("pandapower:case9", overload_tolerance=0.2).overload_tolerance
    0.2
    """
    return read_system(spec, rate=branch_ratings, **overrides)


def system_from_net(net: Any, **options: Any) -> System:
    """Build a :class:`~gridsim.model.system.System` around an in-memory pandapower net (no manifest).

    Parameters
    ----------
    net : pandapowerNet
        The grid. It is deep-copied: later changes to it do not reach the system.
    **options
        ``name``; ``substations`` (a site name to ``{"buses": [...], "tags": {...}}``
        or just a list of buses; buses left out become sites of their own);
        ``customers`` (load index to customer count; other loads follow
        ``kw_per_customer``, default 2.0); ``people_per_customer`` (2.5);
        ``overload_tolerance`` (0.1); ``unrated_branches`` (``"never-trip"``);
        ``rating_margin`` (0.5); ``base_overloads`` (``"trip"``);
        ``restoration`` and ``operator_restoration``
        (:class:`~gridsim.model.system.RestorationParams`).

    Returns
    -------
    System
        The system, its branches rated as :func:`load_system` rates them.

    Examples
    --------
    >>> import pandapower.networks as pn
    >>> system = system_from_net(pn.case9(), name="nine", substations={"north": [0, 3]})
    >>> system.substations["north"].buses
    (0, 3)
    """
    return system_on_net(net, rate=branch_ratings, **options)
