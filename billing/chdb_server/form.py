"""Request parameters sent as a form in the request body instead of the URL.

clickhouse-connect moves the query and its ``param_*`` values into a ``multipart/form-data``
body when they would make the URL too long (and always with ``form_encode_query_params``), as
a ClickHouse server accepts. Form fields mean what the URL parameters of the same name mean.

``application/x-www-form-urlencoded`` is ambiguous: curl sends that Content-Type for any
``--data`` body, so ClickHouse reads such a body as SQL (or INSERT data). Such a body is
therefore read as a form only when the URL has no ``query`` and the whole body is
form-encoded text (no spaces, quotes or line breaks: no SQL statement looks like that)
with a ``query`` field; otherwise it stays the SQL text it always was.

File parts of a multipart body (``curl -F 't=@t.tsv'``, clickhouse-connect ``external_data``)
are external tables for the query: :class:`Fields` carries them by field name.

A form is buffered, so its size is limited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value
from urllib.parse import parse_qsl

from billing.chdb_server.body import Rechunker
from billing.chdb_server.errors import BAD_ARGUMENTS, QUERY_IS_TOO_LARGE, QueryError

MAX_FORM_BYTES = 64 << 20
MAX_FIELDS = 10_000
MAX_NAME_BYTES = 1024

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"

_FORM_TEXT = re.compile(rb"[A-Za-z0-9%+=&*._~-]*")


class Fields(dict[str, str]):
    """The text fields of a form; ``files`` holds the content of its file parts by field name."""

    def __init__(self, fields: Mapping[str, str] | None = None, files: Mapping[str, bytes] | None = None):
        super().__init__(fields or {})
        self.files = dict(files or {})


def read_form(content_type: str | None, url_params: Mapping[str, str], body: Rechunker) -> Fields | None:
    """The fields of a form body, which is consumed; None (body untouched) when the body is no form."""
    header = Message()
    header["Content-Type"] = content_type or "application/octet-stream"
    kind = header.get_content_type()
    if kind == MULTIPART:
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise _malformed(MULTIPART, "the Content-Type has no boundary")
        return parse_multipart(_read_all(body), boundary.encode("latin-1"))
    if kind != URLENCODED or "query" in url_params:
        return None
    data = bytearray()
    while not body.eof:
        checked = len(data)
        body.read_until(data, checked + 1)
        if not _FORM_TEXT.fullmatch(data, checked):
            body.unread(bytes(data))
            return None
        _check_size(len(data))
    fields = parse_urlencoded(bytes(data))
    if "query" not in fields:
        body.unread(bytes(data))
        return None
    return fields


def parse_urlencoded(data: bytes) -> Fields:
    """Fields of an ``application/x-www-form-urlencoded`` body (the last value of a repeated name wins)."""
    try:
        pairs = parse_qsl(data.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise _malformed(URLENCODED, f"a field is not valid UTF-8 ({exc.reason})") from None
    except ValueError:
        raise _too_large(f"more than {MAX_FIELDS} fields") from None
    for name, _ in pairs:
        _check_name(name)
    return Fields(dict(pairs))


def parse_multipart(data: bytes, boundary: bytes) -> Fields:
    """Fields and file parts (external tables) of a ``multipart/form-data`` body (RFC 7578)."""
    delimiter = b"--" + boundary
    if data.startswith(delimiter):
        pos = len(delimiter)
    else:
        start = data.find(b"\r\n" + delimiter)
        if start < 0:
            raise _malformed(MULTIPART, "the boundary does not occur in the body")
        pos = start + 2 + len(delimiter)
    fields = Fields()
    while not data.startswith(b"--", pos):
        line_end = data.find(b"\r\n", pos)
        if line_end < 0 or data[pos:line_end].strip(b" \t"):
            raise _malformed(MULTIPART, "a boundary line is not followed by a line break")
        head_end = data.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            raise _malformed(MULTIPART, "a part has no end of headers")
        content_end = data.find(b"\r\n" + delimiter, head_end + 4)
        if content_end < 0:
            raise _malformed(MULTIPART, "the body ends without its closing boundary")
        name, is_file = _part_name(data[line_end + 2:head_end])
        if is_file:
            fields.files[name] = data[head_end + 4:content_end]
        else:
            fields[name] = _text(data[head_end + 4:content_end], f"field '{name}'")
        if len(fields) + len(fields.files) > MAX_FIELDS:
            raise _too_large(f"more than {MAX_FIELDS} fields")
        pos = content_end + 2 + len(delimiter)
    return fields


def _part_name(headers: bytes) -> tuple[str, bool]:
    """The field name of a part, from its Content-Disposition header, and whether it is a file."""
    part = HeaderParser().parsestr(_text(headers, "the headers of a part"))
    if part.get_content_disposition() != "form-data":
        raise _malformed(MULTIPART, "a part has no 'Content-Disposition: form-data' header")
    raw = part.get_param("name", header="Content-Disposition", unquote=False)
    name = _unquoted(collapse_rfc2231_value(raw) if isinstance(raw, tuple) else raw or "")
    if not name:
        raise _malformed(MULTIPART, "a part has no field name")
    _check_name(name)
    return name, part.get_filename() is not None


def _unquoted(value: str) -> str:
    """A parameter value without its double quotes and backslash escapes (the email package's own unquoting
    also strips angle brackets, which are legal in a field name)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(MULTIPART, f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _read_all(body: Rechunker) -> bytes:
    data = bytearray()
    while not body.eof:
        body.read_until(data, len(data) + 1)
        _check_size(len(data))
    return bytes(data)


def _check_size(size: int) -> None:
    if size > MAX_FORM_BYTES:
        raise _too_large(f"the form body is larger than {MAX_FORM_BYTES} bytes")


def _check_name(name: str) -> None:
    if len(name.encode()) > MAX_NAME_BYTES:
        raise _too_large(f"a field name is longer than {MAX_NAME_BYTES} bytes")


def _malformed(kind: str, reason: str) -> QueryError:
    return QueryError.make(BAD_ARGUMENTS, f"Cannot parse the {kind} request body: {reason}")


def _too_large(reason: str) -> QueryError:
    return QueryError.make(QUERY_IS_TOO_LARGE, f"Request form is too large: {reason}")
