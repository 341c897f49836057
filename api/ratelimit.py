"""Per-key rate limiting with token buckets (one set per API worker process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one request costs one token."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0 on success, else the seconds until they are available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """Token buckets by key id; a key's rate and burst can change (the bucket is rebuilt)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: str, rate: float, burst: float) -> float:
        """0 when the request may proceed, else the Retry-After in seconds."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None or bucket.rate != rate or bucket.burst != burst:
                bucket = self._buckets[key_id] = TokenBucket(rate, burst, now)
            return bucket.take(now)
