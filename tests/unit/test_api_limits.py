"""Token buckets, the recent-id LRU, the API key store, bearer parsing, problem documents and the producer's delivery reports."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from api.auth import bearer, bearer_token
from api.keys import KeyCache, KeyStore, token_hash
from api.problems import Problem
from api.producer import EventProducer
from api.ratelimit import RateLimiter, TokenBucket
from api.recent import RecentIds
from billing.core.errors import ConfigError
from billing.settings import Settings


def test_bucket_allows_burst_then_waits_for_refill():
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(10.0) == 0.0 and bucket.tokens == pytest.approx(2.0)


def test_limiter_is_per_key():
    clock = [0.0]
    limiter = RateLimiter(clock=lambda: clock[0])
    assert limiter.acquire("a", 1, 1) == 0.0
    assert limiter.acquire("a", 1, 1) > 0
    assert limiter.acquire("b", 1, 1) == 0.0
    clock[0] = 1.0
    assert limiter.acquire("a", 1, 1) == 0.0


def test_recent_ids_evicts_least_recently_used():
    recent = RecentIds(2)
    recent.remember("c", "1", b"x")
    recent.remember("c", "2", b"y")
    assert recent.get_all([("c", "1")]) == {("c", "1"): b"x"}
    recent.remember("c", "3", b"z")
    assert recent.get_all([("c", "1"), ("c", "2"), ("c", "3")]) == {("c", "1"): b"x", ("c", "3"): b"z"}
    assert len(recent) == 2


def test_recent_ids_size_zero_remembers_nothing():
    recent = RecentIds(0)
    recent.remember("c", "1", b"x")
    assert recent.get_all([("c", "1")]) == {}


def test_key_store_keeps_only_hashes(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    key, token = store.create(["c1", "c2"], label="x")
    assert token.startswith(f"bk_{key.key_id}_") and len(token) > 40
    assert token.encode() not in (tmp_path / "keys.sqlite3").read_bytes()
    assert token_hash(token).encode() in (tmp_path / "keys.sqlite3").read_bytes()
    found = store.lookup(token)
    assert found.tenants == {"c1", "c2"} and not found.admin and found.may_access("c1") and not found.may_access("c3")
    assert store.lookup(token + "x") is None and store.lookup("nonsense") is None


def test_revoked_keys_do_not_authenticate(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    key, token = store.create([], admin=True)
    assert store.lookup(token).may_access("anyone")
    assert store.revoke(key.key_id) and not store.revoke(key.key_id)
    assert store.lookup(token) is None
    assert [k.revoked_at is not None for k in store.list()] == [True]


def test_key_needs_a_tenant_unless_admin(tmp_path):
    with pytest.raises(ConfigError, match="--tenant"):
        KeyStore(tmp_path / "k.sqlite3").create([" "])


def test_key_cache_serves_repeated_lookups_from_memory(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    key, token = store.create(["c1"])
    cache = KeyCache(store, ttl=60)
    assert cache.get(token) == key
    store.revoke(key.key_id)
    assert cache.get(token) == key
    assert KeyCache(store, ttl=60).get(token) is None


def test_problem_document():
    problem = Problem(429, "slow down", kind="rate-limited", headers={"Retry-After": "2"}, key="k")
    assert problem.body("/v1/events") == {
        "type": "https://billing.example/problems/rate-limited", "title": "Too Many Requests", "status": 429,
        "detail": "slow down", "instance": "/v1/events", "key": "k"}


def test_recent_ids_remember_all_keeps_the_newest():
    recent = RecentIds(2)
    recent.remember_all([(("c", "1"), b"x"), (("c", "2"), b"y"), (("c", "3"), b"z")])
    assert recent.get_all([("c", "1"), ("c", "3")]) == {("c", "3"): b"z"} and len(recent) == 2


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer bk_1_x", "bk_1_x"), ("bearer  bk_1_x ", "bk_1_x"), ("Basic abc", None), ("Bearer", None),
    ("Bearer ", None), ("", None), (None, None),
])
def test_bearer_token_reads_the_header_like_fastapi(header, token):
    assert bearer_token(header) == token
    credentials = asyncio.run(bearer(Request({"type": "http", "headers": [] if header is None else
                                              [(b"authorization", header.encode())]})))
    assert (credentials.credentials if credentials else None) == token


def test_producer_reports_every_undelivered_record(tmp_path):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", api_delivery_timeout_s=1.0)
    producer = EventProducer(settings)
    try:
        errors = asyncio.run(asyncio.wait_for(producer.send("usage", [(b"k", b"v1"), (b"k", b"v2")]), 10))
    finally:
        producer.close(timeout=0)
    assert len(errors) == 2 and all("timed out" in error for error in errors), errors


@pytest.mark.parametrize("token", ["bk_nope_nope", "x" * 4_000_000, "bk_0123456789ab_" + "a" * 42, "bk_0123456789ab_" + "a" * 42 + "\n",
                                   "bk_0123456789AB_" + "a" * 43, "bk_0123456789ab_" + "a" * 42 + "="])
def test_malformed_tokens_touch_neither_the_cache_nor_the_store(tmp_path, token):
    store = KeyStore(tmp_path / "keys.sqlite3")
    cache = KeyCache(store, ttl=60)
    looked_up = []
    store.lookup = looked_up.append
    assert cache.get(token) is None
    assert looked_up == [] and len(cache._entries) == 0


def test_well_formed_unknown_tokens_are_cached_once(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    _key, token = store.create(["c1"])
    cache = KeyCache(store, ttl=60, size=2)
    wrong = [c for c in "ABCDEF" if c != token[-1]][:5]  # never the token's own last character
    for last in wrong:
        assert cache.get(token[:-1] + last) is None
    assert len(cache._entries) == 2 and all(len(t) == len(token) == 59 for t in cache._entries)
