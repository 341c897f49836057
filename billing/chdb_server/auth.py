"""Users of the local endpoint: the admin user and a read-only user for dashboards."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from billing.chdb_server.errors import AUTHENTICATION_FAILED, QueryError


@dataclass(frozen=True)
class User:
    name: str
    password: str
    readonly: bool


def credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> tuple[str, str]:
    """(user, password) from basic auth, X-ClickHouse-User/Key headers or user/password params.

    Without any credentials ClickHouse uses the ``default`` user with an empty password.
    """
    auth = headers.get("Authorization") or ""
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            return user, password
        except (binascii.Error, UnicodeDecodeError):
            raise QueryError.make(AUTHENTICATION_FAILED, "Malformed Authorization header") from None
    user = headers.get("X-ClickHouse-User") or params.get("user") or "default"
    password = headers.get("X-ClickHouse-Key") or params.get("password") or ""
    return user, password


class Users:
    """The configured users; :meth:`authenticate` returns one or raises error 516."""

    def __init__(self, users: list[User]):
        self._users = {u.name: u for u in users if u.name}

    def authenticate(self, name: str, password: str) -> User:
        user = self._users.get(name)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            raise QueryError.make(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        return user
