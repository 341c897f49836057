"""Form request bodies of the local ClickHouse endpoint: multipart and urlencoded fields (no server)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

from billing.chdb_server import form
from billing.chdb_server.body import Rechunker
from billing.chdb_server.errors import QueryError
from billing.chdb_server.form import parse_multipart, parse_urlencoded, read_form

_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters='"\\%'), min_size=1, max_size=20)
_values = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


def _body(data: bytes, piece: int = 7) -> Rechunker:
    return Rechunker(iter([data[i:i + piece] for i in range(0, len(data), piece)]))


def _rest(body: Rechunker) -> bytes:
    return b"".join(body.rest())


@settings(max_examples=60, deadline=None)
@given(fields=st.dictionaries(_names, _values, max_size=8))
@example(fields={"<0>": "", "<>": "angle brackets are part of the name", "'q'": "", "a;b=c": ""})
def test_multipart_fields_from_urllib3_round_trip(fields: dict[str, str]) -> None:
    data, content_type = encode_multipart_formdata(fields)
    assert read_form(content_type, {}, _body(data)) == fields


@settings(max_examples=60, deadline=None)
@given(fields=st.dictionaries(_names, _values, max_size=8), query=_values)
def test_urlencoded_fields_round_trip(fields: dict[str, str], query: str) -> None:
    fields = {**fields, "query": query}
    body = _body(urlencode(fields).encode())
    assert read_form("application/x-www-form-urlencoded", {}, body) == fields
    assert body.eof


def test_clickhouse_connect_shaped_multipart_body() -> None:
    ids = "[" + ",".join(f"'c{i}'" for i in range(20_000)) + "]"
    data, content_type = encode_multipart_formdata({"query": "SELECT count() WHERE x IN {ids:Array(String)}\n FORMAT Native",
                                     "param_ids": ids})
    fields = read_form(content_type, {"database": "db"}, _body(data, 1 << 16))
    assert fields == {"query": "SELECT count() WHERE x IN {ids:Array(String)}\n FORMAT Native", "param_ids": ids}


def test_multipart_content_type_is_case_insensitive_and_boundary_may_be_quoted() -> None:
    data = b'--xyz\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT 1\r\n--xyz--\r\n'
    assert read_form('Multipart/Form-Data; boundary="xyz"', {}, _body(data)) == {"query": "SELECT 1"}


def test_preamble_padding_and_part_content_type_are_tolerated() -> None:
    data = (b"ignored preamble\r\n--b  \r\nContent-Type: text/plain; charset=utf-8\r\n"
            b'Content-Disposition: form-data; name="param_x"\r\n\r\nline 1\r\nline 2\r\n--b--')
    assert parse_multipart(data, b"b") == {"param_x": "line 1\r\nline 2"}


def test_rfc2231_field_name() -> None:
    data = b"--b\r\nContent-Disposition: form-data; name*=utf-8''param_%C3%A9\r\n\r\nv\r\n--b--\r\n"
    assert parse_multipart(data, b"b") == {"param_\u00e9": "v"}


@pytest.mark.parametrize("data, reason", [
    (b'Content-Disposition: form-data; name="q"\r\n\r\nv', "boundary does not occur"),
    (b'--b\r\nContent-Disposition: form-data; name="q"\r\n\r\nv', "closing boundary"),
    (b'--b\r\nContent-Disposition: form-data; name="q"', "end of headers"),
    (b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--", "Content-Disposition"),
    (b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--", "no field name"),
    (b'--b\r\nContent-Disposition: form-data; name="q"\r\n\r\n\xff\r\n--b--', "field 'q' is not valid UTF-8"),
    (b'--bjunk\r\nContent-Disposition: form-data; name="q"\r\n\r\nv\r\n--b--', "not followed by a line break"),
])
def test_malformed_multipart_is_a_400(data: bytes, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_multipart(data, b"b")
    assert caught.value.http_status == 400
    assert reason in caught.value.text and "(BAD_ARGUMENTS)" in caught.value.text


def test_multipart_without_boundary_is_a_400() -> None:
    with pytest.raises(QueryError, match="no boundary") as caught:
        read_form("multipart/form-data", {}, _body(b"x"))
    assert caught.value.http_status == 400


def test_file_parts_are_external_tables_kept_byte_for_byte() -> None:
    data, content_type = encode_multipart_formdata({"query": "SELECT * FROM t", "t": ("t.csv", b"1,\xff\r\n", "text/csv")})
    fields = read_form(content_type, {}, _body(data))
    assert fields == {"query": "SELECT * FROM t"}
    assert fields.files == {"t": b"1,\xff\r\n"}


def test_too_large_body_is_a_413_before_all_of_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(form, "MAX_FORM_BYTES", 100)
    data, content_type = encode_multipart_formdata({"query": "SELECT 1", "param_x": "y" * 200})
    body = _body(data + b"never read" * 1000, piece=50)
    with pytest.raises(QueryError, match="larger than 100 bytes") as caught:
        read_form(content_type, {}, body)
    assert caught.value.http_status == 413 and "(QUERY_IS_TOO_LARGE)" in caught.value.text
    assert not body.eof
    with pytest.raises(QueryError, match="larger than 100 bytes"):
        read_form("application/x-www-form-urlencoded", {}, _body(urlencode({"query": "x" * 200}).encode()))


def test_too_many_fields_and_too_long_names_are_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(form, "MAX_FIELDS", 3)
    many = {f"param_{i}": "v" for i in range(4)}
    data, content_type = encode_multipart_formdata(many)
    for parse in (lambda: read_form(content_type, {}, _body(data)), lambda: parse_urlencoded(urlencode(many).encode())):
        with pytest.raises(QueryError, match="more than 3 fields") as caught:
            parse()
        assert caught.value.http_status == 413
    with pytest.raises(QueryError, match="field name is longer") as caught:
        parse_urlencoded(urlencode({"p" * 1025: "v"}).encode())
    assert caught.value.http_status == 413


def test_urlencoded_non_utf8_value_is_a_400() -> None:
    with pytest.raises(QueryError, match="not valid UTF-8") as caught:
        parse_urlencoded(b"query=%FF")
    assert caught.value.http_status == 400


@pytest.mark.parametrize("content_type, url, data", [
    # curl --data-binary sends every body as urlencoded: SQL and INSERT data stay what they are
    ("application/x-www-form-urlencoded", {}, b"SELECT 1"),
    ("application/x-www-form-urlencoded", {}, b"INSERT INTO t FORMAT TSKV\nquery=1\n"),
    ("application/x-www-form-urlencoded", {"query": "INSERT INTO t FORMAT TSKV"}, b"query=1"),
    ("application/x-www-form-urlencoded", {}, b"param_a=1&param_b=2"),
    ("application/x-www-form-urlencoded", {}, b""),
    ("text/plain; charset=utf-8", {}, b"query=SELECT+1"),
    ("application/octet-stream", {}, b"--b\r\n"),
    (None, {}, b"query=SELECT+1"),
])
def test_bodies_that_are_no_form_are_left_untouched(content_type: str | None, url: dict[str, str], data: bytes) -> None:
    body = _body(data, piece=3)
    assert read_form(content_type, url, body) is None
    assert _rest(body) == data


def test_urlencoded_sniffing_gives_back_a_large_sql_body_whole() -> None:
    data = b"query_log_x=1" * 1000 + b" " + b"y" * 5000
    body = _body(data, piece=1000)
    assert read_form("application/x-www-form-urlencoded", {}, body) is None
    assert _rest(body) == data
