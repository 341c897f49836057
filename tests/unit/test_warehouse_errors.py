"""Error codes, HTTP statuses and credentials of the local ClickHouse endpoint (no server)."""

from __future__ import annotations

import base64

import pytest

from billing.chdb_server.auth import User, Users, credentials
from billing.chdb_server.errors import QueryError, http_status


def test_engine_errors_keep_their_code_and_map_to_the_server_status() -> None:
    error = QueryError.from_engine(RuntimeError("Failed: Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)"))
    assert error.code == 60 and error.http_status == 404
    assert error.text.startswith("Code: 60. DB::Exception")
    assert http_status(62) == 400 and http_status(516) == 403 and http_status(164) == 500


def test_errors_without_a_code_are_unknown_exceptions() -> None:
    error = QueryError.from_engine(RuntimeError("boom"))
    assert error.code == 1002 and "boom" in error.text


def test_credentials_sources() -> None:
    basic = "Basic " + base64.b64encode(b"ann:s3:cret").decode()
    assert credentials({"Authorization": basic}, {}) == ("ann", "s3:cret")
    assert credentials({"X-ClickHouse-User": "bob", "X-ClickHouse-Key": "k"}, {}) == ("bob", "k")
    assert credentials({}, {"user": "cy", "password": "p"}) == ("cy", "p")
    assert credentials({}, {}) == ("default", "")


def test_authentication() -> None:
    users = Users([User("default", "", False), User("dash", "pw", True)])
    assert users.authenticate("dash", "pw").readonly
    for name, password in (("dash", "nope"), ("ghost", ""), ("default", "x")):
        with pytest.raises(QueryError) as info:
            users.authenticate(name, password)
        assert info.value.code == 516 and info.value.http_status == 403


def test_an_error_the_engine_wrapped_twice_keeps_one_prefix() -> None:
    wrapped = "Code: 27. DB::Exception: Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)"
    error = QueryError.from_engine(RuntimeError(wrapped))
    assert error.text == "Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)"
    assert error.http_status == 400


def test_access_denied_is_forbidden() -> None:
    assert QueryError.make(497, "no grant").http_status == 403
    assert QueryError.make(497, "no grant").text.endswith("(ACCESS_DENIED)")
