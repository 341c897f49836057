"""Webhook signatures as Standard Webhooks defines them (https://www.standardwebhooks.com).

A message is signed with HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` under the
endpoint's secret; ``webhook-signature`` is ``v1,`` and the base64 digest (several space-separated
signatures are accepted when verifying, for secret rotation). A secret written ``whsec_<base64>`` is
that base64's bytes, as Standard Webhooks libraries read it; any other secret is its UTF-8 bytes.
:func:`verify` is what a receiver runs: it checks the headers, the timestamp's distance from now
(a replayed old message fails) and the signature, in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from billing.core.webhooks.errors import MissingSignatureHeaders, SignatureMismatch, StaleTimestamp

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
"""How far (either way) a webhook's timestamp may be from the receiver's clock: Standard Webhooks' 5 minutes."""
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the bytes of a ``whsec_`` base64 secret, else its UTF-8 bytes.

    Raises ``binascii.Error`` (a ``ValueError``) for a ``whsec_`` secret that is not base64.
    """
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    return secret.encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``msg_id.timestamp.body`` under ``secret``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(secret_key(secret), signed, hashlib.sha256)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of a message sent at ``timestamp`` (Unix seconds)."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, msg_id, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance_s: float = TOLERANCE_S) -> str:
    """Check a received webhook; return its ``webhook-id``.

    ``headers`` are looked up case-insensitively; ``now`` is the receiver's clock (Unix seconds).
    Raises :class:`MissingSignatureHeaders`, :class:`StaleTimestamp` or :class:`SignatureMismatch`.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    missing = [name for name in HEADERS if not lower.get(name)]
    if missing:
        raise MissingSignatureHeaders(f"the webhook has no {', '.join(missing)} header; it was not sent by this service")
    msg_id, stamp, signatures = (lower[name] for name in HEADERS)
    if not (stamp.isascii() and stamp.isdigit()):
        raise MissingSignatureHeaders(f"webhook-timestamp {stamp[:32]!r} is not Unix seconds")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance_s:
        raise StaleTimestamp(f"webhook-timestamp {timestamp} is {abs(now - timestamp):.0f} s from now (tolerance "
                             f"{tolerance_s:.0f} s): an old or replayed message, or a clock off; reject it")
    try:
        expected = signature(secret, msg_id, timestamp, body).encode()
    except (binascii.Error, ValueError):
        raise SignatureMismatch("the secret is not valid base64 after whsec_; check the endpoint's secret") from None
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split()):
        raise SignatureMismatch("no webhook-signature matches the body under this secret: the body was changed, "
                                "or the secret is not this endpoint's")
    return msg_id
