"""The chdb engine behind the endpoint: one data directory, many connections, HTTP sessions.

chdb runs one embedded ClickHouse per process, bound to one data directory. A keeper connection
stays open for the process lifetime (the engine stops when its last connection closes). A
request without ``session_id`` gets a fresh connection (they cost about 0.1 ms), so ``SET`` and
``USE`` never leak between requests; a request with ``session_id`` reuses the session's own
connection, so ``USE``/``SET``/temporary tables persist until the session expires.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from chdb import _chdb

from billing.chdb_server.auth import User
from billing.chdb_server.errors import BAD_ARGUMENTS, SESSION_IS_LOCKED, SESSION_NOT_FOUND, UNKNOWN_SETTING, QueryError
from billing.core.errors import PlatformError

SPOOL_DIR = "http_inserts"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_data_dir(path: Path) -> None:
    """Fail with one clear line when the data directory is unusable or owned by another process."""
    if path.exists() and not path.is_dir():
        raise PlatformError(f"warehouse data directory {path} is not a directory; move the file away.")
    path.mkdir(parents=True, exist_ok=True)
    status = path / "status"
    if not status.exists():
        return
    with status.open("rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = fh.read(200).decode("utf-8", "replace").splitlines()
            pid = next((line.split(":", 1)[1].strip() for line in owner if line.startswith("PID:")), "unknown")
            raise PlatformError(
                f"warehouse data directory {path} is locked by another process (pid {pid}); "
                "stop it (`billing down warehouse`) or use another state dir."
            ) from None
        fcntl.flock(fh, fcntl.LOCK_UN)


def _open_engine(data_dir: Path) -> object:
    """The first connection, which starts the engine; a failure becomes one line with the engine's reason.

    The engine reports start-up problems (a corrupt metadata file, ...) on the process's stderr
    and raises a generic error, so stderr is captured while it starts (and replayed on success).
    """
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            conn = _chdb.connect(str(data_dir))
            failure = None
        except RuntimeError as exc:
            failure = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        output = captured.read().decode("utf-8", "replace")
    if failure is None:
        sys.stderr.write(output)
        return conn
    reasons = re.findall(r"Code: \d+\. DB::Exception: .*?\(\w+\)", output, re.S)
    reason = " ".join((reasons[0] if reasons else str(failure)).split())
    raise PlatformError(f"warehouse cannot open data directory {data_dir}: {reason}")


@dataclass
class Session:
    """A chdb connection with what was last applied to it; an HTTP session keeps one for many requests.

    ``database`` and ``settings`` remember the last ``USE``/``SET`` the endpoint ran, so a client
    that sends the same parameters on every request (clickhouse-connect does) costs no extra queries;
    ``home`` is the session's own database (what its last ``USE`` chose): like on a server, a
    request's ``database`` parameter applies to that request only. ``timezone`` is the session's
    ``session_timezone`` once one was set (None: the server's).
    """

    conn: object
    timeout_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    home: str = "default"
    database: str | None = None
    settings: dict[str, str] | None = None
    timezone: str | None = None

    def prepare(self, database: str | None, settings: Mapping[str, str]) -> None:
        """Apply the request's database and settings (``readonly`` last, since it locks the others)."""
        try:
            target = database or self.home
            if target != (self.database or self.home):
                self.conn.query(f"USE `{target.replace('`', '``')}`", "TabSeparated")
                self.database = target
            if settings and settings != self.settings:
                assignments = ", ".join(f"{k} = {literal(v)}" for k, v in settings.items() if k != "readonly")
                if assignments:
                    self.conn.query(f"SET {assignments}", "TabSeparated")
                if "readonly" in settings:
                    self.conn.query(f"SET readonly = {literal(settings['readonly'])}", "TabSeparated")
                self.settings = dict(settings)
                if "session_timezone" in settings:
                    self.read_timezone()
        except RuntimeError as exc:
            raise QueryError.from_engine(exc) from None

    def timezone_with(self, literal: str) -> str:
        """The time zone of a query with ``SETTINGS session_timezone = <literal>`` (checked by the engine)."""
        try:
            result = self.conn.query(f"SELECT timezone() SETTINGS session_timezone = {literal}", "TabSeparated")
        except RuntimeError as exc:
            raise QueryError.from_engine(exc) from None
        return result.bytes().decode().strip()

    def read_timezone(self) -> None:
        """Remember the connection's time zone (``session_timezone``, else the server's) for the response."""
        self.timezone = self.conn.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()

    def read_state(self) -> None:
        """After the client's own USE or SET: its database becomes the session's own, and its time zone."""
        self.home = self.conn.query("SELECT currentDatabase()", "TabSeparated").bytes().decode().strip()
        self.database = None
        self.read_timezone()

    def forget(self) -> None:
        """The client runs its own USE or SET: re-apply the request settings next time."""
        self.settings = None


class Engine:
    """Owns the chdb data directory and hands out connections to request handlers."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        check_data_dir(data_dir)
        self._keeper = _open_engine(data_dir)
        settings = self._keeper.query("SELECT name, value FROM system.settings", "JSONCompactEachRow").bytes()
        self.setting_values = dict(json.loads(line) for line in settings.decode().splitlines())
        self.setting_names = frozenset(self.setting_values)
        functions = self._keeper.query("SELECT name FROM system.table_functions", "TabSeparated").bytes()
        self.table_functions = frozenset(functions.decode().split())
        self.timezone = self._keeper.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
        self.version = self._keeper.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        self.default_database = self._keeper.query("SELECT currentDatabase()", "TabSeparated").bytes().decode().strip()
        self._sessions: dict[tuple[str, str], Session] = {}
        self._lock = threading.Lock()
        self.spool_dir = data_dir / SPOOL_DIR
        shutil.rmtree(self.spool_dir, ignore_errors=True)  # left by a crash: no request owns them now
        self.spool_dir.mkdir(mode=0o700)

    @contextmanager
    def spool(self) -> Iterator[tuple[str, BinaryIO]]:
        """A private file (path, writer) for the data of one INSERT, deleted when the request ends."""
        fd, path = tempfile.mkstemp(dir=self.spool_dir, prefix="insert-")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield path, fh
        finally:
            os.unlink(path)

    def max_query_size(self, settings: Mapping[str, str]) -> int:
        """The longest query text (bytes) a request with ``settings`` may send."""
        value = settings.get("max_query_size") or self.setting_values["max_query_size"]
        try:
            return int(value)
        except ValueError:
            raise QueryError.make(BAD_ARGUMENTS, f"Invalid max_query_size: '{value}'") from None

    def check_settings(self, settings: Mapping[str, str]) -> None:
        """Reject unknown settings like a server does (custom_* settings are allowed)."""
        for name in settings:
            if name not in self.setting_names and not name.startswith("custom_"):
                raise QueryError.make(UNKNOWN_SETTING, f"Unknown setting '{name}'")

    def _open(self, user: User) -> object:
        conn = _chdb.connect(str(self.data_dir))
        if user.readonly:
            conn.query("SET readonly = 2", "TabSeparated")
        return conn

    @contextmanager
    def connection(self, user: User, session_id: str | None, session_timeout_s: float,
                   check: bool = False) -> Iterator[Session]:
        """A connection for one request: the session's (locked for the request) or a fresh one.

        Like a ClickHouse server, a session another request is running in is refused at once
        (SESSION_IS_LOCKED), never waited for, and with ``check`` (``session_check=1``) an unknown
        session is refused (SESSION_NOT_FOUND) instead of created.
        """
        if not session_id:
            once = Session(self._open(user), home=self.default_database)
            try:
                yield once
            finally:
                once.conn.close()
            return
        key = (user.name, session_id)
        with self._lock:  # the reaper also holds it: a session found here is not closed under us
            session = self._sessions.get(key)
            if session is None and check:
                raise QueryError.make(SESSION_NOT_FOUND, f"Session {session_id} not found")
            if session is None:
                session = self._sessions[key] = Session(self._open(user), session_timeout_s, home=self.default_database)
            if not session.lock.acquire(blocking=False):
                raise QueryError.make(SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client")
        try:
            session.timeout_s = session_timeout_s
            yield session
        finally:
            session.last_used = time.monotonic()
            session.lock.release()

    def expire_sessions(self) -> int:
        """Close sessions idle for longer than their timeout; returns how many were closed."""
        now = time.monotonic()
        closed = 0
        with self._lock:
            for key, session in list(self._sessions.items()):
                if now - session.last_used > session.timeout_s and session.lock.acquire(blocking=False):
                    del self._sessions[key]
                    session.conn.close()
                    session.lock.release()
                    closed += 1
        return closed

    def close(self) -> None:
        """Close every session, then the keeper connection (which stops the engine cleanly)."""
        with self._lock:
            for session in self._sessions.values():
                session.conn.close()
            self._sessions.clear()
        self._keeper.close()

