"""ClickHouse error codes and their HTTP status, as a ClickHouse server reports them."""

from __future__ import annotations

import re

SYNTAX_ERROR = 62
UNKNOWN_SETTING = 115
READONLY = 164
UNKNOWN_USER = 192
TOO_MANY_SIMULTANEOUS_QUERIES = 202
ACCESS_DENIED = 497
REQUIRED_PASSWORD = 194
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
INVALID_SESSION_TIMEOUT = 374
INTO_OUTFILE_NOT_ALLOWED = 358
AUTHENTICATION_FAILED = 516
BAD_ARGUMENTS = 36
CANNOT_DECOMPRESS = 271
NOT_IMPLEMENTED = 48
QUERY_IS_TOO_LARGE = 229
UNKNOWN_EXCEPTION = 1002

_NAMES = {
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    READONLY: "READONLY",
    REQUIRED_PASSWORD: "REQUIRED_PASSWORD",
    TOO_MANY_SIMULTANEOUS_QUERIES: "TOO_MANY_SIMULTANEOUS_QUERIES",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    INVALID_SESSION_TIMEOUT: "INVALID_SESSION_TIMEOUT",
    INTO_OUTFILE_NOT_ALLOWED: "INTO_OUTFILE_NOT_ALLOWED",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    ACCESS_DENIED: "ACCESS_DENIED",
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    QUERY_IS_TOO_LARGE: "QUERY_IS_TOO_LARGE",
    UNKNOWN_EXCEPTION: "UNKNOWN_EXCEPTION",
}

_STATUS_BY_CODE = {
    REQUIRED_PASSWORD: 401,
    UNKNOWN_USER: 403,
    193: 403,  # WRONG_PASSWORD
    AUTHENTICATION_FAILED: 403,
    ACCESS_DENIED: 403,
    # parse errors, bad arguments and bad data
    **dict.fromkeys((6, 8, 15, 25, 26, 27, 36, 38, 41, 44, 53, 62, 72, 117, 167, 168, 223, 321, 376, 427), 400),
    # unknown table, function, identifier, type, storage, database, setting, aggregate, format, engine
    **dict.fromkeys((46, 47, 50, 56, 60, 63, 73, 81, 115, 336), 404),
    NOT_IMPLEMENTED: 501,
    QUERY_IS_TOO_LARGE: 413,
    76: 503,  # CANNOT_OPEN_FILE
    209: 503,  # SOCKET_TIMEOUT
    159: 408,  # TIMEOUT_EXCEEDED
}

_CODE = re.compile(r"Code: (\d+)\. ")


class QueryError(Exception):
    """A failed request, carrying the ClickHouse error code and the full ``Code: N. DB::Exception`` text."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text

    @classmethod
    def make(cls, code: int, message: str) -> QueryError:
        """An error raised by the endpoint itself, worded like the engine's own."""
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({_NAMES.get(code, 'UNKNOWN')})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> QueryError:
        """Wrap an exception raised by chdb, keeping its ClickHouse code."""
        text = str(exc).strip()
        match = _CODE.search(text)
        if match is None:
            return cls.make(UNKNOWN_EXCEPTION, text or type(exc).__name__)
        text = text[match.start():]
        while text.startswith(match.group(0) + "DB::Exception: Code: "):  # the engine wraps some errors twice
            text = text[len(match.group(0) + "DB::Exception: "):]
        return cls(int(match.group(1)), text)

    @property
    def http_status(self) -> int:
        return http_status(self.code)


def http_status(code: int) -> int:
    """The HTTP status a ClickHouse server answers with for error ``code``."""
    return _STATUS_BY_CODE.get(code, 500)
