"""Query parameters in a form body (multipart/form-data, urlencoded) against the running local endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from billing.settings import Settings

DB = "wh_forms"
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


def _client(config: Settings, **kwargs) -> Client:
    host, port = config.clickhouse_url.rsplit("/", 1)[-1].split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), username=config.clickhouse_user,
                                         password=config.clickhouse_password, **kwargs)


@pytest.fixture(scope="module")
def admin(warehouse, settings: Settings) -> Iterator[Client]:
    client = _client(settings)
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.command(f"CREATE DATABASE {DB}")
    client.command(f"CREATE TABLE {DB}.customers (id String) ENGINE = MergeTree ORDER BY id")
    client.insert(f"{DB}.customers", [[f"cust-{i:06d}"] for i in range(0, 60_000, 2)], column_names=["id"])
    yield client
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.close()


@pytest.fixture()
def http(warehouse, settings: Settings) -> Iterator[httpx.Client]:
    admin_auth = {"X-ClickHouse-User": settings.clickhouse_user, "X-ClickHouse-Key": settings.clickhouse_password}
    with httpx.Client(base_url=settings.clickhouse_url, headers=admin_auth, timeout=60) as client:
        yield client


def test_twenty_thousand_ids_bind_in_one_query(admin: Client) -> None:
    ids = [f"cust-{i:06d}" for i in range(20_000)]  # every other one exists
    result = admin.query(
        f"SELECT count(), min(id), max(id), length({{ids:Array(String)}}) FROM {DB}.customers WHERE id IN {{ids:Array(String)}}",
        parameters={"ids": ids},
    )
    assert result.result_rows == [(10_000, "cust-000000", "cust-019998", 20_000)]


def test_form_encoded_parameters_of_a_small_query(settings: Settings, admin: Client) -> None:
    client = _client(settings, database=DB, form_encode_query_params=True, settings={"max_result_rows": 10})
    try:
        result = client.query("SELECT {n:UInt32} * 2, {s:String}, currentDatabase(), getSetting('max_result_rows')",
                              parameters={"n": 21, "s": "it's \"quoted\"\n & more=1"})
        assert result.result_rows == [(42, "it's \"quoted\"\n & more=1", DB, 10)]
        assert client.raw_query("SELECT {x:String}", parameters={"x": "a\tb"}, fmt="TSV") == b"a\\tb\n"
    finally:
        client.close()


def test_urlencoded_post_with_query_parameters_settings_and_database(http: httpx.Client, admin: Client) -> None:
    response = http.post("/", data={
        "query": "SELECT count(), {tag:String}, currentDatabase(), getSetting('max_threads') FROM customers "
                 "WHERE id IN {ids:Array(String)}",
        "param_ids": "['cust-000000','cust-000001','cust-000002']", "param_tag": "a b&c",
        "database": DB, "max_threads": "3", "default_format": "TSV",
    })
    assert response.status_code == 200, response.text
    assert response.text == f"2\ta b&c\t{DB}\t3\n"
    assert response.headers["X-ClickHouse-Format"] == "TSV"


def test_session_and_query_id_from_form_fields(http: httpx.Client) -> None:
    session = {"session_id": "forms-session", "default_format": "TSV"}
    create = http.post("/", data={**session, "query": "CREATE TEMPORARY TABLE tmp AS SELECT 7 AS x",
                                  "query_id": "form-query-1"})
    assert create.status_code == 200, create.text
    assert create.headers["X-ClickHouse-Query-Id"] == "form-query-1"
    assert http.post("/", data={**session, "query": "SELECT x FROM tmp"}).text == "7\n"


def test_form_field_wins_over_the_url_parameter(http: httpx.Client) -> None:
    response = http.post("/", params={"default_format": "CSV", "param_n": "1"},
                         files={"query": (None, "SELECT {n:UInt8}, 'x'"), "param_n": (None, "2")})
    assert response.status_code == 200, response.text
    assert response.text == '2,"x"\n'


def test_curl_style_urlencoded_bodies_stay_sql_and_insert_data(http: httpx.Client, admin: Client) -> None:
    assert http.post("/", content=b"SELECT 1 + 1", headers=URLENCODED).text == "2\n"
    admin.command(f"CREATE TABLE IF NOT EXISTS {DB}.kv (k String, v Int64) ENGINE = Memory")
    insert = http.post("/", params={"query": f"INSERT INTO {DB}.kv FORMAT TSKV"}, headers=URLENCODED,
                       content=b"k=query\tv=1\nk=b\tv=2\n")
    assert insert.status_code == 200, insert.text
    assert admin.query(f"SELECT k, v FROM {DB}.kv ORDER BY k").result_rows == [("b", 2), ("query", 1)]


def test_malformed_multipart_body_is_a_400(http: httpx.Client) -> None:
    response = http.post("/", content=b"--b\r\nno headers end", headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400
    assert response.headers["X-ClickHouse-Exception-Code"] == "36"
    assert "Cannot parse the multipart/form-data request body" in response.text
