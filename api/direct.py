"""``POST /v1/events`` and ``POST /api/v1/events`` served straight from the ASGI scope.

Ingest is the hot path, and FastAPI's per-request machinery (middleware stack, routing, dependency
solving, Response objects) cost more CPU than the ingest itself. :class:`BillingApi` therefore
answers both ingest paths with the same steps as their routes (:func:`api.auth.authorize`,
:func:`api.routes.events.ingest` or :func:`api.routes.openmeter.ingest_all`, problem documents,
request metrics) and hands every other request to FastAPI. The routes stay registered: they are what
the OpenAPI document describes.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from api.auth import authorize, bearer_token
from api.body import asgi_chunks
from api.connections import closing
from api.context import ApiContext
from api.metrics import record
from api.problems import PROBLEM_JSON, Problem, unexpected
from api.routes.events import ingest
from api.routes.openmeter import ingest_all

INGEST = {"/v1/events": (ingest, 202), "/api/v1/events": (ingest_all, 204)}
"""Path -> (ingest function, success status: 202 with the function's JSON body, or 204 without a body)."""
_JSON = b"application/json"
_PROBLEM = PROBLEM_JSON.encode()


class BillingApi(FastAPI):
    """FastAPI with the direct ingest path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.state.ctx.connections.last_request(scope):
            send = closing(send)
        if scope["type"] == "http" and scope["path"] in INGEST and scope["method"] == "POST":
            await serve_events(self.state.ctx, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _headers(scope: Scope) -> tuple[dict[bytes, str], dict[str, str]]:
    """The request headers this path reads and the ``ce-*`` headers (first occurrence of each)."""
    found: dict[bytes, str] = {}
    ce: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"content-type", b"content-length"):
            found.setdefault(name, value.decode("latin-1"))
        elif name.startswith(b"ce-"):
            ce.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found, ce


async def _respond(send: Send, status: int, body: bytes | None, media: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [] if body is None else [(b"content-length", str(len(body)).encode()), (b"content-type", media)]
    if extra:
        headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body or b""})


async def serve_events(ctx: ApiContext, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one request of an :data:`INGEST` path."""
    started = time.perf_counter()
    path = scope["path"]
    handler, status = INGEST[path]
    headers, ce = _headers(scope)
    try:
        key = authorize(ctx, bearer_token(headers.get(b"authorization")))
        body = await handler(ctx, key, headers.get(b"content-type"), headers.get(b"content-length"),
                             asgi_chunks(receive), ce)
        media, extra = _JSON, None
    except ClientDisconnect:
        return
    except Exception as exc:  # noqa: BLE001 - every error becomes a problem document
        problem = exc if isinstance(exc, Problem) else unexpected(exc, "POST", path)
        status, body, media, extra = problem.status, problem.encode(path), _PROBLEM, problem.headers
    await _respond(send, status, body, media, extra)
    record("POST", path, status, time.perf_counter() - started)
