"""Benchmarks that are too long for the test suite (`make bench`, `python -m bench`)."""
