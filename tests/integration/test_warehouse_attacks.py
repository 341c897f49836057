"""Attacks and bad input against the running local ClickHouse endpoint.

Each request is refused with the code a ClickHouse server would answer, nothing it tried to do
happened (no file read or written, no table created, no query killed), and the endpoint answers
normally right after it.
"""

from __future__ import annotations

import gzip
import socket
import time
import uuid
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import pytest

from billing.chdb_server.server import MAX_CONNECTIONS
from billing.settings import Settings

DB = "wh_attacks"


class Endpoint(NamedTuple):
    address: tuple[str, int]
    admin_headers: str
    """Request header lines that authenticate as the admin user."""


@pytest.fixture(scope="module")
def endpoint(warehouse, settings: Settings) -> Endpoint:
    url = urlsplit(settings.clickhouse_url)
    auth = f"X-ClickHouse-User: {settings.clickhouse_user}\r\nX-ClickHouse-Key: {settings.clickhouse_password}\r\n"
    return Endpoint((url.hostname, url.port), auth)


@pytest.fixture(scope="module")
def admin(endpoint, settings: Settings):
    def run(sql: str) -> bytes:
        status, _, body = _request(endpoint, "POST", {}, sql.encode())
        assert status == 200, body
        return body
    run(f"DROP DATABASE IF EXISTS {DB}")
    run(f"CREATE DATABASE {DB}")
    run(f"CREATE TABLE {DB}.facts (x UInt32) ENGINE = MergeTree ORDER BY x")
    run(f"INSERT INTO {DB}.facts VALUES (1), (2)")
    yield run
    run(f"DROP DATABASE IF EXISTS {DB}")


@pytest.fixture(scope="module")
def reader(settings: Settings) -> dict[str, str]:
    """Credentials of the built-in read-only user, as URL parameters."""
    return {"user": settings.clickhouse_readonly_user, "password": settings.clickhouse_readonly_password}


def _raw(endpoint: Endpoint, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server answers until it closes."""
    with socket.create_connection(endpoint.address, timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _request(endpoint: Endpoint, method: str, params: dict[str, str], body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection, as the admin user unless ``params`` name a user."""
    head = f"{method} /?{urlencode(params)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if "user" not in params:
        head += endpoint.admin_headers
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if method == "POST" and "Transfer-Encoding" not in (headers or {}):
        head += f"Content-Length: {len(body)}\r\n"
    return _parse(_raw(endpoint, head.encode() + b"\r\n" + body))


def _parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    if headers.get("Transfer-Encoding") == "chunked":
        body = _dechunk(body)
    return int(lines[0].split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        out, data = out + data[:size], data[size + 2:]
        if not size:
            break
    return out


def _healthy(endpoint: Endpoint) -> None:
    assert _request(endpoint, "GET", {"query": "SELECT 1"})[2] == b"1\n"


def _refused(answer: tuple[int, dict[str, str], bytes], code: int, status: int) -> None:
    got_status, headers, body = answer
    assert (got_status, headers.get("X-ClickHouse-Exception-Code")) == (status, str(code)), body
    assert body.startswith(f"Code: {code}. DB::Exception: ".encode()), body


READONLY, ACCESS_DENIED = 164, 497


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", ACCESS_DENIED),
    ("SELECT file('/etc/passwd')", ACCESS_DENIED),
    ("SELECT * FROM `file`('/etc/hostname', 'LineAsString')", ACCESS_DENIED),
    ("DESCRIBE TABLE file('/etc/passwd', 'CSV')", ACCESS_DENIED),
    ("SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", ACCESS_DENIED),
    ("SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')", ACCESS_DENIED),
    ("SELECT * FROM remote('127.0.0.1', system.one)", ACCESS_DENIED),
    ("SELECT * FROM clusterAllReplicas('default', system.one)", ACCESS_DENIED),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", ACCESS_DENIED),
    ("SELECT * FROM filesystem('/')", ACCESS_DENIED),
    ("SELECT * FROM merge('system', '^processes$')", ACCESS_DENIED),
    ("SELECT * FROM mysql('127.0.0.1:1', 'db', 't', 'u', 'p')", ACCESS_DENIED),
    ("SELECT query FROM system.processes", ACCESS_DENIED),
    ("SELECT query FROM system.query_log", ACCESS_DENIED),
    ("SHOW PROCESSLIST", ACCESS_DENIED),
    ("KILL QUERY WHERE 1", READONLY),
    ("SYSTEM DROP DNS CACHE", READONLY),
    ("SYSTEM FLUSH LOGS", READONLY),
    ("SET max_memory_usage = 1", READONLY),
    ("SET allow_introspection_functions = 1", READONLY),
    ("SET readonly = 0", READONLY),
    ("SELECT 1 SETTINGS max_threads = 64", READONLY),
    ("SELECT 1 FORMAT Template SETTINGS format_template_row = '/etc/passwd'", READONLY),
    ("SELECT 1 SETTINGS output_format_schema = '/tmp/written.proto'", READONLY),
    (f"CREATE TABLE {DB}.evil (a Int8) ENGINE = Memory", READONLY),
    (f"ALTER TABLE {DB}.facts DELETE WHERE 1", READONLY),
])
def test_readonly_user_is_refused(endpoint, admin, reader, sql: str, code: int) -> None:
    answer = _request(endpoint, "POST", reader, sql.encode())
    _refused(answer, code, 403 if code == ACCESS_DENIED else 500)
    assert admin(f"SELECT count() FROM {DB}.facts") == b"2\n"
    assert admin(f"EXISTS TABLE {DB}.evil") == b"0\n"
    _healthy(endpoint)


