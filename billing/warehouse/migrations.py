"""Ordered, idempotent ClickHouse schema migrations (`billing warehouse migrate`).

Migrations are the files ``clickhouse/schema/NNNN_name.sql``, applied in version order. Each file
holds one or more statements separated by ``;`` (split with the SQL tokenizer, so semicolons in
strings and comments are safe); ``${database}`` and ``${marts_database}`` are replaced by the
configured database names. Applied versions are recorded with a checksum in
``<database>.schema_migrations``: re-running is a no-op, and editing an applied migration is an
error (add a new one instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import httpx
from clickhouse_connect.driver.client import Client

from billing.core.errors import ConfigError
from billing.resources import SCHEMA_MIGRATIONS
from billing.settings import Settings
from billing.warehouse.client import client as make_client
from billing.warehouse.sql import Kind, tokenize

SCHEMA_DIR = SCHEMA_MIGRATIONS
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCAL_ENDPOINT_NAME = "billing-chdb"


@dataclass(frozen=True)
class Migration:
    """One schema file."""

    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def statements(self, settings: Settings) -> list[str]:
        """The statements of this migration with database names filled in."""
        rendered = Template(self.text).safe_substitute(
            database=settings.clickhouse_database, marts_database=settings.clickhouse_marts_database
        )
        return split_statements(rendered)


def split_statements(sql: str) -> list[str]:
    """Split a script into statements at top-level ``;`` (comments dropped)."""
    statements: list[str] = []
    current: list[str] = []
    for token in tokenize(sql):
        if token.kind is Kind.COMMENT:
            continue
        if token.kind is Kind.PUNCT and token.text == ";" and token.depth == 0:
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(token.text)
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def discover(directory: Path = SCHEMA_DIR) -> list[Migration]:
    """All migrations in ``directory``, ordered; rejects badly named files and duplicate versions."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ConfigError(f"{path}: migration files are named NNNN_snake_case.sql")
        version = int(match.group(1))
        if version in migrations:
            raise ConfigError(f"{path}: version {version} is also used by {migrations[version].path.name}")
        migrations[version] = Migration(version, match.group(2), path)
    return [migrations[v] for v in sorted(migrations)]


def _ensure_ledger(ch: Client, settings: Settings) -> None:
    db = settings.clickhouse_database
    ch.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    ch.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )


def applied(ch: Client, settings: Settings) -> dict[int, str]:
    """Applied version -> checksum."""
    _ensure_ledger(ch, settings)
    rows = ch.query(f"SELECT version, checksum FROM {settings.clickhouse_database}.schema_migrations FINAL").result_rows
    return {int(version): checksum for version, checksum in rows}


def pending(settings: Settings, ch: Client | None = None, directory: Path = SCHEMA_DIR) -> list[Migration]:
    """Migrations not applied yet; raises ConfigError if an applied one was edited."""
    ch = ch or make_client(settings)
    done = applied(ch, settings)
    todo = []
    for migration in discover(directory):
        if migration.version not in done:
            todo.append(migration)
        elif done[migration.version] != migration.checksum:
            raise ConfigError(
                f"{migration.path.name} changed after it was applied; revert it and add a new migration instead."
            )
    return todo


def migrate(settings: Settings, directory: Path = SCHEMA_DIR, on_apply=None) -> list[Migration]:
    """Apply pending migrations in order; returns what was applied (empty when up to date)."""
    ch = make_client(settings)
    todo = pending(settings, ch, directory)
    for migration in todo:
        if on_apply:
            on_apply(migration)
        for statement in migration.statements(settings):
            ch.command(statement)
        ch.insert(
            f"{settings.clickhouse_database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
    return todo


def is_local_endpoint(settings: Settings) -> bool:
    """True when the warehouse URL is the project's own chdb endpoint (not a ClickHouse server)."""
    try:
        response = httpx.get(settings.clickhouse_url, params={"query": "SELECT 1"}, timeout=5,
                             auth=(settings.clickhouse_user, settings.clickhouse_password))
    except httpx.HTTPError:
        return False
    return response.headers.get("X-ClickHouse-Server-Display-Name") == LOCAL_ENDPOINT_NAME


def readonly_user_statements(settings: Settings) -> list[str]:
    """SQL that creates the dashboards' read-only user on a real ClickHouse server."""
    user, password = settings.clickhouse_readonly_user, settings.clickhouse_readonly_password.replace("'", "\\'")
    return [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY '{password}' SETTINGS readonly = 1",
        f"GRANT SELECT ON {settings.clickhouse_database}.* TO {user}",
        f"GRANT SELECT ON {settings.clickhouse_marts_database}.* TO {user}",
    ]


def ensure_readonly_user(settings: Settings) -> str:
    """Create the read-only user on a real server; the local endpoint has it built in."""
    if is_local_endpoint(settings):
        return f"read-only user {settings.clickhouse_readonly_user!r} is built into the local endpoint"
    ch = make_client(settings)
    ch.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_marts_database}")
    for statement in readonly_user_statements(settings):
        ch.command(statement)
    return f"read-only user {settings.clickhouse_readonly_user!r} created with SELECT on the billing databases"
