"""A bounded memory of recently accepted event ids, to short-circuit client retries.

The stream worker is what guarantees exactly-once counting; this cache only saves a round trip
to Kafka for a retry that hits the same API worker. Entries are keyed by (customer, event id) so
one tenant's ids never shadow another's, and hold a digest of the accepted bytes so a reused id
with a different payload can be told apart from a true retry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class RecentIds:
    """LRU of (subject, id) -> payload digest, at most ``size`` entries (0 disables it)."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_all(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Digests of the accepted payloads among ``keys`` ((subject, event id) each), under one lock."""
        found = {}
        stored = self._entries
        with self._lock:
            for key in keys:
                digest = stored.get(key)
                if digest is not None:
                    stored.move_to_end(key)
                    found[key] = digest
        return found

    def remember(self, subject: str, event_id: str, digest: bytes) -> None:
        """Record a delivered event."""
        self.remember_all([((subject, event_id), digest)])

    def remember_all(self, entries: Iterable[tuple[tuple[str, str], bytes]]) -> None:
        """Record delivered events, ((subject, event id), digest) each, under one lock."""
        if not self.size:
            return
        stored = self._entries
        with self._lock:
            for key, digest in entries:
                stored[key] = digest
                stored.move_to_end(key)
            while len(stored) > self.size:
                stored.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
