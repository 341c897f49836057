"""External data: the file parts of a request, as temporary tables its query can read.

Like a ClickHouse server, a file part named ``t`` becomes table ``t`` for the one query, described
by the URL parameters ``t_structure`` (``"a UInt32, b String"``) or ``t_types`` (``"UInt32,String"``,
columns named ``_1``, ``_2``, ...) and read in ``t_format`` (default TabSeparated). The engine
parses structure and data itself: the part is spooled to a file and loaded with ``file()``, the
definitions reaching it only as string literals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from billing.chdb_server.engine import literal
from billing.chdb_server.errors import BAD_ARGUMENTS, QueryError

DEFAULT_FORMAT = "TabSeparated"
PARAM_SUFFIXES = ("_structure", "_types", "_format")

Spool = Callable[[], AbstractContextManager[tuple[str, BinaryIO]]]


@dataclass(frozen=True)
class ExternalTable:
    name: str
    data: bytes
    fmt: str
    structure: str


def definition_params(names: Iterable[str]) -> set[str]:
    """The URL parameters that describe external tables ``names`` (they are not engine settings)."""
    return {name + suffix for name in names for suffix in PARAM_SUFFIXES}


def external_tables(files: Mapping[str, bytes], params: Mapping[str, str]) -> list[ExternalTable]:
    """The external tables of a request from its file parts and their ``<name>_*`` parameters."""
    tables = []
    for name, data in files.items():
        structure = params.get(f"{name}_structure")
        types = params.get(f"{name}_types")
        if not structure and types:
            structure = ", ".join(f"_{i} {t}" for i, t in enumerate(split_types(types), 1))
        if not structure:
            raise QueryError.make(BAD_ARGUMENTS, f"Neither structure nor types have been provided for external "
                                                 f"table {name}. Use fields {name}_structure or {name}_types to do so")
        tables.append(ExternalTable(name, data, params.get(f"{name}_format") or DEFAULT_FORMAT, structure))
    return tables


def split_types(types: str) -> list[str]:
    """``"UInt8,Decimal(10, 2),Tuple(a Int8, b String)"`` -> each type (commas inside brackets kept)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(types):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(types[start:i].strip())
            start = i + 1
    parts.append(types[start:].strip())
    return parts


@contextmanager
def loaded(conn, tables: list[ExternalTable], spool: Spool) -> Iterator[None]:
    """Create ``tables`` as temporary tables on ``conn`` for the duration of one query."""
    created: list[str] = []
    try:
        for table in tables:
            with spool() as (path, fh):
                fh.write(table.data)
                fh.close()
                sql = (f"CREATE TEMPORARY TABLE {_identifier(table.name)} ENGINE = Memory AS SELECT * FROM "
                       f"file({literal(path)}, {literal(table.fmt)}, {literal(table.structure)})")
                try:
                    conn.query(sql, "TabSeparated")
                except RuntimeError as exc:
                    error = QueryError.from_engine(exc)
                    raise QueryError(error.code, error.text.replace(path, f"external table {table.name}")) from None
            created.append(table.name)
        yield
    finally:
        for name in created:
            conn.query(f"DROP TEMPORARY TABLE IF EXISTS {_identifier(name)}", "TabSeparated")


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
