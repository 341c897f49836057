"""ClickHouse clients built from settings (the local chdb endpoint or a real server)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from billing.core.errors import ServiceUnavailable
from billing.settings import Settings


def endpoint(settings: Settings) -> tuple[str, int, bool]:
    """(host, port, secure) of ``settings.clickhouse_url``."""
    url = urlparse(settings.clickhouse_url)
    secure = url.scheme == "https"
    return url.hostname or "127.0.0.1", url.port or (8443 if secure else 8123), secure


def client(settings: Settings, *, readonly: bool = False, database: str | None = None, **kwargs) -> Client:
    """A clickhouse-connect client; ``readonly`` uses the dashboards user.

    Raises :class:`ServiceUnavailable` with a hint when the warehouse cannot be reached.
    """
    host, port, secure = endpoint(settings)
    user, password = (
        (settings.clickhouse_readonly_user, settings.clickhouse_readonly_password)
        if readonly
        else (settings.clickhouse_user, settings.clickhouse_password)
    )
    try:
        return clickhouse_connect.get_client(
            host=host, port=port, secure=secure, username=user, password=password,
            database=database or "", compress="lz4", tz_mode="aware", **kwargs,
        )
    except OperationalError as exc:
        raise ServiceUnavailable(
            f"cannot reach ClickHouse at {settings.clickhouse_url} ({exc.__class__.__name__}); "
            "start the local stack with `billing up` or set BILLING_CLICKHOUSE_URL."
        ) from exc


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET <url>/ping`` answers 200 ``Ok.`` (the ClickHouse health check)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=timeout) as response:
            return response.status == 200 and response.read().strip() == b"Ok."
    except (urllib.error.URLError, OSError):
        return False
