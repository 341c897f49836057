"""Reading request bodies with a size limit (413 before the whole body is buffered)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from api.problems import Problem


def _too_large(limit: int) -> Problem:
    return Problem(413, f"request body exceeds {limit} bytes", kind="body-too-large")


async def read_limited(content_length: str | None, chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The body (``chunks``), or a 413 Problem as soon as it is known to exceed ``limit`` bytes."""
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit)
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body chunks of an ASGI request; ClientDisconnect when the client goes away first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
