"""Request authentication (API key as a bearer token), admin checks and per-key rate limits."""

from __future__ import annotations

import math

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext, context
from api.keys import ApiKey
from api.problems import Problem

bearer = HTTPBearer(auto_error=False, description="An API key from `billing apikey create`.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header value (as :data:`bearer` reads them)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authorize(ctx: ApiContext, token: str | None) -> ApiKey:
    """The API key of ``token``, after its rate limit; a 401 or 429 Problem otherwise."""
    if token is None:
        raise Problem(401, "missing API key: send `Authorization: Bearer <key>`", kind="unauthenticated",
                      headers=CHALLENGE)
    key = ctx.keys.get(token)
    if key is None:
        raise Problem(401, "unknown or revoked API key", kind="unauthenticated", headers=CHALLENGE)
    if key.rate_per_s:
        rate, burst = key.rate_per_s, max(1.0, key.rate_per_s)
    else:
        rate, burst = ctx.settings.api_rate_per_s, float(ctx.settings.api_rate_burst)
    wait = ctx.limiter.acquire(key.key_id, rate, burst)
    if wait:
        retry = max(1, math.ceil(wait))
        raise Problem(429, f"rate limit of {rate:g} requests/s exceeded for key {key.key_id}; retry in {retry}s",
                      kind="rate-limited", headers={"Retry-After": str(retry)})
    return key


async def authenticated(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
    """The API key of the request, after its rate limit; 401 or 429 otherwise."""
    return authorize(context(request), credentials.credentials if credentials else None)


async def admin(key: ApiKey = Depends(authenticated)) -> ApiKey:
    """An admin key; 403 for tenant keys."""
    if not key.admin:
        raise Problem(403, f"key {key.key_id} is not an admin key", kind="forbidden")
    return key


def require_access(key: ApiKey, customer_id: str) -> None:
    """403 unless ``key`` may read or write data of ``customer_id``."""
    if not key.may_access(customer_id):
        raise Problem(403, f"key {key.key_id} has no access to customer {customer_id!r}", kind="forbidden")
