"""The local ClickHouse endpoint: chdb served over the ClickHouse HTTP interface.

The endpoint is one project process (``python -m billing.chdb_server.server``) that owns the chdb
data directory ``<state>/clickhouse`` and listens where ``BILLING_CLICKHOUSE_URL`` points. When
that URL names anything but a loopback address, the project uses that ClickHouse server as it
is: nothing is started locally.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

from billing.platform.process import ManagedProcess
from billing.platform.service import Service
from billing.settings import Settings
from billing.warehouse.client import endpoint, ping
from billing.warehouse.migrations import migrate

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_local(settings: Settings) -> bool:
    """True when the endpoint is the local chdb server (a loopback http URL)."""
    return urlparse(settings.clickhouse_url).scheme == "http" and endpoint(settings)[0] in LOOPBACK


class WarehouseService(Service):
    """The chdb-backed ClickHouse HTTP endpoint (or an external ClickHouse server)."""

    name = "warehouse"

    @property
    def endpoint(self) -> str:
        return self.settings.clickhouse_url

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "clickhouse"

    def managed(self) -> ManagedProcess:
        host, port, _ = endpoint(self.settings)
        return ManagedProcess(
            name=self.name,
            argv=[sys.executable, "-m", "billing.chdb_server.server", "--data-dir", str(self.data_dir),
                  "--host", host, "--port", str(port)],
            run_dir=self.settings.run_dir,
            log_dir=self.settings.log_dir,
            health=lambda: ping(self.endpoint),
            ports=[(host, port)],
            env={"TZ": "UTC", "PYTHONUNBUFFERED": "1"},
            hint="set BILLING_CLICKHOUSE_URL",
        )

    def start(self) -> bool:
        """Start the local endpoint; an external server is used as it is (`billing warehouse migrate`)."""
        return super().start() if is_local(self.settings) else False

    def after_start(self) -> None:
        """Apply pending schema migrations to the local endpoint, so the workers find their tables."""
        migrate(self.settings)

    def stop(self) -> bool:
        """Stop the local endpoint (an external server is never stopped)."""
        return super().stop() if is_local(self.settings) else False

    def details(self) -> str:
        """Size of the local data directory (or that the server is external)."""
        if not is_local(self.settings):
            return "external ClickHouse server"
        size = sum(f.stat().st_size for f in self.data_dir.rglob("*") if f.is_file())
        return f"chdb, {size / 2**20:.0f} MiB data"
