"""Benchmarks (not tests): ``make bench`` or ``python -m bench.e2e_card`` / ``python -m bench.search``."""
