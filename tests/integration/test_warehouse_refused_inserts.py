"""Every insert path of the local endpoint reports a refused insert as a ClickHouse server does.

The engine refuses rows that break a CHECK constraint (VIOLATED_CONSTRAINT, 469) and a block that
touches more than 100 partitions (TOO_MANY_PARTS, 252). Whatever way the rows arrive, the client
must get the engine's error (status, ``X-ClickHouse-Exception-Code``, ``Code: N. DB::Exception``
body), nothing may be stored, and a successful insert's ``written_rows`` is what was stored.
"""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import urlencode, urlsplit

import lz4.frame
import orjson
import pytest
from backports import zstd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from billing.settings import Settings
from billing.warehouse.client import client as make_client

DB = "wh_refused"
VIOLATED_CONSTRAINT = 469
TOO_MANY_PARTS = 252


@pytest.fixture(scope="module")
def admin(warehouse, settings: Settings) -> Iterator[Client]:
    client = make_client(settings)
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.command(f"CREATE DATABASE {DB}")
    yield client
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.close()


@pytest.fixture
def checked(admin: Client) -> str:
    """An empty table whose CHECK constraint refuses x >= 10."""
    admin.command(f"DROP TABLE IF EXISTS {DB}.checked")
    admin.command(f"CREATE TABLE {DB}.checked (x UInt32, CONSTRAINT small CHECK x < 10) ENGINE = MergeTree ORDER BY x")
    return f"{DB}.checked"


@pytest.fixture
def monthly(admin: Client) -> str:
    """An empty table partitioned by month (an insert may touch at most 100 partitions)."""
    admin.command(f"DROP TABLE IF EXISTS {DB}.monthly")
    admin.command(f"CREATE TABLE {DB}.monthly (d Date, v UInt32) ENGINE = MergeTree "
                  "PARTITION BY toYYYYMM(d) ORDER BY d")
    return f"{DB}.monthly"


def _post(settings: Settings, params: dict[str, str], body: bytes | Iterator[bytes],
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST as the admin user over a fresh connection; an iterator body goes out with chunked transfer encoding."""
    headers = {"X-ClickHouse-User": settings.clickhouse_user, "X-ClickHouse-Key": settings.clickhouse_password,
               **(headers or {})}
    url = urlsplit(settings.clickhouse_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("POST", "/?" + urlencode(params), body=body, headers=headers,
                     encode_chunked=not isinstance(body, bytes))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _count(admin: Client, table: str) -> int:
    return admin.query(f"SELECT count() FROM {table}").result_rows[0][0]


def _assert_refused(answer: tuple[int, dict[str, str], bytes], code: int) -> None:
    status, headers, body = answer
    assert status == 500, body
    assert headers["X-ClickHouse-Exception-Code"] == str(code)
    assert body.startswith(f"Code: {code}. DB::Exception: ".encode()), body
    assert b"http_inserts" not in body  # the spool file stays private


def _months(count: int) -> list[date]:
    return [date(2000 + i // 12, i % 12 + 1, 1) for i in range(count)]


def test_values_in_the_body_and_in_the_url(settings: Settings, admin: Client, checked: str) -> None:
    _assert_refused(_post(settings, {}, f"INSERT INTO {checked} VALUES (1), (50)".encode()), VIOLATED_CONSTRAINT)
    _assert_refused(_post(settings, {"query": f"INSERT INTO {checked} VALUES (50)"}, b""), VIOLATED_CONSTRAINT)
    assert _count(admin, checked) == 0


def test_format_with_the_data_in_the_body(settings: Settings, admin: Client, checked: str) -> None:
    _assert_refused(_post(settings, {"query": f"INSERT INTO {checked} FORMAT TSV"}, b"1\n50\n"), VIOLATED_CONSTRAINT)
    _assert_refused(_post(settings, {}, f"INSERT INTO {checked} FORMAT CSV\n2\n51\n".encode()), VIOLATED_CONSTRAINT)
    assert _count(admin, checked) == 0


def test_chunked_body(settings: Settings, admin: Client, checked: str) -> None:
    chunks = iter([b"1\n", b"2\n" * 1000, b"50\n"])
    _assert_refused(_post(settings, {"query": f"INSERT INTO {checked} FORMAT TSV"}, chunks), VIOLATED_CONSTRAINT)
    assert _count(admin, checked) == 0


@pytest.mark.parametrize(("encoding", "compress"), [
    ("lz4", lz4.frame.compress), ("zstd", zstd.compress), ("gzip", gzip.compress),
])
def test_compressed_body(settings: Settings, admin: Client, checked: str, encoding: str, compress) -> None:
    body = compress(b"3\n" * 5000 + b"60\n")
    answer = _post(settings, {"query": f"INSERT INTO {checked} FORMAT TSV"}, body, {"Content-Encoding": encoding})
    _assert_refused(answer, VIOLATED_CONSTRAINT)
    assert _count(admin, checked) == 0


def test_clickhouse_connect_insert(settings: Settings, admin: Client, checked: str) -> None:
    with pytest.raises(DatabaseError) as info:
        admin.insert(checked, [(1,), (70,)], column_names=["x"])
    assert f"Code: {VIOLATED_CONSTRAINT}" in str(info.value)
    assert _count(admin, checked) == 0


def test_raw_insert_over_one_hundred_partitions_as_the_stream_worker_sends_it(
        settings: Settings, admin: Client, monthly: str) -> None:
    body = lz4.frame.compress(orjson.dumps([[d.isoformat(), 1] for d in _months(101)])[1:-1])
    with pytest.raises(DatabaseError) as info:
        admin.raw_insert(monthly, ["d", "v"], insert_block=body, fmt="JSONCompactEachRow", compression="lz4")
    assert f"Code: {TOO_MANY_PARTS}" in str(info.value)
    assert _count(admin, monthly) == 0


def test_written_rows_is_what_was_stored(settings: Settings, admin: Client, monthly: str) -> None:
    rows = "".join(f"{d.isoformat()}\t{i}\n" for i, d in enumerate(_months(100)))
    status, headers, body = _post(settings, {"query": f"INSERT INTO {monthly} FORMAT TSV"}, rows.encode())
    assert status == 200, body
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "100"
    summary = admin.insert(monthly, [(date(1999, 12, 31) - timedelta(days=i), 7) for i in range(3)],
                           column_names=["d", "v"])
    assert summary.written_rows == 3
    assert _count(admin, monthly) == 103


def test_a_malformed_row_is_a_bad_request(settings: Settings, admin: Client, checked: str) -> None:
    status, headers, body = _post(settings, {"query": f"INSERT INTO {checked} FORMAT TSV"}, b"1\nnot a number\n")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "27"
    assert body.startswith(b"Code: 27. DB::Exception: ") and body.count(b"DB::Exception") == 1
    assert _count(admin, checked) == 0
