"""Reading an HTTP request body as a stream of chunks (Content-Length or chunked encoding)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 1 << 20


class BadRequestBody(ValueError):
    """The body does not follow its framing (bad chunk header, early end of stream)."""


def _exact(rfile: BinaryIO, size: int) -> Iterator[bytes]:
    while size > 0:
        data = rfile.read(min(size, CHUNK))
        if not data:
            raise BadRequestBody("request body ended early")
        size -= len(data)
        yield data


def iter_body(rfile: BinaryIO, content_length: str | None, transfer_encoding: str | None) -> Iterator[bytes]:
    """Yield the raw (still content-encoded) body of a request."""
    if (transfer_encoding or "").strip().lower() == "chunked":
        while True:
            line = rfile.readline(65537)
            if not line.endswith(b"\n"):
                raise BadRequestBody("malformed chunk header")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequestBody(f"malformed chunk size {line[:40]!r}") from None
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from _exact(rfile, size)
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequestBody("missing CRLF after a chunk")
    elif content_length:
        yield from _exact(rfile, int(content_length))


class Rechunker:
    """Pull-based reader over an iterator of chunks: take a head, then the rest as chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self.eof = False

    def read_until(self, buffer: bytearray, size: int) -> bytearray:
        """Append chunks to ``buffer`` until it holds ``size`` bytes or the body ends."""
        while len(buffer) < size and not self.eof:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
            else:
                buffer += chunk
        return buffer

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of the chunks not read yet."""
        if data:
            self._chunks = itertools.chain([data], self._chunks)
            self.eof = False

    def rest(self) -> Iterator[bytes]:
        """The remaining chunks, batched to about 1 MiB (fewer engine calls for small frames)."""
        pending = bytearray()
        for chunk in self._chunks:
            pending += chunk
            if len(pending) >= CHUNK:
                yield bytes(pending)
                pending.clear()
        self.eof = True
        if pending:
            yield bytes(pending)
