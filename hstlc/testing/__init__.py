"""Synthetic HST files with injected signals (used by the tests, the benchmarks and ``hstlc demo``)."""
