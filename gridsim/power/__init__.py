"""The power room: the cascade contract, the two engines that honour it, and their solvers.

- :mod:`~gridsim.power.contract`: what an engine takes and gives (``Outages``,
  ``CascadeResult``, ``Trip``, ``VoltageCollapse``), the rules' constants, and
  ``CascadeEngine``, the shape of an engine;
- :mod:`~gridsim.power.cascade`: the reference engine, plain pandapower;
- :mod:`~gridsim.power.fast`: the fast engine on compiled arrays
  (:mod:`~gridsim.power.compiled`, the DC solver :mod:`~gridsim.power.dcsolver`,
  the AC flow :mod:`~gridsim.power.acflow`);
- :mod:`~gridsim.power.powerflow`: the thin wrappers over pandapower the
  reference and the ratings call; :mod:`~gridsim.power.ratings`: branch
  ratings and base flows; :mod:`~gridsim.power.cache`: what is computed once
  per system, kept beside it.

Importing the room imports no pandapower or lightsim2grid: each is imported
where a solver first needs it (in ``powerflow``, ``compiled`` and ``acflow``
only), so that a sweep's worker processes start without them.
"""
