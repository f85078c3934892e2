"""Fixtures: see tests/i2c_fixtures.py."""

from i2c_fixtures import env, make_bus, sim_bus  # noqa: F401