def test_readonly_user_cannot_write_files(endpoint, admin, reader, tmp_path: Path) -> None:
    target = tmp_path / "written"
    attempts = [
        (f"SELECT 'x' INTO OUTFILE '{target}' APPEND", 358, 500),
        (f"INSERT INTO FUNCTION file('{target}', 'TSV') SELECT 1", READONLY, 500),
        (f"INSERT INTO {DB}.facts VALUES (3)", READONLY, 500),
    ]
    for sql, code, status in attempts:
        _refused(_request(endpoint, "POST", reader, sql.encode()), code, status)
    _refused(_request(endpoint, "POST", {**reader, "query": f"INSERT INTO {DB}.facts FORMAT TSV"}, b"4\n"),
             READONLY, 500)
    assert not target.exists()
    assert admin(f"SELECT count() FROM {DB}.facts") == b"2\n"
    _healthy(endpoint)


def test_no_user_writes_files_or_runs_two_statements(endpoint, admin, tmp_path: Path) -> None:
    target = tmp_path / "out"
    _refused(_request(endpoint, "POST", {}, f"SELECT 1 INTO OUTFILE '{target}'".encode()), 358, 500)
    _refused(_request(endpoint, "POST", {}, f"SELECT 1; DROP TABLE {DB}.facts".encode()), 62, 400)
    assert not target.exists()
    assert admin(f"SELECT count() FROM {DB}.facts") == b"2\n"


def test_settings_sent_as_parameters_are_checked(endpoint, reader) -> None:
    for name, value in (("max_memory_usage", "1"), ("readonly", "0"), ("max_threads", "64")):
        answer = _request(endpoint, "GET", {**reader, "query": "SELECT 1", name: value})
        _refused(answer, READONLY, 500)
    answer = _request(endpoint, "GET", {**reader, "query": "SELECT 1", "max_result_rows": "10",
                                        "output_format_json_quote_64bit_integers": "0"})
    assert answer[:1] == (200,) and answer[2] == b"1\n"


def test_readonly_user_still_reads(endpoint, admin, reader) -> None:
    queries = {
        f"SELECT sum(x) FROM {DB}.facts": b"3\n",
        f"SELECT name FROM system.tables WHERE database = '{DB}'": b"facts\n",
        f"SHOW TABLES FROM {DB}": b"facts\n",
        f"EXISTS TABLE {DB}.facts": b"1\n",
        "SELECT sum(number) FROM numbers(10) SETTINGS max_result_rows = 5": b"45\n",
    }
    for sql, expected in queries.items():
        assert _request(endpoint, "POST", reader, sql.encode())[2] == expected, sql
    assert _request(endpoint, "POST", {**reader, "database": DB}, b"DESCRIBE TABLE facts")[2].startswith(b"x\tUInt32")


