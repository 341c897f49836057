"""API keys: random tokens shown once, stored only as SHA-256 hashes in a SQLite file.

A token looks like ``bk_<key id>_<secret>`` (the secret is 32 random bytes, URL-safe base64). The
store keeps the key id (for listing and revoking), the SHA-256 of the whole token, the tenants
(customer ids) the key may write for, whether it is an admin key, an optional rate limit and the
creation/revocation times. SQLite under the state folder is enough: keys change rarely, every
API worker reads the same file, and lookups are cached for a few seconds by :class:`KeyCache`.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from billing.core.errors import ConfigError
from billing.settings import Settings

TOKEN_PREFIX = "bk_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    tenants     TEXT NOT NULL,
    admin       INTEGER NOT NULL,
    rate_per_s  REAL,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
)
"""


@dataclass(frozen=True)
class ApiKey:
    """What a key may do (never the token itself)."""

    key_id: str
    tenants: frozenset[str]
    admin: bool
    rate_per_s: float | None = None
    label: str = ""
    created_at: str = ""
    revoked_at: str | None = None

    def may_access(self, customer_id: str) -> bool:
        """True when the key may write or read data of ``customer_id``."""
        return self.admin or customer_id in self.tenants


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def store_path(settings: Settings) -> Path:
    """Where the key store of ``settings`` lives."""
    return settings.state_dir / "api" / "keys.sqlite3"


class KeyStore:
    """The SQLite table of API keys."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10.0)

    def create(self, tenants: Iterable[str], *, admin: bool = False, rate_per_s: float | None = None,
               label: str = "") -> tuple[ApiKey, str]:
        """Create a key; returns it and its token (the only time the token exists)."""
        tenant_set = frozenset(t.strip() for t in tenants if t.strip())
        if not tenant_set and not admin:
            raise ConfigError("a key needs at least one --tenant (or --admin)")
        if rate_per_s is not None and rate_per_s <= 0:
            raise ConfigError("--rate must be positive")
        key_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO api_keys (key_id, token_hash, tenants, admin, rate_per_s, label, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, token_hash(token), ",".join(sorted(tenant_set)), int(admin), rate_per_s, label, created),
            )
        return ApiKey(key_id, tenant_set, admin, rate_per_s, label, created), token

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT key_id, tenants, admin, rate_per_s, label, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, key_id"
            ).fetchall()
        return [_row_to_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has that id."""
        revoked = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (revoked, key_id)
            )
        return cursor.rowcount == 1

    def lookup(self, token: str) -> ApiKey | None:
        """The active key of ``token``, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT key_id, tenants, admin, rate_per_s, label, created_at, revoked_at FROM api_keys "
                "WHERE token_hash = ? AND revoked_at IS NULL",
                (token_hash(token),),
            ).fetchone()
        return _row_to_key(row) if row else None


def _row_to_key(row: tuple) -> ApiKey:
    key_id, tenants, admin, rate, label, created, revoked = row
    return ApiKey(key_id, frozenset(t for t in tenants.split(",") if t), bool(admin), rate, label, created, revoked)


class KeyCache:
    """Token -> key lookups through a small TTL cache, so a request rarely touches SQLite.

    A revoked key stops working within ``ttl`` seconds. Unknown tokens are cached too (bounded),
    so guessing does not turn into a database load.
    """

    def __init__(self, store: KeyStore, ttl: float = 5.0, size: int = 10_000):
        self.store = store
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> ApiKey | None:
        """The active key of ``token`` (None when unknown or revoked)."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(token)
            if hit and hit[0] > now:
                return hit[1]
        key = self.store.lookup(token)
        with self._lock:
            self._entries[token] = (now + self.ttl, key)
            self._entries.move_to_end(token)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return key
