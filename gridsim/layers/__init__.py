"""Computations of the infrastructure layers: water hydraulics and road traffic."""
