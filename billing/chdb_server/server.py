"""The ClickHouse HTTP interface over the in-process chdb engine.

``python -m billing.chdb_server.server --data-dir DIR --host H --port P`` owns the data directory
and answers like a ClickHouse server: ``GET /ping``, ``GET /?query=``, ``POST /`` with SQL (or
INSERT data) in the body, sessions, query parameters, settings as URL parameters or form fields
(:mod:`billing.chdb_server.form`), external data (:mod:`billing.chdb_server.external`), compressed
request and response bodies, ClickHouse error codes and headers (``X-ClickHouse-Database``/``-Format``
in, ``X-ClickHouse-Timezone`` of the request's ``session_timezone`` out), basic and X-ClickHouse
auth. Query text is passed to the engine byte for byte, UTF-8 or not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from billing.chdb_server.auth import User, Users, credentials
from billing.chdb_server.body import CHUNK, BadRequestBody, Rechunker, iter_body
from billing.chdb_server.codec import UnsupportedEncoding, choose_encoding, decode_stream, encoder
from billing.chdb_server.engine import Engine
from billing.chdb_server.errors import (
    BAD_ARGUMENTS,
    CANNOT_DECOMPRESS,
    INVALID_SESSION_TIMEOUT,
    NOT_IMPLEMENTED,
    READONLY,
    SYNTAX_ERROR,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    QueryError,
)
from billing.chdb_server.external import definition_params, external_tables, loaded
from billing.chdb_server.form import read_form
from billing.chdb_server.guard import ReadonlyPolicy, check_statement, inspect
from billing.core.errors import BillingError
from billing.warehouse.sql import Statement, analyze, insert_from_file

DISPLAY_NAME = "billing-chdb"
MAX_QUERY_ID = 255
_QUERY_ID = re.compile(rf"[\x20-\x7e]{{1,{MAX_QUERY_ID}}}")
DEFAULT_SESSION_TIMEOUT_S = 60.0
MAX_SESSION_TIMEOUT_S = 3600.0
SOCKET_TIMEOUT_S = 30
"""Longest wait for a client to send or take bytes, also between requests on a kept-alive connection
(ClickHouse's http_receive_timeout, http_send_timeout and keep_alive_timeout)."""
MAX_CONNECTIONS = 256
SHUTDOWN_GRACE_S = 15.0
SESSION_REAP_INTERVAL_S = 5.0

# URL parameters that steer the HTTP layer (or only the client) and are not engine settings.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "session_id", "session_timeout", "session_check", "query_id",
    "user", "password", "quota_key", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "enable_http_compression",
    "http_zlib_compression_level", "client_protocol_version", "cancel_http_readonly_queries_on_client_close",
    "http_native_compression_disable_checksumming_on_decompress", "role", "stacktrace",
})

# Formats whose output for a whole result equals the concatenation of the outputs of its blocks.
STREAMABLE = frozenset({
    "native", "tabseparated", "tsv", "tabseparatedraw", "tsvraw", "csv", "jsoneachrow", "jsonlines", "ndjson",
    "jsoncompacteachrow", "jsonstringseachrow", "rowbinary", "values", "tskv", "lineasstring",
})

# Statements the engine can stream (it answers SHOW, DESCRIBE, EXPLAIN, ... in one piece).
STREAMED_STATEMENTS = frozenset({"SELECT", "WITH"})

_CONTENT_TYPES = {
    "native": "application/octet-stream", "rowbinary": "application/octet-stream",
    "rowbinarywithnamesandtypes": "application/octet-stream", "arrow": "application/octet-stream",
    "arrowstream": "application/octet-stream", "parquet": "application/octet-stream",
    "csv": "text/csv; charset=UTF-8", "csvwithnames": "text/csv; charset=UTF-8",
}


def content_type(fmt: str) -> str:
    """Content-Type of a response in output format ``fmt``."""
    name = fmt.lower()
    if name in _CONTENT_TYPES:
        return _CONTENT_TYPES[name]
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    return "text/plain; charset=UTF-8"


