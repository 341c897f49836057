"""Every benchmark module imports (they run only from `make bench`, so a stale import would
otherwise surface there first)."""

from __future__ import annotations

import importlib

import pytest

from tests.paths import REPO_ROOT

MODULES = sorted(path.stem for path in (REPO_ROOT / "bench").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert "bench_streams" in MODULES and "bench_failover" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "run", None)), f"bench.{name} has no run()"
