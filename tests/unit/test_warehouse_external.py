"""External tables: their definitions from a request's file parts and parameters."""

from __future__ import annotations

import pytest

from billing.chdb_server.errors import QueryError
from billing.chdb_server.external import ExternalTable, definition_params, external_tables, split_types


def test_types_split_at_top_level_commas_only() -> None:
    assert split_types("UInt8, Decimal(10, 2),Tuple(a Int8, b Map(String, UInt8))") == [
        "UInt8", "Decimal(10, 2)", "Tuple(a Int8, b Map(String, UInt8))"]


def test_structure_types_and_format_come_from_the_parameters() -> None:
    files = {"a": b"1\n", "b": b"x,2\n"}
    params = {"a_structure": "id UInt32", "b_types": "String,Decimal(9, 2)", "b_format": "CSV"}
    assert external_tables(files, params) == [
        ExternalTable("a", b"1\n", "TabSeparated", "id UInt32"),
        ExternalTable("b", b"x,2\n", "CSV", "_1 String, _2 Decimal(9, 2)"),
    ]
    assert definition_params(files) == {"a_structure", "a_types", "a_format", "b_structure", "b_types", "b_format"}


def test_a_table_without_structure_or_types_is_a_400() -> None:
    with pytest.raises(QueryError, match="t_structure or t_types") as caught:
        external_tables({"t": b"1\n"}, {"t_format": "CSV"})
    assert (caught.value.code, caught.value.http_status) == (36, 400)