def summary(read_rows: int = 0, read_bytes: int = 0, written_rows: int = 0, written_bytes: int = 0,
            result_rows: int = 0, result_bytes: int = 0, elapsed_s: float = 0.0) -> str:
    """The X-ClickHouse-Summary header value (numbers as strings, like the server)."""
    return json.dumps({
        "read_rows": str(read_rows), "read_bytes": str(read_bytes), "written_rows": str(written_rows),
        "written_bytes": str(written_bytes), "total_rows_to_read": str(read_rows), "result_rows": str(result_rows),
        "result_bytes": str(result_bytes), "elapsed_ns": str(int(elapsed_s * 1e9)),
    }, separators=(",", ":"))


class App:
    """State shared by request handlers: the engine, users, and in-flight request tracking."""

    def __init__(self, engine: Engine, users: Users):
        self.engine = engine
        self.users = users
        self.readonly_policy = ReadonlyPolicy(engine.table_functions, engine.setting_values)
        self._inflight = 0
        self._idle = threading.Condition()

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._idle:
            self._inflight += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for in-flight requests to finish; False if some are still running at the deadline."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)


class Request:
    """One query request: parameters, user, SQL head and the rest of the body."""

    def __init__(self, handler: Handler, params: dict[str, str], body: Iterator[bytes], method: str):
        self.handler = handler
        self.method = method
        self.started = time.perf_counter()
        self.body = Rechunker(body)
        self.body.eof = method == "GET"
        self.timezone: str | None = None
        self.query_timezone: str | None = None
        """The statement's own ``SETTINGS session_timezone = '...'`` (a string literal), if any."""
        self.files: dict[str, bytes] = {}
        self._use(params, str(uuid.uuid4()))

    def _use(self, params: dict[str, str], query_id: str) -> None:
        self.params = params
        wanted = params.get("query_id") or query_id
        self.bad_query_id = not _QUERY_ID.fullmatch(wanted)
        self.query_id = query_id if self.bad_query_id else wanted  # never echo a header-breaking value
        transport = TRANSPORT_PARAMS | definition_params(self.files)
        self.settings = {k: v for k, v in params.items() if k not in transport and not k.startswith("param_")}
        self.bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}

    def read_form(self, content_type: str | None) -> None:
        """Take parameters from a form body (a form field wins over the URL parameter of the same name)."""
        fields = read_form(content_type, self.params, self.body)
        if fields is not None:
            self.files = fields.files
            self._use({**self.params, **fields}, self.query_id)

    def read_statement(self, max_query_size: int) -> tuple[Statement, str, bytes]:
        """Analyse the SQL at the start of the request: (statement, sql to run, inline data head).

        The SQL (without INSERT data) may be ``max_query_size`` bytes long; reading stops there.
        Bytes that are not UTF-8 (binary string literals) reach the engine intact (see :func:`_text`).
        """
        head = bytearray(self.params.get("query", "").encode(errors="surrogateescape"))
        if head and self.method == "POST":
            head += b"\n"
        self.body.read_until(head, len(head) + CHUNK)
        statement = analyze(head.decode("latin-1"), final=self.body.eof)
        while statement.needs_more:
            _check_query_size(head, max_query_size)
            self.body.read_until(head, len(head) + CHUNK)
            statement = analyze(head.decode("latin-1"), final=self.body.eof)
        if statement.is_data_insert:
            return statement, _text(statement.sql.encode("latin-1")), bytes(head[statement.data_start:])
        self.body.read_until(head, max_query_size + 1)
        _check_query_size(head, max_query_size)
        return statement, _text(head), b""

    @property
    def database(self) -> str | None:
        """The default database: the ``X-ClickHouse-Database`` header, else the ``database`` parameter."""
        return self.handler.headers.get("X-ClickHouse-Database") or self.params.get("database")

    @property
    def default_format(self) -> str:
        """The output format of a query without FORMAT: the ``X-ClickHouse-Format`` header, else ``default_format``."""
        return self.handler.headers.get("X-ClickHouse-Format") or self.params.get("default_format") or "TabSeparated"

    def base_headers(self) -> list[tuple[str, str]]:
        engine = self.handler.server.app.engine
        return [
            ("X-ClickHouse-Query-Id", self.query_id),
            ("X-ClickHouse-Server-Display-Name", DISPLAY_NAME),
            ("X-ClickHouse-Timezone", self.timezone or engine.timezone),
        ]


