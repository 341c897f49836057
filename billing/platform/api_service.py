"""The HTTP API as a local service of `billing up | down | status`."""

from __future__ import annotations

import sys

from billing.platform.process import ManagedProcess, http_ok
from billing.platform.service import Service


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET <url>/healthz`` answers 200."""
    return http_ok(url + "/healthz", timeout=timeout)


class ApiService(Service):
    """`billing api` in the background (uvicorn, BILLING_API_* settings)."""

    name = "api"

    @property
    def endpoint(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def managed(self) -> ManagedProcess:
        settings = self.settings
        return ManagedProcess(
            name=self.name,
            argv=[sys.executable, "-m", "billing", "api", "--host", settings.api_host,
                  "--port", str(settings.api_port), "--workers", str(settings.api_workers)],
            run_dir=settings.run_dir,
            log_dir=settings.log_dir,
            health=lambda: healthy(self.endpoint),
            ports=[(settings.api_host, settings.api_port)],
            env={"PYTHONUNBUFFERED": "1"},
            hint="set BILLING_API_PORT",
        )

    def details(self) -> str:
        return f"docs {self.endpoint}/docs, {self.settings.api_workers} worker(s)"
