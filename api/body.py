"""Reading request bodies with a size limit (413 before the whole body is buffered)."""

from __future__ import annotations

from fastapi import Request

from api.problems import Problem


def _too_large(limit: int) -> Problem:
    return Problem(413, f"request body exceeds {limit} bytes", kind="body-too-large")


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or a 413 Problem as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
