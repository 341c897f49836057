"""How uvicorn serves the API: request heads (request line and headers) bounded in bytes.

uvicorn's httptools protocol buffers a request head of any size (an 8 MB ``Authorization`` header
is read whole); :class:`BoundedHttpToolsProtocol` answers 431 and closes the connection as soon as
a head grows past ``BILLING_API_MAX_HEADER_BYTES`` (at most one socket read later), or when a head
read at once is larger, before the app sees the request. The h11 protocol gets the same limit through
uvicorn's ``h11_max_incomplete_event_size``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import PROBLEM_JSON, Problem
from billing.settings import Settings, get_settings


def _too_large(limit: int) -> bytes:
    body = Problem(431, f"the request line and headers exceed {limit} bytes",
                   kind="headers-too-large").encode()
    head = (f"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the bytes of a request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_limit = get_settings().api_max_header_bytes
        self.head_bytes = 0
        self.in_head = False
        self.refused = False

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a head that grew past the limit (still incomplete, or parsed whole)."""
        super().data_received(data)
        if self.in_head:
            self.head_bytes += len(data)
        if (self.refused or self.head_bytes > self.head_limit) and not self.transport.is_closing():
            self.transport.write(_too_large(self.head_limit))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes, self.refused = True, 0, False

    def on_headers_complete(self) -> None:
        self.in_head = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.head_limit:
            self.refused = True  # answered by data_received once the parser returns; the app never sees it
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.refused:
            super().on_message_complete()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings of the API that bound request heads."""
    return {"http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": settings.api_max_header_bytes}

