"""Statement classification of the local ClickHouse endpoint (no server needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.warehouse.sql import Kind, analyze, insert_from_file, tables_read_without_final, tokenize


@pytest.mark.parametrize(
    ("sql", "keyword", "rows", "fmt"),
    [
        ("SELECT 1", "SELECT", True, None),
        ("select format('{}', 1) FORMAT JSON", "SELECT", True, "JSON"),
        ("(SELECT 1) format Native", "SELECT", True, "Native"),
        ("WITH x AS (SELECT 1 FORMAT JSON) SELECT * FROM x", "WITH", True, None),
        ("SELECT 'FORMAT JSON' -- FORMAT CSV\n", "SELECT", True, None),
        ("SELECT 1 /* FORMAT CSV */", "SELECT", True, None),
        ('SELECT "FORMAT CSV" FROM t', "SELECT", True, None),
        ("SELECT 1 AS format", "SELECT", True, None),
        ("SELECT 1 FORMAT `TabSeparatedWithNames`", "SELECT", True, "TabSeparatedWithNames"),
        ("SELECT 1 FORMAT JSON; SELECT 2 FORMAT CSV", "SELECT", True, "JSON"),
        ("  -- comment\n  show tables", "SHOW", True, None),
        ("DESCRIBE TABLE t FORMAT Native", "DESCRIBE", True, "Native"),
        ("EXISTS TABLE t", "EXISTS", True, None),
        ("CREATE TABLE x (format String) ENGINE = Memory", "CREATE", False, None),
        ("DROP TABLE IF EXISTS t", "DROP", False, None),
        ("SET max_threads = 1", "SET", False, None),
        ("", "", False, None),
        ("SELECT $$FORMAT CSV$$ FORMAT TSV", "SELECT", True, "TSV"),
    ],
)
def test_queries_are_classified(sql: str, keyword: str, rows: bool, fmt: str | None) -> None:
    statement = analyze(sql)
    assert (statement.keyword, statement.returns_rows, statement.output_format) == (keyword, rows, fmt)
    assert not statement.is_data_insert


@pytest.mark.parametrize(
    ("text", "sql", "fmt", "data"),
    [
        ('INSERT INTO t (a, "b c") FORMAT Native\n\x0a\x01', 'INSERT INTO t (a, "b c")', "Native", "\x0a\x01"),
        ("INSERT INTO t FORMAT CSV 1,2\n", "INSERT INTO t", "CSV", "1,2\n"),
        ("INSERT INTO t FORMAT TSV\r\n\n1\n", "INSERT INTO t", "TSV", "\n1\n"),
        ("insert into t values (1), (2)", "insert into t", "Values", " (1), (2)"),
        ("INSERT INTO t (`values`) VALUES ('FORMAT x')", "INSERT INTO t (`values`)", "Values", " ('FORMAT x')"),
        ("INSERT INTO t SETTINGS async_insert=0 FORMAT JSONEachRow\n{}", "INSERT INTO t SETTINGS async_insert=0",
         "JSONEachRow", "{}"),
        ("INSERT INTO t FORMAT Native", "INSERT INTO t", "Native", ""),
        ("INSERT INTO t FORMAT Native\n\t\x00", "INSERT INTO t", "Native", "\t\x00"),
    ],
)
def test_inserts_split_into_statement_format_and_data(text: str, sql: str, fmt: str, data: str) -> None:
    statement = analyze(text)
    assert statement.is_data_insert
    assert (statement.sql, statement.input_format, text[statement.data_start:]) == (sql, fmt, data)
    assert not statement.returns_rows


def test_insert_select_has_no_inline_data() -> None:
    for text in ("INSERT INTO t SELECT 1 FORMAT TSV", "INSERT INTO t (a) WITH 1 AS x SELECT x"):
        statement = analyze(text)
        assert statement.keyword == "INSERT" and not statement.is_data_insert and not statement.returns_rows


def test_a_format_name_cut_by_the_buffer_asks_for_more() -> None:
    assert analyze("INSERT INTO t FORMAT Nat", final=False).needs_more
    assert not analyze("INSERT INTO t FORMAT Native\n", final=False).needs_more


def test_parenthesis_depth_and_unterminated_tokens() -> None:
    tokens = [t for t in tokenize("SELECT (a, (b)) 'open") if t.kind is not Kind.SPACE]
    assert [(t.text, t.depth) for t in tokens[:6]] == [("SELECT", 0), ("(", 0), ("a", 1), (",", 1), ("(", 1), ("b", 2)]
    assert tokens[-1].kind is Kind.STRING and not tokens[-1].complete


_text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=80)


@given(_text)
def test_tokens_cover_the_text_exactly(text: str) -> None:
    tokens = list(tokenize(text))
    assert "".join(t.text for t in tokens) == text
    assert all(t.start < t.end for t in tokens)


@given(st.text(alphabet="abc '\"`\\()-#/*\n", max_size=40), st.sampled_from(["Native", "CSV", "RowBinary"]))
def test_data_after_the_format_clause_is_never_part_of_the_statement(data: str, fmt: str) -> None:
    text = f"INSERT INTO db.t (x, y) FORMAT {fmt}\n{data}"
    statement = analyze(text)
    assert (statement.sql, statement.input_format) == ("INSERT INTO db.t (x, y)", fmt)
    assert text[statement.data_start:] == data


@given(st.text(alphabet="abc ;,()\n", max_size=30))
def test_format_inside_a_string_literal_is_ignored(filler: str) -> None:
    literal = "'" + filler.replace("'", "") + " FORMAT CSV'"
    assert analyze(f"SELECT {literal}").output_format is None
    assert analyze(f"SELECT {literal} FORMAT JSON").output_format == "JSON"


@pytest.mark.parametrize(
    ("sql", "fmt", "expected"),
    [
        ("INSERT INTO t", "TSV", "INSERT INTO t FROM INFILE '/s/x' FORMAT TSV"),
        ('INSERT INTO db.t (a, "b c")', "Values", "INSERT INTO db.t (a, \"b c\") FROM INFILE '/s/x' FORMAT Values"),
        ("INSERT INTO t SETTINGS async_insert=0", "JSONEachRow",
         "INSERT INTO t FROM INFILE '/s/x' SETTINGS async_insert=0 FORMAT JSONEachRow"),
        ("INSERT INTO settings (settings) SETTINGS a=1", "CSV",
         "INSERT INTO settings (settings) FROM INFILE '/s/x' SETTINGS a=1 FORMAT CSV"),
        ("INSERT INTO db.settings", "CSV", "INSERT INTO db.settings FROM INFILE '/s/x' FORMAT CSV"),
        ("INSERT INTO t", "odd`name", "INSERT INTO t FROM INFILE '/s/x' FORMAT `odd``name`"),
    ],
)
def test_an_insert_with_inline_data_reads_it_from_a_file(sql: str, fmt: str, expected: str) -> None:
    assert insert_from_file(sql, "/s/x", fmt) == expected


def test_the_file_path_is_a_quoted_literal() -> None:
    assert insert_from_file("INSERT INTO t", "/s/it's\\", "TSV") == "INSERT INTO t FROM INFILE '/s/it\\'s\\\\' FORMAT TSV"


VERSIONED = {"invoices", "usage_rollups", "customers"}


@pytest.mark.parametrize(("query", "warned"), [
    ("SELECT sum(total) FROM invoices", ["invoices"]),
    ("SELECT sum(total) FROM invoices FINAL", []),
    ("SELECT sum(total) FROM billing.invoices AS i FINAL WHERE 1", []),
    ("SELECT sum(total) FROM `billing`.`invoices` i WHERE 1", ["invoices"]),
    ("SELECT * FROM invoices i FINAL JOIN customers c ON 1", ["customers"]),
    ("SELECT * FROM dead_letters", []),
    ("SELECT count() FROM (SELECT * FROM usage_rollups) x", ["usage_rollups"]),
    ("SELECT 'FROM invoices' FROM customers FINAL", []),
    ("SELECT * FROM invoices SETTINGS final = 1", []),
    ("select * from invoices as x, invoices", ["invoices"]),
])
def test_versioned_tables_read_without_final_are_found(query: str, warned: list[str]) -> None:
    assert tables_read_without_final(query, VERSIONED) == warned
