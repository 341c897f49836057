"""Session fixtures: the real local broker and warehouse, on test ports and a test state folder.

The environment is set at import time so that every process the tests start (the `billing` CLI,
workers) sees the same settings. Set BILLING_TEST_KEEP=1 to leave the services running after the
session (faster local iterations); CI always stops them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.paths import REPO_ROOT

TEST_ENV = {
    "BILLING_STATE_DIR": str(REPO_ROOT / ".state" / "test"),
    "BILLING_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "BILLING_KAFKA_CONTROLLER_PORT": "19093",
    "BILLING_CLICKHOUSE_URL": "http://127.0.0.1:18123",
    "BILLING_SUPERSET_PORT": "18088",
}
for _key, _value in TEST_ENV.items():
    os.environ.setdefault(_key, _value)

from billing.platform import stack  # noqa: E402
from billing.platform.service import Service  # noqa: E402
from billing.settings import Settings, get_settings  # noqa: E402

E2E_TIMEOUT_S = 1800
"""The first dashboard test's setup installs Superset while the pipeline runs and dbt builds, beside the
other shard of `make test`: more than the 900 s every other test gets (pyproject.toml)."""

pytest_plugins = [
    "tests.integration.api_fixtures",
    "tests.integration.cluster_fixtures",
    "tests.integration.invoicing_fixtures",
    "tests.integration.marts_data",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by their folder, so ``-m "not integration"`` runs the fast tier alone: everything
    under tests/integration/ and tests/e2e/ needs the local broker and/or warehouse; e2e tests get
    :data:`E2E_TIMEOUT_S`."""
    for item in items:
        folder = item.path.relative_to(REPO_ROOT / "tests").parts[0]
        if folder in ("integration", "e2e"):
            item.add_marker(pytest.mark.integration)
        if folder == "e2e":
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the test stack."""
    get_settings.cache_clear()
    return get_settings()


def _run_service(settings: Settings, name: str) -> Iterator[Service]:
    svc = stack.service(settings, name)
    started = svc.start()
    yield svc
    if started and not os.environ.get("BILLING_TEST_KEEP"):
        svc.stop()


@pytest.fixture(scope="session")
def warehouse(settings: Settings) -> Iterator[Service]:
    """The local ClickHouse HTTP endpoint (chdb), started for the session."""
    yield from _run_service(settings, "warehouse")


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Iterator[Service]:
    """The local KRaft broker (every node of a local cluster with BILLING_KAFKA_BROKERS=3, as one service),
    started for the session, topics created."""
    yield from _run_service(settings, "kafka")
