"""Webhook endpoints as data, loaded from YAML or JSON files like the alert rules.

An endpoints file holds an ``endpoints`` list; every endpoint has an ``id``, an http(s) ``url``, a
signing ``secret`` and the event ``types`` it subscribes to, and may name the ``customers`` whose
events it gets (absent: every customer's, the tenant's endpoint)::

    endpoints:
      - id: crm
        url: https://crm.example.com/hooks/billing
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
        types: [invoice.finalized, payment.succeeded, payment.failed]
      - id: acme-ops
        url: https://ops.acme.example/alerts
        secret: a-long-random-string-of-16-or-more
        types: [usage.threshold.exceeded, usage.anomaly.detected]
        customers: [cus-acme]

Unknown keys are errors. Every problem raises a specific :class:`~billing.core.webhooks.errors.EndpointError`
naming the file, the endpoint and the field.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from billing.core.contracts import Id, clip
from billing.core.pricing.catalog import data_files, read_document
from billing.core.webhooks.errors import (
    DuplicateEndpoint,
    EndpointError,
    InvalidEndpointUrl,
    InvalidSecret,
    MissingSecret,
    UnknownEndpoint,
    UnknownEventType,
)
from billing.core.webhooks.events import EventType
from billing.core.webhooks.signing import secret_key

EXAMPLE_ENDPOINTS = Path(str(resources.files("billing.core.webhooks") / "endpoints.yaml"))
"""The example endpoints shipped as package data."""
MIN_SECRET_BYTES = 16


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host and no whitespace."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not is_http_url(value):
        raise InvalidEndpointUrl(f"{clip(value)} is not an absolute http(s) URL; write e.g. https://example.com/hooks/billing")
    return value


def _secret(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingSecret("the secret is empty; every endpoint needs one to sign its webhooks "
                            "(e.g. whsec_ and base64 of 24 random bytes)")
    if not isinstance(value, str):
        raise InvalidSecret("the secret must be a string")
    try:
        key = secret_key(value)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a secret starting with whsec_ must continue in base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"the secret has {len(key)} bytes; use at least {MIN_SECRET_BYTES} random bytes")
    return value


def _event_type(value: Any) -> EventType:
    try:
        return EventType(value)
    except ValueError:
        raise UnknownEventType(f"unknown event type {clip(value)}; known: {', '.join(EventType)}") from None


class Endpoint(BaseModel):
    """One receiver of webhooks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    url: Annotated[str, BeforeValidator(_url)] = Field(description="Where the webhooks are POSTed (http or https).")
    secret: Annotated[str, BeforeValidator(_secret)] = Field(repr=False, description="The signing secret.")
    types: tuple[Annotated[EventType, BeforeValidator(_event_type)], ...] = Field(description="Event types it gets.")
    customers: tuple[Id, ...] | None = Field(default=None, description="Customers whose events it gets; absent = every one.")
    description: str | None = None

    @field_validator("types")
    @classmethod
    def _some_types(cls, value: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if not value:
            raise UnknownEventType(f"no event types, so nothing is ever sent; list some of: {', '.join(EventType)}")
        return tuple(dict.fromkeys(value))

    @field_validator("customers")
    @classmethod
    def _some_customers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise EndpointError("an empty customers list gets nothing; list customer ids or leave customers out")
        return value

    def wants(self, event_type: EventType, customer_id: str) -> bool:
        """Whether this endpoint subscribes to ``event_type`` events of ``customer_id``."""
        return event_type in self.types and (self.customers is None or customer_id in self.customers)


class EndpointsFile(BaseModel):
    """The content of one endpoints file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: list[Endpoint]


@dataclass
class EndpointSet:
    """Endpoints by id, merged from one or more files."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.endpoints.values())

    def __len__(self) -> int:
        return len(self.endpoints)

    def __getitem__(self, endpoint_id: str) -> Endpoint:
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise UnknownEndpoint(f"no endpoint {endpoint_id!r} in the endpoints files; known: "
                                  f"{', '.join(self.endpoints) or 'none'}") from None

    def add(self, endpoints: Iterable[Endpoint], source: str) -> None:
        """Merge ``endpoints`` read from ``source``; an id defined twice raises :class:`DuplicateEndpoint`."""
        for endpoint in endpoints:
            if endpoint.id in self.endpoints:
                raise DuplicateEndpoint(f"{source}: endpoint {endpoint.id!r} is defined twice; give each its own id")
            self.endpoints[endpoint.id] = endpoint

    def subscribed(self, event_type: EventType, customer_id: str) -> list[Endpoint]:
        """The endpoints that get ``event_type`` events of ``customer_id``."""
        return [endpoint for endpoint in self if endpoint.wants(event_type, customer_id)]


def parse_endpoints(document: Any, source: str) -> list[Endpoint]:
    """Validate a parsed endpoints document; every problem is listed, located, in one error whose
    class is that of the first problem."""
    if not isinstance(document, dict):
        raise EndpointError(f"{source}: expected a mapping with an `endpoints:` list at the top")
    try:
        return EndpointsFile.model_validate(document).endpoints
    except ValidationError as exc:
        errors = exc.errors()
        raise _kind(errors[0])(f"{source}: " + "; ".join(_describe(error, document) for error in errors)) from None


def load_endpoints(paths: Iterable[Path]) -> EndpointSet:
    """Load and merge endpoints files; a directory means every ``*.yaml``/``*.yml``/``*.json`` in it."""
    endpoints = EndpointSet()
    for path in data_files(paths):
        endpoints.add(parse_endpoints(read_document(path), str(path)), str(path))
    return endpoints


def _kind(error: dict) -> type[EndpointError]:
    found = error.get("ctx", {}).get("error")
    if isinstance(found, EndpointError):
        return type(found)
    return MissingSecret if error["type"] == "missing" and error["loc"][-1:] == ("secret",) else EndpointError


def _describe(error: dict, document: Any) -> str:
    """``endpoint 'crm' > types[2]: message`` for one pydantic error."""
    parts: list[str] = []
    node: Any = document
    for key in error["loc"]:
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
            if parts == ["endpoints"]:
                endpoint_id = node.get("id") if isinstance(node, dict) else None
                parts = [f"endpoint {endpoint_id!r}" if isinstance(endpoint_id, str) else f"endpoint {key + 1}"]
            else:
                parts[-1] += f"[{key + 1}]"
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(str(key))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (typo?)"
    elif error["type"] == "missing" and error["loc"][-1:] == ("secret",):
        message = "no secret; every endpoint needs one to sign its webhooks (e.g. whsec_ and base64 of 24 random bytes)"
    return f"{' > '.join(parts) or 'top level'}: {message}"
