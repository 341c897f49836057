"""What a statement may do over HTTP, and what the read-only user may run, checked on its tokens.

The embedded engine has no access control of its own: every connection is its ``default`` user
(users from a config file are not loaded, there is no writable access storage for ``CREATE USER``
and ``EXECUTE AS`` is disabled), and in embedded mode ``file()`` reads any path. So the read-only
user's connection runs with ``readonly = 2`` (the engine refuses writes, DDL, KILL and SYSTEM
itself) and this module refuses, before the engine sees it, what ``readonly`` lets through:
table functions that reach files, hosts or programs, queries of the process list and query logs
(every user's SQL, also by their bare names, as after ``USE system``), and settings outside a
safe list. For every user, like a ClickHouse server,
one request runs one statement and ``INTO OUTFILE`` is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from billing.chdb_server.errors import ACCESS_DENIED, INTO_OUTFILE_NOT_ALLOWED, READONLY, SYNTAX_ERROR, QueryError
from billing.warehouse.sql import Kind, Token, significant

READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "USE", "SET"})

SAFE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generateseries", "generate_series", "primes",
    "null", "values", "sqlstandardvalues", "view", "viewifpermitted", "viewexplain", "format", "loop", "dictionary",
})
"""Table functions that only compute or read tables the user may read; every other one is refused."""

FILE_FUNCTIONS = frozenset({"file", "catboostevaluate"})
"""Scalar functions that open server files."""

PRIVATE_SYSTEM_TABLES = frozenset({
    "processes", "query_log", "query_thread_log", "query_views_log", "query_metric_log", "text_log", "trace_log",
    "session_log", "processors_profile_log", "asynchronous_insert_log", "opentelemetry_span_log", "query_cache",
    "user_processes", "blob_storage_log", "backup_log", "filesystem_cache_log", "zookeeper_log",
    "asynchronous_inserts", "named_collections",
})
"""System tables holding other users' SQL (or secrets)."""

SAFE_SETTINGS = frozenset({
    "max_result_rows", "max_result_bytes", "result_overflow_mode", "extremes", "limit", "offset", "session_timezone",
    "join_use_nulls", "max_block_size", "max_execution_time", "timeout_overflow_mode", "max_rows_to_read",
    "max_bytes_to_read", "read_overflow_mode", "cast_string_to_dynamic_use_inference", "format_csv_delimiter",
    "format_csv_allow_single_quotes", "format_csv_allow_double_quotes", "format_csv_null_representation",
    "format_tsv_null_representation",
})
SAFE_SETTING_PREFIXES = ("output_format_", "input_format_", "date_time_")
UNSAFE_SETTING_PARTS = ("schema", "template", "file", "path", "url", "registry", "secret")
"""Format settings naming files or hosts to read or write (``output_format_schema``,
``input_format_record_errors_file_path``, ...) are never safe."""
"""Settings that only shape input and output, or tighten limits that are off by default; clients
send some of them on every request (clickhouse-connect: ``date_time_input_format``,
``cast_string_to_dynamic_use_inference``)."""


def _name(tok: Token) -> str:
    return tok.text.strip('`"').lower() if tok.kind is Kind.QUOTED else tok.text.lower()


@dataclass
class Facts:
    """What the tokens of one statement say about it."""

    keyword: str = ""
    functions: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    system_tables: set[str] = field(default_factory=set)
    settings: list[str] = field(default_factory=list)
    string_settings: dict[str, str] = field(default_factory=dict)
    """Settings of the statement set to one string literal, as written (quotes included)."""
    outfile: bool = False
    more_statements: bool = False
    empty: bool = False
    nul_at: int | None = None


def _skip_value(tokens: list[Token], i: int) -> int:
    """Index after the setting value starting at ``i``: a signed literal or a bracketed group."""
    while i < len(tokens) and tokens[i].text in ("-", "+"):
        i += 1
    balance = 0
    while i < len(tokens):
        text = tokens[i].text
        balance += text in ("(", "[", "{")
        balance -= text in (")", "]", "}")
        i += 1
        if balance <= 0:
            break
    return i


def _settings_clause(tokens: list[Token], i: int, facts: Facts) -> int:
    """Collect the names (and string values) of ``name = value, ...`` starting at ``i``; returns the index
    after the clause."""
    while i + 1 < len(tokens) and tokens[i].kind in (Kind.WORD, Kind.QUOTED) and tokens[i + 1].text == "=":
        name = _name(tokens[i])
        facts.settings.append(name)
        end = _skip_value(tokens, i + 2)
        if end == i + 3 and tokens[i + 2].kind is Kind.STRING:
            facts.string_settings[name] = tokens[i + 2].text
        i = end
        if i >= len(tokens) or tokens[i].text != ",":
            break
        i += 1
    return i


