"""RFC 7807 problem details: every error the API returns is ``application/problem+json``.

Raise :class:`Problem` anywhere in a request; :func:`install` registers the handlers that turn it,
FastAPI's request validation errors, plain HTTP errors and unexpected exceptions into problems.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://billing.example/problems/"

log = logging.getLogger("api")


class Problem(Exception):
    """An error response: ``status``, a short ``title``, a ``detail`` for humans, extra members."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, kind: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.kind = kind or self.title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        document = {"type": TYPE_BASE + self.kind, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            document["instance"] = instance
        return {**document, **self.extra}

    def encode(self, instance: str | None = None) -> bytes:
        """The problem document as JSON."""
        return orjson.dumps(self.body(instance), default=str)


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    """``problem`` as an ``application/problem+json`` response."""
    return Response(problem.encode(instance), status_code=problem.status, media_type=PROBLEM_JSON,
                    headers=problem.headers)


def unexpected(exc: Exception, method: str, path: str) -> Problem:
    """Log an unhandled error of a request and describe it as a 500 problem."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return Problem(500, f"internal error ({exc.__class__.__name__}); see the API log", kind="internal-error")


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    errors = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    return "; ".join(f"{e['field']}: {e['reason']}" for e in errors) or "invalid request", errors


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail, errors = _validation_detail(exc)
        return problem_response(Problem(422, detail, kind="invalid-request", errors=errors), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
        return problem_response(Problem(exc.status_code, detail, headers=dict(exc.headers or {})), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return problem_response(unexpected(exc, request.method, request.url.path), request.url.path)
