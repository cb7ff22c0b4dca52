"""Pivot's test suite (a package so that `tests.fixtures.*` stage modules import and pickle)."""
