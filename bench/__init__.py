"""Benchmarks: `make bench` (or `python -m bench [matching|chat]`)."""
