"""Benchmarks. Run `make bench` (all) or `python -m bench NAME ...`; results go to docs/benchmarks.md."""
