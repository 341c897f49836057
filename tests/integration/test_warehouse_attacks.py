"""Attacks and bad input against the running local ClickHouse endpoint.

Each request is refused with the code a ClickHouse server would answer, nothing it tried to do
happened (no file read or written, no table created, no query killed), and the endpoint answers
normally right after it.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from billing.settings import Settings

DB = "wh_attacks"


@pytest.fixture(scope="module")
def endpoint(warehouse, settings: Settings) -> tuple[str, int]:
    url = urlsplit(settings.clickhouse_url)
    return url.hostname, url.port


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


def _raw(endpoint: tuple[str, int], data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server answers until it closes."""
    with socket.create_connection(endpoint, timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _request(endpoint: tuple[str, int], method: str, params: dict[str, str], body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    head = f"{method} /?{urlencode(params)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
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


def _healthy(endpoint: tuple[str, int]) -> None:
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
    with socket.create_connection(endpoint, timeout=30) as victim:
        params = urlencode({"query": "SELECT sleepEachRow(0.5) FROM numbers(4) FORMAT TSV", "query_id": query_id})
        victim.sendall(f"GET /?{params} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        sql = f"KILL QUERY WHERE query_id = '{query_id}'"
        _refused(_request(endpoint, "POST", reader, sql.encode()), READONLY, 500)
        received = b""
        while chunk := victim.recv(65536):
            received += chunk
    assert _parse(received)[0] == 200 and b"__exception__" not in received