class Handler(BaseHTTPRequestHandler):
    """Answers ClickHouse HTTP requests; one thread per client connection."""

    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: Server
    _held: list[bytes] | None = None

    def version_string(self) -> str:
        return "ClickHouse (chdb)"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature of the base class)
        """Silence per-request access logs; errors are logged by :meth:`_log_error`."""

    def _log_error(self, error: QueryError) -> None:
        print(f"{time.strftime('%H:%M:%S')} {self.command} {error.code}: {error.text[:300]}", file=sys.stderr, flush=True)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True, errors="surrogateescape"))
        if url.path == "/ping" or (url.path == "/" and "query" not in params):
            self._send_bytes(200, [], b"Ok.\n", "text/html; charset=UTF-8")
        elif url.path == "/":
            self._query(params, iter(()), "GET")
        else:
            self._send_bytes(404, [], b"There is no handle " + url.path.encode() + b"\n", "text/plain; charset=UTF-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True, errors="surrogateescape"))
        framing = framing_error(self.headers.get_all("Content-Length") or [],
                                self.headers.get_all("Transfer-Encoding") or [])
        if framing is not None:
            self.close_connection = True
            self._send_error(framing, [])
            return
        raw = iter_body(self.rfile, self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"))
        try:
            body = decode_stream(raw, self.headers.get("Content-Encoding"))
        except UnsupportedEncoding as exc:
            self.close_connection = True
            self._send_error(QueryError.make(BAD_ARGUMENTS, str(exc)), [])
            return
        self._query(params, body, "POST")

    def _query(self, params: dict[str, str], body: Iterator[bytes], method: str) -> None:
        app = self.server.app
        with app.request():
            request = Request(self, params, body, method)
            try:
                if method == "POST":
                    request.read_form(self.headers.get("Content-Type"))
                if request.bad_query_id:
                    raise QueryError.make(BAD_ARGUMENTS, "Invalid query_id: it must be 1 to "
                                          f"{MAX_QUERY_ID} printable ASCII characters")
                user = app.users.authenticate(*credentials(self.headers, request.params))
                check_protocol_version(request.params.get("client_protocol_version"))
                app.engine.check_settings(request.settings)
                if user.readonly:
                    app.readonly_policy.check_settings(request.settings)
                statement, sql, data_head = request.read_statement(app.engine.max_query_size(request.settings))
                if statement.is_data_insert and user.readonly:
                    raise QueryError.make(READONLY, "Cannot execute query in readonly mode")
                if not statement.is_data_insert:
                    facts = inspect(sql)
                    check_statement(facts)
                    if facts.keyword != "SET":
                        request.query_timezone = facts.string_settings.get("session_timezone")
                    if user.readonly:
                        app.readonly_policy.check(facts, request.bind)
                self._execute(request, user, statement, sql, data_head)
            except QueryError as error:
                self.close_connection = self.close_connection or not request.body.eof
                self._send_error(error, request.base_headers())
            except ConnectionError:
                self.close_connection = True  # the client went away; its query is cancelled
            except (BadRequestBody, ValueError, EOFError) as exc:
                self.close_connection = True
                code = CANNOT_DECOMPRESS if not isinstance(exc, BadRequestBody) else BAD_ARGUMENTS
                self._send_error(QueryError.make(code, f"Cannot read the request body: {exc}"), request.base_headers())

    def _execute(self, request: Request, user: User, statement: Statement, sql: str, data_head: bytes) -> None:
        engine = self.server.app.engine
        params = request.params
        timeout = session_timeout(params.get("session_timeout"))
        with (self._last_bytes_after_release(),
              engine.connection(user, params.get("session_id"), timeout, check=params.get("session_check") == "1") as session):
            session.prepare(request.database, request.settings)
            request.timezone = session.timezone
            if request.query_timezone is not None:
                request.timezone = session.timezone_with(request.query_timezone)
            if statement.keyword in ("USE", "SET"):
                session.forget()
            conn = session.conn
            with loaded(conn, external_tables(request.files, params), engine.spool):
                if request.method == "GET" and statement.keyword and _mutates(conn, _engine_sql(sql)):
                    raise QueryError.make(
                        READONLY, "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
                        "readonly. You should use method POST for modifying queries",
                    )
                if statement.is_data_insert:
                    self._insert(request, conn, statement, sql, data_head)
                elif statement.returns_rows:
                    fmt = statement.output_format or request.default_format
                    stream = statement.keyword in STREAMED_STATEMENTS and params.get("wait_end_of_query") != "1"
                    self._select(request, conn, sql, fmt, stream=stream)
                else:
                    result = _run(conn.query, _engine_sql(sql), "TabSeparated", params=request.bind)
                    if statement.keyword in ("USE", "SET"):
                        session.read_state()
                        request.timezone = session.timezone
                    headers = request.base_headers() + [("X-ClickHouse-Summary", summary(
                        written_rows=result.rows_written(), written_bytes=result.bytes_written(),
                        elapsed_s=time.perf_counter() - request.started))]
                    self._send_bytes(200, headers, result.bytes(), "text/plain; charset=UTF-8", request.params)

    @contextmanager
    def _last_bytes_after_release(self) -> Iterator[None]:
        """Hold back the last bytes of the response until the session is released.

        A client reads the end of the answer and sends its next query in the session at once, often on
        another pooled connection (dbt-clickhouse does): the session must be free by then, as a
        ClickHouse server frees it before it finishes the response."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            for data in held:
                self.wfile.write(data)

    def _write_last(self, data: bytes) -> None:
        """Write the end of a response, or hold it (:meth:`_last_bytes_after_release`)."""
        if self._held is None:
            self.wfile.write(data)
        else:
            self._held.append(data)

    def _insert(self, request: Request, conn, statement: Statement, sql: str, data_head: bytes) -> None:
        """Spool the data to a file and let the engine read it with ``FROM INFILE``.

        chdb's streaming insert (``send_insert``) reports rows as written even when the table
        refuses them (a CHECK constraint, too many partitions) and stores nothing; a query
        reports the engine's error like a server does.
        """
        with self.server.app.engine.spool() as (path, fh):
            for chunk in itertools.chain([data_head], request.body.rest()):
                fh.write(chunk)
            fh.close()
            try:
                result = _run(conn.query, _engine_sql(insert_from_file(sql, path, statement.input_format)), "TabSeparated",
                              params=request.bind)
            except QueryError as error:
                raise QueryError(error.code, error.text.replace(path, "request body")) from None
        headers = request.base_headers() + [("X-ClickHouse-Summary", summary(
            written_rows=result.rows_written(), written_bytes=result.bytes_written(),
            elapsed_s=time.perf_counter() - request.started))]
        self._send_bytes(200, headers, b"", "text/plain; charset=UTF-8")

    def _select(self, request: Request, conn, sql: str, fmt: str, stream: bool) -> None:
        headers = request.base_headers() + [("X-ClickHouse-Format", fmt)]
        if not stream or fmt.lower() not in STREAMABLE:
            result = _run(conn.query, _engine_sql(sql), fmt, params=request.bind)
            headers.append(("X-ClickHouse-Summary", summary(
                read_rows=result.rows_read(), read_bytes=result.bytes_read(), result_rows=result.rows_read(),
                result_bytes=len(result.bytes()), elapsed_s=time.perf_counter() - request.started)))
            self._send_bytes(200, headers, result.bytes(), content_type(fmt), request.params)
            return
        stream = _run(conn.send_query, _engine_sql(sql), fmt, params=request.bind)
        try:
            first = _run(conn.streaming_fetch_result, stream)
            rows = first.rows_read() if first is not None else 0
            headers.append(("X-ClickHouse-Summary", summary(
                read_rows=rows, read_bytes=first.bytes_read() if first else 0, result_rows=rows,
                elapsed_s=time.perf_counter() - request.started)))
            self._send_stream(headers, content_type(fmt), _blocks(conn, stream, first), request.params)
        finally:
            try:
                conn.streaming_cancel_query(stream)
            except RuntimeError:
                pass

    def _encoding(self, params: dict[str, str] | None) -> str | None:
        """The response encoding: what Accept-Encoding asks, unless enable_http_compression=0 (default 1)."""
        if params is not None and params.get("enable_http_compression", "1") not in ("0", "false"):
            return choose_encoding(self.headers.get("Accept-Encoding"))
        return None

    def _send_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes, ctype: str,
                    params: dict[str, str] | None = None) -> None:
        encoding = self._encoding(params) if body else None
        if encoding:
            enc = encoder(encoding)
            body = enc.compress(body) + enc.flush()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._write_last(body)

    def _send_stream(self, headers: list[tuple[str, str]], ctype: str, blocks: Iterable[bytes],
                     params: dict[str, str]) -> None:
        encoding = self._encoding(params)
        enc = encoder(encoding) if encoding else None
        tag = secrets.token_hex(8)
        self.send_response(200)
        self.send_header("X-ClickHouse-Exception-Tag", tag)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for block in blocks:
                self._chunk(enc.compress(block) if enc else block)
        except QueryError as error:
            # The status line is gone: like ClickHouse, append the exception framed by the tag.
            self._log_error(error)
            message = error.text.encode()
            block = b"__exception__\r\n%s\r\n%s\n%d %s\r\n__exception__\r\n" % (
                tag.encode(), message, len(message), tag.encode())
            self._chunk(enc.compress(block) + enc.flush() if enc else block)
            self._write_last(b"0\r\n\r\n")
            self.close_connection = True
            return
        if enc:
            self._chunk(enc.flush())
        self._write_last(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def _send_error(self, error: QueryError, headers: list[tuple[str, str]]) -> None:
        self._log_error(error)
        headers = headers + [("X-ClickHouse-Exception-Code", str(error.code))]
        self._send_bytes(error.http_status, headers, (error.text + "\n").encode(), "text/plain; charset=UTF-8")


def framing_error(content_length: list[str], transfer_encoding: list[str]) -> QueryError | None:
    """Why a request's body framing is unsafe to read (request smuggling), or None."""
    if content_length and transfer_encoding:
        return QueryError.make(BAD_ARGUMENTS, "A request must not have both Content-Length and Transfer-Encoding")
    codings = [c.strip().lower() for c in ",".join(transfer_encoding).split(",")] if transfer_encoding else []
    if codings and codings != ["chunked"]:
        return QueryError.make(NOT_IMPLEMENTED, f"Transfer-Encoding {', '.join(transfer_encoding)!r} is not "
                                                "supported; use chunked")
    lengths = {v.strip() for v in content_length}
    if len(lengths) > 1 or any(not (v.isascii() and v.isdigit()) for v in lengths):
        return QueryError.make(BAD_ARGUMENTS, f"Invalid Content-Length {', '.join(content_length)!r}")
    return None


def check_protocol_version(value: str | None) -> None:
    """Accept a ``client_protocol_version`` a server would parse (an unsigned integer).

    A server then writes Native results as for a TCP client of that revision (with block info);
    the engine writes them as for revision 0 either way, which clients detect (clickhouse-connect
    probes for the block info and reads revision-0 Native when it is absent).
    """
    if value is not None and not (value.isascii() and value.isdigit()):
        raise QueryError.make(BAD_ARGUMENTS, f"Invalid client_protocol_version: '{value}' is not an unsigned integer")


def session_timeout(value: str | None) -> float:
    """Seconds a session may stay idle: a number from 0 to ``max_session_timeout``, as a server checks it."""
    if not value:
        return DEFAULT_SESSION_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise QueryError.make(INVALID_SESSION_TIMEOUT, f"Invalid session timeout: '{value}'")
    if seconds > MAX_SESSION_TIMEOUT_S:
        raise QueryError.make(INVALID_SESSION_TIMEOUT, f"Session timeout '{value}' is larger than "
                                                       f"max_session_timeout: {MAX_SESSION_TIMEOUT_S:g}")
    return seconds


def _text(sql: bytes) -> str:
    """SQL as text for the endpoint's own checks; bytes that are not UTF-8 become lone surrogates."""
    return sql.decode("utf-8", "surrogateescape")


def _engine_sql(sql: str) -> bytes:
    """The bytes the client sent for ``sql`` (the inverse of :func:`_text`), as the engine takes them."""
    return sql.encode("utf-8", "surrogateescape")


def _check_query_size(head: bytearray, limit: int) -> None:
    if len(head) > limit:
        raise QueryError.make(SYNTAX_ERROR, f"Max query size exceeded: the query is longer than max_query_size "
                                            f"({limit} bytes)")


def _run(func, *args, **kwargs):
    """Call into chdb, turning its RuntimeError into a :class:`QueryError` with the ClickHouse code."""
    try:
        return func(*args, **kwargs)
    except RuntimeError as exc:
        raise QueryError.from_engine(exc) from None
    except UnicodeDecodeError as exc:  # the engine's message quotes query bytes that are not UTF-8
        raise QueryError.from_engine(RuntimeError(bytes(exc.object).decode("utf-8", "replace"))) from None


def _mutates(conn, sql: str) -> bool:
    """True when the engine classifies ``sql`` as writing data or schema."""
    return "MUTATING" in str(conn.classify_query(sql)["query_class"])


def _blocks(conn, stream, first) -> Iterator[bytes]:
    """The result blocks of a streaming query, starting with the block already fetched."""
    block = first
    while block is not None and block.rows_read():
        yield block.bytes()
        block = _run(conn.streaming_fetch_result, stream)


class Server(ThreadingHTTPServer):
    """One thread per connection, at most :data:`MAX_CONNECTIONS` at a time (more are answered 503)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App):
        self.app = app
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, Handler)

    def process_request(self, request, client_address) -> None:
        if self._slots.acquire(blocking=False):
            super().process_request(request, client_address)
        else:
            _refuse_connection(request)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _refuse_connection(sock: socket.socket) -> None:
    """Answer 503 on a connection over the limit without reading its request, and close it."""
    error = QueryError.make(TOO_MANY_SIMULTANEOUS_QUERIES, f"Too many simultaneous connections (max {MAX_CONNECTIONS})")
    body = (error.text + "\n").encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nX-ClickHouse-Exception-Code: {error.code}\r\n"
            f"Content-Type: text/plain; charset=UTF-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        sock.settimeout(1.0)
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.1)
        sock.recv(65536)  # read what the client already sent, or closing would reset the connection
    except OSError:
        pass
    finally:
        sock.close()


def _reap_sessions(engine: Engine, stop: threading.Event) -> None:
    while not stop.wait(SESSION_REAP_INTERVAL_S):
        engine.expire_sessions()


def serve(data_dir: Path, host: str, port: int, users: Users) -> None:
    """Run the endpoint until SIGTERM/SIGINT, then finish in-flight requests and close the engine."""
    engine = Engine(data_dir)
    try:
        try:
            server = Server((host, port), App(engine, users))
        except OSError as exc:
            raise BillingError(f"warehouse cannot listen on {host}:{port}: {exc.strerror}") from None
        stop = threading.Event()
        threading.Thread(target=_reap_sessions, args=(engine, stop), daemon=True, name="session-reaper").start()

        def shutdown(signum, _frame):
            print(f"warehouse: signal {signum}, shutting down", flush=True)
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        print(f"warehouse: ClickHouse {engine.version} (chdb) serving {data_dir} on http://{host}:{port}", flush=True)
        server.serve_forever(poll_interval=0.5)
        server.server_close()
        if not server.app.wait_idle(SHUTDOWN_GRACE_S):
            print("warehouse: in-flight requests did not finish in time; closing anyway", flush=True)
    finally:
        engine.close()
    print("warehouse: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    from billing.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description="Serve the chdb engine over the ClickHouse HTTP interface.")
    parser.add_argument("--data-dir", type=Path, default=settings.state_dir / "clickhouse")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args(argv)
    users = Users([
        User(settings.clickhouse_user, settings.clickhouse_password, readonly=False),
        User(settings.clickhouse_readonly_user, settings.clickhouse_readonly_password, readonly=True),
    ])
    try:
        serve(args.data_dir.resolve(), args.host, args.port, users)
    except BillingError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
