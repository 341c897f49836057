"""The interface every local service implements, so `billing up | down | status` can manage it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from billing.platform.process import ManagedProcess
from billing.settings import Settings


@dataclass
class ServiceStatus:
    """One row of `billing status`."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    endpoint: str
    details: str = ""
    optional: bool = False

    @property
    def ok(self) -> bool:
        """Healthy, or an optional service that is simply not started."""
        return self.healthy or (self.optional and not self.running)


class Service(ABC):
    """A local component: installed by ``prepare``, run as a :class:`ManagedProcess`."""

    name: str
    optional = False
    """Optional services (heavy ones such as Superset) start only when named: `billing up superset`."""
    stops_with_peers = False
    """Nodes of a cluster: `billing down` stops them at once (one by one, the last would wait for a quorum)."""
    group: str | None = None
    """The name that stands for all nodes of a cluster (``kafka`` for ``kafka-1..3``), so that callers asking for
    the service by its single-node name get the whole cluster."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @abstractmethod
    def managed(self) -> ManagedProcess:
        """The background process (argv, ports, health check) of this service."""

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where clients reach the service (shown by `billing status`)."""

    def prepare(self) -> None:
        """Install and initialise whatever the service needs; idempotent. Runs before start."""

    def after_start(self) -> None:
        """Work that needs the running service (e.g. creating topics); idempotent."""

    def details(self) -> str:
        """Extra status text (lag, throughput, ...) when healthy."""
        return ""

    def start(self) -> bool:
        """Prepare, start and initialise; False if it was already running."""
        self.prepare()
        started = self.managed().start(timeout=self.settings.start_timeout_s)
        self.after_start()
        return started

    def stop(self) -> bool:
        """Stop the service; False if it was not running."""
        return self.managed().stop()

    def status(self) -> ServiceStatus:
        """Current health of the service."""
        proc = self.managed()
        running = proc.process()
        healthy = proc.is_healthy()
        return ServiceStatus(
            name=self.name,
            running=running is not None,
            healthy=healthy,
            pid=running.pid if running else None,
            endpoint=self.endpoint,
            details=self.details() if healthy else "",
            optional=self.optional,
        )
