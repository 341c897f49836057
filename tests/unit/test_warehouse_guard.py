"""The statement checks of the local ClickHouse endpoint: every user, and the read-only user (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.chdb_server.errors import QueryError
from billing.chdb_server.guard import ReadonlyPolicy, check_statement, inspect

POLICY = ReadonlyPolicy(["file", "url", "s3", "remote", "executable", "numbers", "merge", "Python", "filesystem"],
                        {"max_memory_usage": "0", "readonly": "0", "max_threads": "auto(2)"})


def _code(sql: str) -> int | None:
    try:
        facts = inspect(sql)
        check_statement(facts)
        POLICY.check(facts)
    except QueryError as error:
        return error.code
    return None


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "select count() from billing.usage_events where customer_id = 'file(' -- file('x')",
    "WITH x AS (SELECT number FROM numbers(10)) SELECT sum(number) FROM x",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SHOW TABLES FROM billing",
    "DESCRIBE TABLE billing.usage_events",
    "EXISTS TABLE billing.usage_events",
    "EXPLAIN SELECT 1",
    "USE billing",
    "SELECT name FROM system.tables WHERE database = 'billing'",
    "SELECT 1 SETTINGS max_result_rows = 10, output_format_json_quote_64bit_integers = 0 FORMAT JSON",
    "SET session_timezone = 'UTC', max_result_rows = 100",
    "SELECT file_name, url FROM t",
    "SELECT settings FROM t;",
])
def test_reads_are_allowed(sql: str) -> None:
    assert _code(sql) is None


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 497),
    ("SELECT * FROM `file`('/etc/passwd')", 497),
    ("SELECT * FROM FILE ('/etc/passwd')", 497),
    ("SELECT file('/etc/passwd')", 497),
    ("SELECT * FROM url('http://127.0.0.1:8123/?query=DROP+TABLE+x', 'LineAsString')", 497),
    ("SELECT * FROM s3('http://x/y')", 497),
    ("SELECT * FROM remote('127.0.0.1', system.one)", 497),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", 497),
    ("SELECT * FROM python(obj)", 497),
    ("SELECT * FROM merge('system', '^proc')", 497),
    ("SELECT * FROM filesystem('/')", 497),
    ("DESCRIBE file('/etc/passwd')", 497),
    ("SELECT * FROM (SELECT * FROM numbers(1)) JOIN url('http://x') USING number", 497),
    ("SELECT query FROM system.processes", 497),
    ("SELECT query FROM `system`.\"query_log\"", 497),
    ("SELECT * FROM processes", 497),
    ("SHOW PROCESSLIST", 497),
    ("KILL QUERY WHERE 1", 164),
    ("SYSTEM DROP DNS CACHE", 164),
    ("INSERT INTO FUNCTION file('/tmp/x', 'TSV') SELECT 1", 164),
    ("CREATE TABLE t (a Int8) ENGINE = Memory", 164),
    ("SET max_memory_usage = 1", 164),
    ("SET readonly = 0", 164),
    ("SET ROLE admin", 164),
    ("SELECT 1 SETTINGS max_memory_usage = 1", 164),
    ("SELECT 1 SETTINGS output_format_x = 1, max_threads = 64", 164),
    ("SELECT * FROM (SELECT 1 SETTINGS allow_introspection_functions = 1)", 164),
    ("SELECT 1 INTO OUTFILE '/tmp/x' APPEND", 358),
    ("SELECT 1; KILL QUERY WHERE 1", 62),
    ("(KILL QUERY WHERE 1)", 164),
])
def test_the_readonly_user_is_refused(sql: str, code: int) -> None:
    assert _code(sql) == code


def test_every_user_gets_one_statement_and_no_outfile() -> None:
    check_statement(inspect("SELECT 1;  -- done"))
    for sql, code in (("SELECT 1; SELECT 2", 62), ("SELECT 1 INTO OUTFILE 'x'", 358)):
        with pytest.raises(QueryError) as info:
            check_statement(inspect(sql))
        assert info.value.code == code


def test_request_settings_of_the_readonly_user() -> None:
    POLICY.check_settings({"output_format_json_quote_64bit_integers": "1", "max_result_rows": "5",
                           "max_memory_usage": "0", "max_threads": "auto(2)"})
    for settings in ({"max_memory_usage": "1"}, {"readonly": "0 "}, {"allow_introspection_functions": "1"}):
        with pytest.raises(QueryError) as info:
            POLICY.check_settings(settings)
        assert info.value.code == 164


@given(st.sampled_from(["file", "url", "remote", "executable"]), st.text(alphabet=" \n\t", max_size=3),
       st.sampled_from(["", "/* c */", "-- c\n"]))
def test_spacing_and_comments_do_not_hide_a_table_function(name: str, space: str, comment: str) -> None:
    assert _code(f"SELECT * FROM {name}{space}{comment}('/etc/passwd')") == 497
