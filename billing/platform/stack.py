"""The ordered set of local services that `billing up | down | status` manage."""

from __future__ import annotations

from billing.core.errors import PlatformError
from billing.platform.process import ManagedProcess, stop_together
from billing.platform.service import Service, ServiceStatus
from billing.settings import Settings


def services(settings: Settings) -> list[Service]:
    """Services in start order (stopped in reverse); webhook delivery only when endpoints are configured."""
    from billing.platform.api_service import ApiService
    from billing.platform.kafka_broker import kafka_services
    from billing.platform.report_worker_service import ReportWorkerService
    from billing.platform.superset import SupersetService
    from billing.platform.warehouse_service import WarehouseService
    from billing.platform.webhook_service import WebhookService
    from billing.platform.worker_service import worker_services

    webhooks = [WebhookService(settings)] if settings.webhook_endpoints_file else []
    return [WarehouseService(settings), *kafka_services(settings), *worker_services(settings), ReportWorkerService(settings),
            *webhooks, ApiService(settings), SupersetService(settings)]


def select(settings: Settings, names: list[str] | None, *, with_optional: bool = True) -> list[Service]:
    """The services named, in start order; when ``names`` is empty, all of them (optional ones
    only ``with_optional``). A group's name (``kafka``) names all its nodes."""
    every = services(settings)
    if not names:
        return [svc for svc in every if with_optional or not svc.optional]
    known = {svc.name for svc in every} | {svc.group for svc in every if svc.group}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlatformError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}.")
    return [svc for svc in every if svc.name in names or svc.group in names]


class Group(Service):
    """The services one name stands for, as one service: the single broker, or every node of a local
    cluster for ``kafka``. Starts them in order, stops them together, healthy when all are."""

    def __init__(self, settings: Settings, name: str):
        super().__init__(settings)
        self.name = name
        self.members = select(settings, [name])

    @property
    def endpoint(self) -> str:
        return ",".join(member.endpoint for member in self.members)

    def managed(self) -> ManagedProcess:
        """The first member's process."""
        return self.members[0].managed()

    def start(self) -> bool:
        return bool(up(self.settings, [self.name]))

    def stop(self) -> bool:
        return any(was_running for _, was_running in down(self.settings, [self.name]))

    def status(self) -> ServiceStatus:
        rows = [member.status() for member in self.members]
        return ServiceStatus(name=self.name, running=all(r.running for r in rows), healthy=all(r.healthy for r in rows),
                             pid=rows[0].pid, endpoint=self.endpoint, optional=rows[0].optional)


def service(settings: Settings, name: str) -> Service:
    """Service ``name``, or all the nodes its name stands for (``kafka`` on a local cluster) as one."""
    chosen = select(settings, [name])
    return chosen[0] if len(chosen) == 1 else Group(settings, name)


def up(settings: Settings, names: list[str] | None = None, on_start=None) -> list[Service]:
    """Start services in order and return the ones this call started; if one fails, stop those and re-raise."""
    started: list[Service] = []
    try:
        for svc in select(settings, names, with_optional=False):
            if on_start:
                on_start(svc)
            if svc.start():
                started.append(svc)
    except BaseException:
        for svc in reversed(started):
            svc.stop()
        raise
    return started


def down(settings: Settings, names: list[str] | None = None) -> list[tuple[str, bool]]:
    """Stop services in reverse order, the nodes of a cluster at once; returns (name, was_running) pairs."""
    chosen = select(settings, names)
    peers = [svc for svc in chosen if svc.stops_with_peers]
    stopped: list[tuple[str, bool]] = []
    for svc in reversed(chosen):
        if not svc.stops_with_peers:
            stopped.append((svc.name, svc.stop()))
        elif svc is peers[-1]:
            stopped += zip([p.name for p in reversed(peers)], reversed(stop_together([p.managed() for p in peers])),
                           strict=True)
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Health of every service."""
    return [svc.status() for svc in services(settings)]