def test_ssrf_through_url_cannot_make_the_admin_run_ddl(endpoint, admin, reader, settings: Settings) -> None:
    ddl = urlencode({"query": f"CREATE TABLE {DB}.ssrf (a Int8) ENGINE = Memory"})
    sql = f"SELECT * FROM url('{settings.clickhouse_url}/?{ddl}', 'LineAsString')"
    _refused(_request(endpoint, "POST", reader, sql.encode()), ACCESS_DENIED, 403)
    assert admin(f"EXISTS TABLE {DB}.ssrf") == b"0\n"


def test_killing_other_queries_is_refused_and_they_survive(endpoint, reader) -> None:
    query_id = f"victim-{uuid.uuid4()}"
    with socket.create_connection(endpoint.address, timeout=30) as victim:
        params = urlencode({"query": "SELECT sleepEachRow(0.5) FROM numbers(4) FORMAT TSV", "query_id": query_id})
        victim.sendall(f"GET /?{params} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{endpoint.admin_headers}\r\n"
                       .encode())
        sql = f"KILL QUERY WHERE query_id = '{query_id}'"
        _refused(_request(endpoint, "POST", reader, sql.encode()), READONLY, 500)
        received = b""
        while chunk := victim.recv(65536):
            received += chunk
    assert _parse(received)[0] == 200 and b"__exception__" not in received


def test_a_gzip_bomb_is_refused_without_inflating_the_server(endpoint, warehouse) -> None:
    body = gzip.compress(b"SELECT 1 " + b" " * (200 << 20), compresslevel=9)
    assert len(body) < 300_000
    process = warehouse.managed().process()
    before = process.memory_info().rss
    answer = _request(endpoint, "POST", {}, body, {"Content-Encoding": "gzip"})
    grown = process.memory_info().rss - before
    _refused(answer, 62, 400)
    assert b"Max query size exceeded" in answer[2]
    assert grown < 64 << 20, f"the server grew by {grown >> 20} MiB"
    _healthy(endpoint)


@pytest.mark.parametrize("query_id", ["a\r\nSet-Cookie: stolen=1", "a\nX-Injected: 1", "x" * 256, "caf\u00e9", ""])
def test_a_query_id_that_could_break_headers_is_refused(endpoint, query_id: str) -> None:
    status, headers, body = _request(endpoint, "GET", {"query": "SELECT 1", "query_id": query_id})
    if not query_id:  # an empty query_id means "none": the server makes one
        assert status == 200 and headers["X-ClickHouse-Query-Id"]
        return
    _refused((status, headers, body), 36, 400)
    assert "Set-Cookie" not in headers and "X-Injected" not in headers
    assert headers["X-ClickHouse-Query-Id"] != query_id
    _healthy(endpoint)


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "1e308", "3601", "-1", "soon"])
def test_session_timeout_is_bounded(endpoint, timeout: str) -> None:
    params = {"query": "SELECT 1", "session_id": f"s-{uuid.uuid4()}", "session_timeout": timeout}
    _refused(_request(endpoint, "GET", params), 374, 500)
    assert _request(endpoint, "GET", {**params, "session_timeout": "3600"})[2] == b"1\n"


def test_content_length_with_transfer_encoding_is_refused_and_nothing_is_smuggled(endpoint, admin) -> None:
    smuggled = f"CREATE TABLE {DB}.smuggled (a Int8) ENGINE = Memory".encode()
    inner = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
    chunked = b"0\r\n\r\n" + inner
    request = (b"POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%s" % (len(chunked), chunked))
    answer = _raw(endpoint, request)
    _refused(_parse(answer), 36, 400)
    assert answer.count(b"HTTP/1.1 ") == 1
    assert admin(f"EXISTS TABLE {DB}.smuggled") == b"0\n"
    _healthy(endpoint)


