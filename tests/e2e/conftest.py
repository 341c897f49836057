"""Session fixtures of the dashboard tests: recent data in the warehouse, marts built, Superset up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from billing.platform.service import Service
from billing.platform.superset import SupersetService
from billing.settings import REPO_ROOT, Settings
from tests.e2e.dashboard_data import Loaded, load, simulate


@pytest.fixture(scope="session")
def marts(warehouse: Service, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Simulated traffic of the last 75 days loaded as the worker stores it, marts built by dbt."""
    now = datetime.now(timezone.utc)
    loaded = load(settings, simulate(tmp_path_factory.mktemp("simulated"), now), now)
    build = subprocess.run([sys.executable, "-m", "billing", "dbt", "build"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, f"billing dbt build failed:\n{build.stdout[-3000:]}\n{build.stderr[-2000:]}"
    return loaded


@pytest.fixture(scope="session")
def superset(settings: Settings, marts: Loaded) -> Iterator[SupersetService]:
    """Superset on the test port with the project's dashboards imported (installed once per machine)."""
    svc = SupersetService(settings)
    started = svc.start()
    yield svc
    if started and not os.environ.get("BILLING_TEST_KEEP"):
        svc.stop()