def inspect(sql: str) -> Facts:
    """Facts of the first statement of ``sql`` (and whether another one follows it)."""
    tokens = list(significant(sql))
    facts = Facts(empty=not tokens)
    words = [t for t in tokens if t.kind is Kind.WORD]
    if words and tokens[0] is words[0]:
        facts.keyword = words[0].upper
    elif words and tokens[0].text == "(" and words[0].upper in ("SELECT", "WITH"):
        facts.keyword = "SELECT"
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1] if i else None
        if tok.text == "\0" and facts.nul_at is None:
            facts.nul_at = tok.start
        if tok.text == ";" and tok.depth == 0:
            facts.more_statements = after is not None
            break
        if tok.kind in (Kind.WORD, Kind.QUOTED):
            name = _name(tok)
            if after is not None and after.text == "(":
                facts.functions.add(name)
            elif before is not None and before.text == "." and i >= 2 and _name(tokens[i - 2]) == "system":
                facts.system_tables.add(name)
            elif before is None or before.text != ".":
                facts.identifiers.add(name)
            if tok.kind is Kind.WORD and tok.upper == "INTO" and after is not None and after.upper == "OUTFILE":
                facts.outfile = True
            if tok.kind is Kind.WORD and (tok.upper == "SETTINGS" or (i == 0 and tok.upper == "SET")):
                i = _settings_clause(tokens, i + 1, facts)
                continue
        i += 1
    return facts


def check_statement(facts: Facts) -> None:
    """What a ClickHouse server refuses over HTTP for every user (a NUL byte would end chdb's query early)."""
    if facts.empty:
        raise QueryError.make(SYNTAX_ERROR, "Empty query")
    if facts.nul_at is not None:
        raise QueryError.make(SYNTAX_ERROR, f"Syntax error: a NUL byte at position {facts.nul_at + 1} "
                                            "(write it as '\\0' inside a string)")
    if facts.more_statements:
        raise QueryError.make(SYNTAX_ERROR, "Multi-statements are not allowed")
    if facts.outfile:
        raise QueryError.make(INTO_OUTFILE_NOT_ALLOWED, "INTO OUTFILE is not allowed")


def setting_allowed(name: str) -> bool:
    return name in SAFE_SETTINGS or (name.startswith(SAFE_SETTING_PREFIXES)
                                     and not any(part in name for part in UNSAFE_SETTING_PARTS))


def _refuse_setting(name: str) -> QueryError:
    return QueryError.make(READONLY, f"Cannot modify '{name}' setting in readonly mode")


class ReadonlyPolicy:
    """What the read-only user may run; ``table_functions`` are all the engine has (any case)."""

    def __init__(self, table_functions: Iterable[str], current_settings: Mapping[str, str]):
        self.denied_functions = frozenset(n.lower() for n in table_functions) - SAFE_TABLE_FUNCTIONS | FILE_FUNCTIONS
        self.current_settings = dict(current_settings)

    def check_settings(self, settings: Mapping[str, str]) -> None:
        """Request settings: a safe one, or any setting left at the value it already has."""
        for name, value in settings.items():
            if not setting_allowed(name) and self.current_settings.get(name) != value:
                raise _refuse_setting(name)

    def check(self, facts: Facts, bind: Mapping[str, str]) -> None:
        """Refuse what the read-only user may not run, with the code a server would answer.

        ``bind`` are the query parameters: an ``Identifier`` parameter names a table too.
        """
        if facts.keyword not in READ_KEYWORDS or (facts.keyword == "SET" and not facts.settings):
            raise QueryError.make(READONLY, "Cannot execute query in readonly mode")
        denied = facts.functions & self.denied_functions
        if denied:
            raise QueryError.make(ACCESS_DENIED, f"Not enough privileges: the read-only user cannot use {min(denied)}()")
        named = {value.strip().strip("`\"").lower().rpartition(".")[2] for value in bind.values()}
        private = (facts.system_tables | facts.identifiers | named) & PRIVATE_SYSTEM_TABLES  # bare: after USE system
        if facts.keyword == "SHOW" and "processlist" in facts.identifiers:
            private.add("processes")
        if private:
            raise QueryError.make(ACCESS_DENIED, f"Not enough privileges: the read-only user cannot read "
                                                 f"system.{min(private)}, which holds every user's queries")
        for name in facts.settings:
            if not setting_allowed(name):
                raise _refuse_setting(name)
