"""Parts of the ClickHouse HTTP protocol that stock clients use, against the running local endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clickhouse_connect.driver.external import ExternalData

from billing.settings import Settings
from billing.warehouse.client import client


@pytest.fixture()
def http(warehouse, settings: Settings) -> Iterator[httpx.Client]:
    admin_auth = {"X-ClickHouse-User": settings.clickhouse_user, "X-ClickHouse-Key": settings.clickhouse_password}
    with httpx.Client(base_url=settings.clickhouse_url, headers=admin_auth, timeout=60) as client:
        yield client


def test_a_session_in_use_is_refused_at_once_with_session_is_locked(http: httpx.Client) -> None:
    session = {"session_id": f"locked-{uuid.uuid4()}"}
    assert http.post("/", params=session, content=b"CREATE TEMPORARY TABLE t (x UInt8)").status_code == 200
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(http.post, "/", params=session, content=b"SELECT sleep(3)")
        while http.post("/", content=b"SELECT count() FROM system.processes WHERE query LIKE 'SELECT sleep(3)%'"
                        ).text.strip() == "0":
            assert not slow.done(), slow.result().text
        refused = http.post("/", params=session, content=b"SELECT 1")
        assert not slow.done()  # refused while the other request still runs, not after waiting for it
        assert slow.result().status_code == 200
    assert refused.headers["X-ClickHouse-Exception-Code"] == "373"
    assert "SESSION_IS_LOCKED" in refused.text
    assert http.post("/", params=session, content=b"SELECT count() FROM t").text == "0\n"  # the session lives on


def test_a_session_used_one_request_after_another_is_never_locked(http: httpx.Client, settings: Settings) -> None:
    """A client (dbt-clickhouse, several pooled connections) sends its next query in the session as soon as
    it has read the answer, often on another connection: the session must already be free then."""
    session = {"session_id": f"sequential-{uuid.uuid4()}"}
    auth = dict(http.headers)
    pools = [httpx.Client(base_url=settings.clickhouse_url, headers=auth, timeout=60) for _ in range(2)]
    try:
        answers = [pools[i % 2].post("/", params=session, content=b"SELECT number FROM numbers(3) FORMAT TSV")
                   for i in range(200)]
        answers += [pools[i % 2].post("/", params=session, content=b"SELECT 1 FORMAT JSON") for i in range(200)]
    finally:
        for pool in pools:
            pool.close()
    refused = [a.text for a in answers if a.status_code != 200]
    assert refused == []


def test_the_database_header_or_parameter_is_the_default_database(http: httpx.Client, settings: Settings) -> None:
    query = {"query": "SELECT currentDatabase(), count() > 0 FROM tables"}
    assert http.get("/", params=query, headers={"X-ClickHouse-Database": "system"}).text == "system\t1\n"
    assert http.get("/", params={**query, "database": "system"}).text == "system\t1\n"
    both = http.get("/", params={**query, "database": "default"}, headers={"X-ClickHouse-Database": "system"})
    assert both.text == "system\t1\n"  # the header wins, as on a server
    assert http.get("/", params={"query": "SELECT 1"}, headers={"X-ClickHouse-Format": "JSONEachRow"}).text == '{"1":1}\n'
    unknown = http.get("/", params=query, headers={"X-ClickHouse-Database": "no_such_db"})
    assert unknown.headers["X-ClickHouse-Exception-Code"] == "81"
    session = {"session_id": f"db-{uuid.uuid4()}", "query": "SELECT currentDatabase()"}
    assert http.get("/", params={**session, "database": "system"}).text == "system\n"
    assert http.get("/", params=session).text == "default\n"  # the parameter sets one query's database
    assert http.post("/", params={"session_id": session["session_id"]}, content=b"USE system").status_code == 200
    assert http.get("/", params={**session, "database": "default"}).text == "default\n"
    assert http.get("/", params=session).text == "system\n"  # USE sets the session's own
    with client(settings, database="system") as ch:
        assert ch.database == "system"
        assert ch.query("SELECT currentDatabase(), count() > 0 FROM tables").result_rows == [("system", True)]


def test_a_session_timezone_is_reported_in_the_timezone_header(http: httpx.Client, settings: Settings) -> None:
    server_tz = http.get("/", params={"query": "SELECT 1"}).headers["X-ClickHouse-Timezone"]
    query = {"query": "SELECT timezone()"}
    asked = http.get("/", params={**query, "session_timezone": "Asia/Tokyo"})
    assert (asked.text, asked.headers["X-ClickHouse-Timezone"]) == ("Asia/Tokyo\n", "Asia/Tokyo")
    session = {"session_id": f"tz-{uuid.uuid4()}"}
    assert http.post("/", params=session, content=b"SET session_timezone = 'America/Denver'"
                     ).headers["X-ClickHouse-Timezone"] == "America/Denver"
    later = http.get("/", params={**query, **session})
    assert (later.text, later.headers["X-ClickHouse-Timezone"]) == ("America/Denver\n", "America/Denver")
    assert http.get("/", params=query).headers["X-ClickHouse-Timezone"] == server_tz  # other requests keep theirs
    with client(settings) as ch:
        [[local]] = ch.query("SELECT toDateTime('2024-01-01 09:00:00')",
                             settings={"session_timezone": "Asia/Tokyo"}).result_rows
    assert local == datetime(2024, 1, 1, tzinfo=UTC)
    assert local.utcoffset() == timedelta(hours=9)  # the client takes the zone from the header


def test_a_query_settings_clause_timezone_is_reported_in_the_timezone_header(http: httpx.Client,
                                                                            settings: Settings) -> None:
    server_tz = http.get("/", params={"query": "SELECT 1"}).headers["X-ClickHouse-Timezone"]
    inline = http.post("/", content=b"SELECT timezone() SETTINGS session_timezone = 'Asia/Kolkata'")
    assert (inline.text, inline.headers["X-ClickHouse-Timezone"]) == ("Asia/Kolkata\n", "Asia/Kolkata")
    assert http.get("/", params={"query": "SELECT 1"}).headers["X-ClickHouse-Timezone"] == server_tz
    bad = http.post("/", content=b"SELECT 1 SETTINGS session_timezone = 'Mars/Olympus'")
    assert bad.status_code != 200 and "Mars/Olympus" in bad.text
    with client(settings) as ch:
        [[local]] = ch.query("SELECT toDateTime('2024-01-01 09:00:00') SETTINGS session_timezone = 'Asia/Tokyo'"
                             ).result_rows
    assert local.utcoffset() == timedelta(hours=9) and local.hour == 9  # clickhouse-connect reads the header


def test_session_check_refuses_an_unknown_session_with_session_not_found(http: httpx.Client) -> None:
    session = {"session_id": f"check-{uuid.uuid4()}", "session_check": "1"}
    unknown = http.post("/", params=session, content=b"SELECT 1")
    assert unknown.status_code != 200 and unknown.headers["X-ClickHouse-Exception-Code"] == "372"
    assert unknown.text.startswith(f"Code: 372. DB::Exception: Session {session['session_id']} not found")
    assert "SESSION_NOT_FOUND" in unknown.text
    assert http.post("/", params={"session_id": session["session_id"]}, content=b"SELECT 1").text == "1\n"
    assert http.post("/", params=session, content=b"SELECT 2").text == "2\n"  # it exists now


def test_client_protocol_version_is_accepted_and_clients_read_native_results(http: httpx.Client,
                                                                              settings: Settings) -> None:
    native = {"query": "SELECT 1 AS check", "default_format": "Native"}
    plain = http.get("/", params=native).content
    assert http.get("/", params={**native, "client_protocol_version": "54405"}).content == plain
    bad = http.get("/", params={**native, "client_protocol_version": "x"})
    assert (bad.status_code, bad.headers["X-ClickHouse-Exception-Code"]) == (400, "36")
    with client(settings) as ch:
        assert ch.protocol_version == 0  # the probe finds revision-0 Native and the client reads it as such
        rows = ch.query("SELECT toLowCardinality(toString(number % 3)) AS lc, if(number % 2, NULL, number) AS n "
                        "FROM numbers(4) ORDER BY number").result_rows
    assert rows == [("0", 0), ("1", None), ("2", 2), ("0", None)]


def test_query_text_that_is_not_utf8_reaches_the_engine_intact(http: httpx.Client, settings: Settings) -> None:
    assert http.post("/", content=b"SELECT hex('\xff\xfe\x80')").text == "FFFE80\n"
    assert http.get("/?query=SELECT%20hex('%FF%C3')").text == "FFC3\n"
    error = http.post("/", content=b"SELECT '\xff' FROM no_such_table")
    assert (error.headers["X-ClickHouse-Exception-Code"], error.status_code) == ("60", 404)
    assert "Unknown table expression identifier 'no_such_table'" in error.text
    table = f"default.binary_{uuid.uuid4().hex}"
    assert http.post("/", content=f"CREATE TABLE {table} (s String) ENGINE = Memory".encode()).status_code == 200
    try:
        assert http.post("/", content=f"INSERT INTO {table} VALUES ('".encode() + b"\x80\xff')").status_code == 200
        assert http.post("/", params={"query": f"INSERT INTO {table} FORMAT TSV"}, content=b"\xc3(\n").status_code == 200
        with client(settings) as ch:
            # client-side binding puts the bytes into the query text as string literals
            assert ch.query(f"SELECT hex(%(s)s) AS h, count() AS n FROM {table} WHERE s IN (%(a)s, %(b)s)",
                            parameters={"s": b"\xfe", "a": b"\x80\xff", "b": b"\xc3("}).result_rows == [("FE", 2)]
    finally:
        http.post("/", content=f"DROP TABLE {table}".encode())


def test_file_parts_are_external_tables_for_the_query(http: httpx.Client, settings: Settings) -> None:
    # curl -F 'file=@f.tsv' '...?query=SELECT ... FROM file&file_structure=...'
    response = http.post("/", params={"query": "SELECT login, sum(uid) FROM file GROUP BY login ORDER BY login",
                                      "file_structure": "login String, uid UInt16"},
                         files={"file": ("f.tsv", b"root\t0\nbin\t2\nbin\t3\n", "application/octet-stream")})
    assert response.text == "bin\t5\nroot\t0\n", response.text
    two = http.post("/", params={"a_types": "UInt8,Decimal(9, 2)", "b_structure": "k UInt8, name String",
                                 "b_format": "CSV"},
                    files={"query": (None, "SELECT name, _2 FROM a JOIN b ON a._1 = b.k ORDER BY k"),
                           "a": ("a", b"1\t2.50\n2\t0.01\n", "text/plain"), "b": ("b.csv", b'1,"x"\n2,"y"\n', "text/csv")})
    assert two.text == "x\t2.5\ny\t0.01\n", two.text
    bad = http.post("/", params={"query": "SELECT * FROM t"}, files={"t": ("t", b"1\n", "text/plain")})
    assert (bad.status_code, bad.headers["X-ClickHouse-Exception-Code"]) == (400, "36")
    assert "t_structure or t_types" in bad.text
    malformed = http.post("/", params={"query": "SELECT * FROM t", "t_structure": "x UInt8"},
                          files={"t": ("t", b"not a number\n", "text/plain")})
    assert malformed.headers["X-ClickHouse-Exception-Code"] != "0" and "external table t" in malformed.text
    assert "http_inserts" not in malformed.text  # no server path leaks
    session = {"session_id": f"ext-{uuid.uuid4()}"}
    assert http.post("/", params={**session, "query": "SELECT count() FROM t", "t_structure": "x UInt8"},
                     files={"t": ("t", b"1\n2\n", "text/plain")}).text == "2\n"
    gone = http.post("/", params=session, content=b"SELECT count() FROM t")  # only for its query, as on a server
    assert gone.headers["X-ClickHouse-Exception-Code"] == "60"


def test_clickhouse_connect_external_data_also_for_the_readonly_user(settings: Settings) -> None:
    data = ExternalData(file_name="prices.csv", data=b"a,1.5\nb,2.25\n", fmt="CSV", structure=["sku String", "price Float64"])
    for readonly in (False, True):
        with client(settings, readonly=readonly) as ch:
            rows = ch.query("SELECT sku, price FROM prices ORDER BY sku", external_data=data).result_rows
            assert rows == [("a", 1.5), ("b", 2.25)]