@pytest.mark.parametrize(("headers", "code", "status"), [
    ({"Transfer-Encoding": "gzip, chunked"}, 48, 501),
    ({"Transfer-Encoding": "identity"}, 48, 501),
    ({"Content-Length": "-5"}, 36, 400),
    ({"Content-Length": "+8"}, 36, 400),
])
def test_bad_body_framing_is_refused(endpoint, headers: dict[str, str], code: int, status: int) -> None:
    head = "POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    _refused(_parse(_raw(endpoint, head.encode() + b"\r\n")), code, status)
    _healthy(endpoint)


def test_two_different_content_lengths_are_refused(endpoint) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nContent-Length: 30\r\n\r\nSELECT 1"
    _refused(_parse(_raw(endpoint, request)), 36, 400)
    _healthy(endpoint)


@pytest.mark.parametrize("sql", [b"\0SELECT 1", b"SELECT 1\0; DROP TABLE x", b"", b"  -- nothing\n"])
def test_nul_bytes_and_empty_queries_are_syntax_errors(endpoint, sql: bytes) -> None:
    _refused(_request(endpoint, "POST", {}, sql), 62, 400)
    _healthy(endpoint)


def test_a_nul_inside_a_string_is_data(endpoint) -> None:
    assert _request(endpoint, "POST", {}, b"SELECT length('a\0b')")[2] == b"3\n"


@pytest.mark.parametrize(("body", "headers", "code", "status"), [
    (b"SELECT 1", {"Content-Encoding": "br"}, 36, 400),
    (b"\x04\x22\x4d\x18" + b"\xff" * 32, {"Content-Encoding": "lz4"}, 271, 500),
    (b"SELECT \xff\xfe", {}, 62, 400),  # bytes outside a string literal: the engine's syntax error
    (b"SELECT 1 " + b"-" * 300_000, {}, 62, 400),
])
def test_undecodable_or_oversized_bodies(endpoint, body: bytes, headers: dict[str, str], code: int,
                                         status: int) -> None:
    _refused(_request(endpoint, "POST", {}, body, headers), code, status)
    _healthy(endpoint)


def test_a_malformed_chunk_is_refused(endpoint) -> None:
    request = (b"POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s\r\n"
               b"zz\r\nabc\r\n0\r\n\r\n" % endpoint.admin_headers.encode())
    _refused(_parse(_raw(endpoint, request)), 36, 400)
    _healthy(endpoint)


def test_connections_over_the_limit_are_answered_503(endpoint) -> None:
    idle = [socket.create_connection(endpoint.address, timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        status, headers, body = _parse(_raw(endpoint, b"GET /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (503, "202"), body
    finally:
        for sock in idle:
            sock.close()
    for _ in range(50):  # the server notices the closed connections within its poll interval
        try:
            _healthy(endpoint)
            return
        except AssertionError:
            time.sleep(0.1)
    _healthy(endpoint)


def test_the_admin_user_needs_its_password(endpoint, admin) -> None:
    """A web page can POST to 127.0.0.1 from the user's browser: without the password nothing runs."""
    ddl = f"CREATE TABLE {DB}.csrf (a Int8) ENGINE = Memory".encode()
    for auth in ("", "X-ClickHouse-User: default\r\n", "X-ClickHouse-User: default\r\nX-ClickHouse-Key: wrong\r\n"):
        request = f"POST / HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(ddl)}\r\n\r\n".encode() + ddl
        _refused(_parse(_raw(endpoint, request)), 516, 403)
    assert admin(f"EXISTS TABLE {DB}.csrf") == b"0\n"


def test_a_session_in_system_cannot_reach_the_process_list_by_parameter(endpoint, reader) -> None:
    session = {**reader, "session_id": f"ro-{uuid.uuid4()}"}
    assert _request(endpoint, "POST", session, b"USE system")[0] == 200
    for sql, params in ((b"SELECT count() FROM processes", {}),
                        (b"SELECT count() FROM {t:Identifier}", {"param_t": "processes"})):
        _refused(_request(endpoint, "POST", {**session, **params}, sql), ACCESS_DENIED, 403)
    assert _request(endpoint, "POST", session, b"SELECT count() > 0 FROM one")[2] == b"1\n"
