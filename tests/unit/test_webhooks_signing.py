"""Webhook signatures: the Standard Webhooks test vector, and verification refusing a tampered body,
a wrong secret, an old or future timestamp and missing headers (property-tested)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.core.webhooks.errors import MissingSignatureHeaders, SignatureMismatch, StaleTimestamp
from billing.core.webhooks.signing import TOLERANCE_S, sign, signature, verify

VECTOR = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
"""The test vector published with the Standard Webhooks specification."""

secrets_ = st.one_of(st.text(min_size=16, max_size=64).filter(lambda s: not s.startswith("whsec_")),
                     st.binary(min_size=16, max_size=48).map(lambda b: "whsec_" + base64.b64encode(b).decode()))
ids = st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True)
bodies = st.binary(max_size=2048)
stamps = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


def test_signature_matches_the_standard_webhooks_vector():
    secret, msg_id, timestamp, body = VECTOR
    assert signature(secret, msg_id, timestamp, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify(secret, sign(secret, msg_id, timestamp, body), body, now=timestamp + 10) == msg_id


@given(secrets_, ids, stamps, bodies, st.integers(-TOLERANCE_S, TOLERANCE_S))
def test_a_signed_message_verifies_within_the_tolerance(secret, msg_id, timestamp, body, skew):
    headers = {name.title(): value for name, value in sign(secret, msg_id, timestamp, body).items()}  # any header case
    assert verify(secret, headers, body, now=timestamp + skew) == msg_id


@given(secrets_, ids, stamps, bodies, st.binary(min_size=1, max_size=8), st.integers(min_value=0))
def test_a_tampered_body_fails(secret, msg_id, timestamp, body, extra, where):
    tampered = body[: where % (len(body) + 1)] + extra + body[where % (len(body) + 1):]
    headers = sign(secret, msg_id, timestamp, body)
    with pytest.raises(SignatureMismatch, match="body was changed"):
        verify(secret, headers, tampered, now=timestamp)


@given(secrets_, secrets_, ids, stamps, bodies)
def test_a_wrong_secret_fails(secret, other, msg_id, timestamp, body):
    headers = sign(secret, msg_id, timestamp, body)
    if signature(other, msg_id, timestamp, body) == headers["webhook-signature"]:
        return  # the same key (e.g. a text secret and its whsec_ spelling)
    with pytest.raises(SignatureMismatch):
        verify(other, headers, body, now=timestamp)


@given(secrets_, ids, stamps, bodies, st.integers(min_value=TOLERANCE_S + 1, max_value=10**7), st.booleans())
def test_an_old_or_future_timestamp_fails_even_with_a_valid_signature(secret, msg_id, timestamp, body, off, future):
    headers = sign(secret, msg_id, timestamp, body)
    with pytest.raises(StaleTimestamp, match="tolerance"):
        verify(secret, headers, body, now=timestamp - off if future else timestamp + off)


@given(secrets_, ids, stamps, bodies, st.integers(min_value=1, max_value=10**6))
def test_a_moved_timestamp_or_id_fails(secret, msg_id, timestamp, body, shift):
    headers = sign(secret, msg_id, timestamp, body)
    moved = {**headers, "webhook-timestamp": str(timestamp + shift % TOLERANCE_S + 1)}
    with pytest.raises(SignatureMismatch):
        verify(secret, moved, body, now=timestamp)
    with pytest.raises(SignatureMismatch):
        verify(secret, {**headers, "webhook-id": msg_id + "x"}, body, now=timestamp)


def test_rotation_accepts_any_listed_signature_and_headers_must_be_there():
    secret, msg_id, timestamp, body = VECTOR
    headers = sign(secret, msg_id, timestamp, body)
    rotated = {**headers, "webhook-signature": "v1,bm90LXRoaXMtb25l " + headers["webhook-signature"]}
    assert verify(secret, rotated, body, now=timestamp) == msg_id
    for name in headers:
        with pytest.raises(MissingSignatureHeaders, match=name):
            verify(secret, {k: v for k, v in headers.items() if k != name}, body, now=timestamp)
    for stamp in ("2021-02-25T15:02:10Z", "²", "-1614265330"):
        with pytest.raises(MissingSignatureHeaders, match="Unix seconds"):
            verify(secret, {**headers, "webhook-timestamp": stamp}, body, now=timestamp)
