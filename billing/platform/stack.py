"""The ordered set of local services that `billing up | down | status` manage."""

from __future__ import annotations

from billing.core.errors import PlatformError
from billing.platform.service import Service, ServiceStatus
from billing.settings import Settings


def services(settings: Settings) -> list[Service]:
    """Services in start order (stopped in reverse)."""
    from billing.platform.api_service import ApiService
    from billing.platform.kafka_broker import KafkaService
    from billing.platform.superset import SupersetService
    from billing.platform.warehouse_service import WarehouseService
    from billing.platform.worker_service import worker_services

    return [WarehouseService(settings), KafkaService(settings), *worker_services(settings), ApiService(settings),
            SupersetService(settings)]


def select(settings: Settings, names: list[str] | None, *, with_optional: bool = True) -> list[Service]:
    """The services named, in start order; when ``names`` is empty, all of them (optional ones
    only ``with_optional``)."""
    every = services(settings)
    if not names:
        return [svc for svc in every if with_optional or not svc.optional]
    known = {svc.name: svc for svc in every}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlatformError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(known)}.")
    return [svc for svc in every if svc.name in names]


def up(settings: Settings, names: list[str] | None = None, on_start=None) -> None:
    """Start services in order; if one fails, stop the ones this call started and re-raise."""
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


def down(settings: Settings, names: list[str] | None = None) -> list[tuple[str, bool]]:
    """Stop services in reverse order; returns (name, was_running) pairs."""
    return [(svc.name, svc.stop()) for svc in reversed(select(settings, names))]


def status(settings: Settings) -> list[ServiceStatus]:
    """Health of every service."""
    return [svc.status() for svc in services(settings)]
