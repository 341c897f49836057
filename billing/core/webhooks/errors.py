"""Errors of webhook endpoints and signatures: one class per kind of mistake.

Endpoint errors are ``ValueError`` too, so a model's validators raise them directly; the loader finds
the class again in pydantic's error and raises it with the file and the endpoint located.
"""

from __future__ import annotations

from billing.core.errors import BillingError, ConfigError


class EndpointError(ConfigError, ValueError):
    """An endpoints file or an endpoint is invalid (base class; also malformed fields and unknown keys)."""


class InvalidEndpointUrl(EndpointError):
    """An endpoint URL that is not an absolute http(s) URL."""


class MissingSecret(EndpointError):
    """An endpoint without a signing secret (or with an empty one)."""


class InvalidSecret(EndpointError):
    """A signing secret too short to be safe, or a ``whsec_`` secret that is not base64."""


class UnknownEventType(EndpointError):
    """An endpoint subscribes to an event type that does not exist."""


class DuplicateEndpoint(EndpointError):
    """Two endpoints share an id."""


class UnknownEndpoint(ConfigError):
    """An endpoint id that no endpoints file defines."""


class SignatureError(BillingError, ValueError):
    """A webhook whose signature does not verify (base class)."""


class MissingSignatureHeaders(SignatureError):
    """The webhook-id, webhook-timestamp or webhook-signature header is absent or malformed."""


class StaleTimestamp(SignatureError):
    """The webhook's timestamp is further from now than the tolerance (a replayed or delayed message)."""


class SignatureMismatch(SignatureError):
    """No signature matches the body and the secret."""
