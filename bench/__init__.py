"""Benchmarks of market-intel (``make bench``, docs/benchmarks.md); not part of the tests."""
