"""The local ClickHouse endpoint against unmodified clients: clickhouse-connect, SQLAlchemy, raw HTTP."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import clickhouse_connect
import lz4.frame
import pytest
import sqlalchemy
from backports import zstd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from billing.chdb_server.server import SESSION_REAP_INTERVAL_S
from billing.settings import Settings

DB = "wh_test"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _client(settings: Settings, **kwargs) -> Client:
    host, port = settings.clickhouse_url.rsplit("/", 1)[-1].split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), **kwargs)


@pytest.fixture(autouse=True)
def _endpoint(warehouse) -> None:
    """Every test here talks to the running endpoint."""


@pytest.fixture(scope="module")
def admin(warehouse, settings: Settings) -> Iterator[Client]:
    client = _client(settings, compress="lz4")
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.command(f"CREATE DATABASE {DB}")
    yield client
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.close()


def _http(settings: Settings, params: dict[str, str] | None = None, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = settings.clickhouse_url + "/?" + urlencode(params or {})
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _rows(n: int) -> list[tuple]:
    return [(i, f"customer-{i % 97}", Decimal(i) / 100, EPOCH + timedelta(seconds=i)) for i in range(n)]


def _create(client: Client, table: str) -> None:
    client.command(f"DROP TABLE IF EXISTS {DB}.{table}")
    client.command(
        f"CREATE TABLE {DB}.{table} (id UInt64, customer String, amount Decimal(18, 4), ts DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY id"
    )


def test_ping_and_plain_get(warehouse, settings: Settings) -> None:
    assert _http(settings)[2] == b"Ok.\n"
    status, headers, body = _http(settings, {"query": "SELECT 1, 'a'"})
    assert (status, body) == (200, b"1\ta\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Timezone"] and headers["X-ClickHouse-Query-Id"]


def test_lz4_insert_of_100k_rows_reads_back_exactly(admin: Client) -> None:
    _create(admin, "lz4_rows")
    rows = _rows(100_000)
    summary = admin.insert(f"{DB}.lz4_rows", rows, column_names=["id", "customer", "amount", "ts"])
    assert summary.written_rows == 100_000
    count, ids, amounts = admin.query(f"SELECT count(), sum(id), sum(amount) FROM {DB}.lz4_rows").result_rows[0]
    assert (count, ids, amounts) == (100_000, sum(range(100_000)), sum(r[2] for r in rows))
    picked = admin.query(f"SELECT id, customer, amount, ts FROM {DB}.lz4_rows WHERE id IN (0, 4242, 99999) ORDER BY id")
    expected = [rows[0], rows[4242], rows[99999]]
    assert [(i, c, a, t.replace(tzinfo=UTC)) for i, c, a, t in picked.result_rows] == expected
    assert admin.query(f"SELECT * FROM {DB}.lz4_rows ORDER BY id").result_rows[-1][0] == 99_999


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_zstd_and_gzip_inserts(warehouse, settings: Settings, admin: Client, compression: str) -> None:
    table = f"{compression}_rows"
    _create(admin, table)
    client = _client(settings, compress=compression)
    rows = _rows(30_000)
    client.insert(f"{DB}.{table}", rows, column_names=["id", "customer", "amount", "ts"])
    assert client.query(f"SELECT count(), sum(id) FROM {DB}.{table}").result_rows == [(30_000, sum(range(30_000)))]
    client.close()


def test_several_lz4_frames_in_one_body_are_all_inserted(settings: Settings, admin: Client) -> None:
    _create(admin, "frames")
    blocks = []
    for start in range(0, 5000, 1000):
        status, _, native = _http(settings, {"query": f"SELECT number AS id, 'c' AS customer, 1 AS amount, now64(3) AS ts "
                                                      f"FROM numbers({start}, 1000) FORMAT Native"})
        assert status == 200
        blocks.append(lz4.frame.compress(native))
    status, headers, body = _http(
        settings, {"query": f"INSERT INTO {DB}.frames FORMAT Native"}, b"".join(blocks), {"Content-Encoding": "lz4"}
    )
    assert status == 200, body
    assert "X-ClickHouse-Format" not in headers
    assert '"written_rows":"5000"' in headers["X-ClickHouse-Summary"]
    assert admin.query(f"SELECT count(), uniqExact(id) FROM {DB}.frames").result_rows == [(5000, 5000)]


def test_corrupt_compressed_body_is_a_clear_error(settings: Settings) -> None:
    body = b"\x04\x22\x4d\x18" + b"\xff" * 64
    status, headers, text = _http(settings, {"query": "SELECT 1"}, body, {"Content-Encoding": "lz4"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "271")
    assert b"Corrupt lz4 body" in text
    assert _http(settings, {"query": "SELECT 1"})[2] == b"1\n"


def test_inline_insert_data_in_the_body(settings: Settings, admin: Client) -> None:
    admin.command(f"CREATE TABLE IF NOT EXISTS {DB}.kv (k String, v Int64) ENGINE = MergeTree ORDER BY k")
    body = f"INSERT INTO {DB}.kv FORMAT CSV\n\"a, 'x'\",1\nb,2\n".encode()
    assert _http(settings, {}, body)[0] == 200
    assert _http(settings, {}, f"INSERT INTO {DB}.kv VALUES ('c', 3), ('d;', 4)".encode())[0] == 200
    assert admin.query(f"SELECT k, v FROM {DB}.kv ORDER BY k").result_rows == [("a, 'x'", 1), ("b", 2), ("c", 3), ("d;", 4)]


def test_query_parameters_are_bound(admin: Client) -> None:
    result = admin.query("SELECT {n:UInt32} * 2 AS x, {s:String} AS s", parameters={"n": 21, "s": "it's"})
    assert result.result_rows == [(42, "it's")]
    assert admin.query("SELECT %(a)s + 1", parameters={"a": 1}).result_rows == [(2,)]


def test_sqlalchemy_dialect_inspects_tables(settings: Settings, admin: Client) -> None:
    admin.command(f"CREATE TABLE IF NOT EXISTS {DB}.inspected (id UInt32, label String) ENGINE = MergeTree ORDER BY id")
    url = settings.clickhouse_url.replace("http://", "clickhousedb://default:@") + f"/{DB}"
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        assert DB in inspector.get_schema_names()
        assert "inspected" in inspector.get_table_names(schema=DB)
        columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("inspected", schema=DB)}
        assert list(columns) == ["id", "label"]
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 40 + 2")).scalar() == 42
    finally:
        engine.dispose()


def test_errors_carry_clickhouse_codes(settings: Settings, admin: Client) -> None:
    with pytest.raises(DatabaseError) as info:
        admin.query(f"SELECT * FROM {DB}.no_such_table")
    assert info.value.code == 60
    status, headers, body = _http(settings, {}, b"SELECT * FROM no_such_table")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert body.startswith(b"Code: 60. DB::Exception:")
    status, headers, _ = _http(settings, {}, b"SELEC 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")


def test_ddl_has_no_format_header_and_get_is_readonly(settings: Settings) -> None:
    status, headers, _ = _http(settings, {}, f"CREATE TABLE IF NOT EXISTS {DB}.ddl (a Int8) ENGINE = Memory".encode())
    assert status == 200 and "X-ClickHouse-Format" not in headers
    status, headers, _ = _http(settings, {"query": f"DROP TABLE {DB}.ddl"})
    assert headers["X-ClickHouse-Exception-Code"] == "164"


def test_readonly_user_can_read_but_not_write(settings: Settings, admin: Client) -> None:
    admin.command(f"CREATE TABLE IF NOT EXISTS {DB}.guarded (a Int32) ENGINE = MergeTree ORDER BY a")
    admin.insert(f"{DB}.guarded", [(1,), (2,)])
    reader = _client(settings, username=settings.clickhouse_readonly_user,
                     password=settings.clickhouse_readonly_password)
    assert reader.query(f"SELECT sum(a) FROM {DB}.guarded").result_rows == [(3,)]
    attempts = [
        lambda: reader.insert(f"{DB}.guarded", [(3,)]),
        lambda: reader.command(f"INSERT INTO {DB}.guarded VALUES (4)"),
        lambda: reader.command(f"CREATE TABLE {DB}.evil (a Int8) ENGINE = Memory"),
        lambda: reader.command(f"DROP TABLE {DB}.guarded"),
        lambda: reader.command(f"ALTER TABLE {DB}.guarded DELETE WHERE 1"),
        lambda: reader.command(f"TRUNCATE TABLE {DB}.guarded"),
        lambda: reader.command("SET readonly = 0"),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError) as info:
            attempt()
        assert info.value.code == 164
    escape = {"user": settings.clickhouse_readonly_user, "password": settings.clickhouse_readonly_password,
              "readonly": "0"}
    status, headers, _ = _http(settings, escape, f"INSERT INTO {DB}.guarded VALUES (5)".encode())
    assert headers["X-ClickHouse-Exception-Code"] == "164"
    status, headers, _ = _http(settings, {"readonly": "1"}, f"INSERT INTO {DB}.guarded VALUES (6)".encode())
    assert headers["X-ClickHouse-Exception-Code"] == "164"
    assert admin.query(f"SELECT sum(a) FROM {DB}.guarded").result_rows == [(3,)]
    reader.close()


def test_wrong_password_is_rejected(settings: Settings) -> None:
    status, headers, _ = _http(settings, {"query": "SELECT 1", "user": settings.clickhouse_readonly_user,
                                          "password": "wrong"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")


def test_sessions_keep_use_set_and_temporary_tables(settings: Settings) -> None:
    session = {"session_id": f"wh-test-{uuid.uuid4()}"}
    assert _http(settings, session, f"USE {DB}".encode())[0] == 200
    assert _http(settings, session, b"SET max_threads = 1")[0] == 200
    assert _http(settings, session, b"CREATE TEMPORARY TABLE tmp (a Int8)")[0] == 200
    assert _http(settings, session, b"SELECT currentDatabase(), getSetting('max_threads'), count() FROM tmp")[2] == \
        f"{DB}\t1\t0\n".encode()
    assert _http(settings, {}, b"SELECT currentDatabase()")[2] == b"default\n"
    assert _http(settings, {}, b"SELECT count() FROM tmp")[0] == 404


def test_request_parameters_win_over_the_sessions_own_use_and_set(settings: Settings) -> None:
    session = {"session_id": f"wh-params-{uuid.uuid4()}", "database": DB, "max_threads": "3"}
    query = b"SELECT currentDatabase(), getSetting('max_threads')"
    assert _http(settings, session, query)[2] == f"{DB}\t3\n".encode()
    assert _http(settings, session, b"USE default")[0] == 200
    assert _http(settings, session, b"SET max_threads = 1")[0] == 200
    assert _http(settings, session, query)[2] == f"{DB}\t3\n".encode()


def test_settings_and_database_params_apply_per_query(settings: Settings) -> None:
    body = _http(settings, {"database": DB, "max_threads": "3"}, b"SELECT currentDatabase(), getSetting('max_threads')")[2]
    assert body == f"{DB}\t3\n".encode()
    assert _http(settings, {}, b"SELECT getSetting('max_threads')")[2] != b"3\n"
    status, headers, _ = _http(settings, {"no_such_setting": "1"}, b"SELECT 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "115")
    ignored = {"wait_end_of_query": "1", "send_progress_in_http_headers": "1", "compress": "1", "decompress": "0"}
    assert _http(settings, ignored, b"SELECT 1")[2] == b"1\n"


@pytest.mark.parametrize(("encoding", "decompress"), [
    ("gzip", gzip.decompress), ("lz4", lz4.frame.decompress), ("zstd", zstd.decompress),
])
def test_compressed_response_when_asked(settings: Settings, encoding: str, decompress) -> None:
    status, headers, body = _http(settings, {"enable_http_compression": "1"}, b"SELECT number FROM numbers(100000)",
                                  {"Accept-Encoding": encoding})
    assert status == 200 and headers["Content-Encoding"] == encoding
    assert decompress(body).split() == [str(n).encode() for n in range(100000)]
    assert _http(settings, {}, b"SELECT 1", {"Accept-Encoding": encoding})[1]["Content-Encoding"] == encoding
    assert "Content-Encoding" not in _http(settings, {"enable_http_compression": "0"}, b"SELECT 1",
                                           {"Accept-Encoding": encoding})[1]


def test_formats_from_the_query_or_default_format(settings: Settings) -> None:
    status, headers, body = _http(settings, {"default_format": "JSONCompact"}, b"SELECT 7 AS x")
    assert headers["X-ClickHouse-Format"] == "JSONCompact" and json.loads(body)["data"] == [[7]]
    status, headers, body = _http(settings, {"default_format": "JSONCompact"}, b"SELECT 7 AS x FORMAT CSVWithNames")
    assert headers["X-ClickHouse-Format"] == "CSVWithNames" and body == b'"x"\n7\n'
    status, headers, _ = _http(settings, {}, b"SELECT 1; SELECT 2")
    assert headers["X-ClickHouse-Exception-Code"] == "62"


def test_idle_sessions_expire(settings: Settings) -> None:
    session = {"session_id": f"wh-short-{uuid.uuid4()}", "session_timeout": "1"}
    assert _http(settings, session, b"CREATE TEMPORARY TABLE short_lived (a Int8)")[0] == 200
    assert _http(settings, session, b"SELECT count() FROM short_lived")[0] == 200
    time.sleep(1 + SESSION_REAP_INTERVAL_S + 1)  # idle past its timeout and one reaper pass (any request would touch it)
    status, headers, _ = _http(settings, {"session_id": session["session_id"]}, b"SELECT count() FROM short_lived")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "60")


def test_large_result_streams_in_order(admin: Client) -> None:
    result = admin.query("SELECT number FROM numbers(1000000)")
    column = result.result_columns[0]
    assert len(column) == 1_000_000 and column[0] == 0 and column[-1] == 999_999


def test_wait_end_of_query_turns_a_late_error_into_an_error_status(settings: Settings) -> None:
    query = b"SELECT throwIf(number = 200000, 'late') FROM numbers(300000)"
    status, headers, body = _http(settings, {"wait_end_of_query": "1"}, query)
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "395") and body.startswith(b"Code: 395.")


def test_error_in_the_middle_of_a_stream_reaches_the_client(admin: Client) -> None:
    with pytest.raises(Exception) as info:
        admin.query("SELECT throwIf(number = 200000, 'boom in the middle') FROM numbers(300000)")
    assert "395" in str(info.value) and "boom in the middle" in str(info.value)

