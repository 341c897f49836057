"""Is a worker making progress? Partitions it owns with records waiting whose committed offset
has not moved for a while."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Place = tuple[str, int]
"""(topic, partition)"""


@dataclass(frozen=True)
class Stall:
    """``waiting`` records in a partition whose committed offset has not moved for ``for_s`` seconds."""

    waiting: int
    for_s: float


@dataclass(frozen=True)
class _Seen:
    committed: int
    end: int
    since: float  # when the committed offset last moved, or last had nothing waiting


class ProgressWatch:
    """Follows the committed and end offsets of the partitions a worker owns (as the broker has
    them); a partition with records waiting is stalled once its committed offset has not moved for
    ``after_s`` seconds."""

    def __init__(self, after_s: float, clock: Callable[[], float] = time.monotonic):
        self.after_s = after_s
        self.clock = clock
        self._seen: dict[Place, _Seen] = {}

    def observe(self, offsets: Mapping[Place, tuple[int, int]]) -> None:
        """Record the (committed, end) offsets of the partitions owned now; others are forgotten."""
        now = self.clock()
        seen = {}
        for place, (committed, end) in offsets.items():
            before = self._seen.get(place)
            moved = before is None or before.committed != committed or committed >= end
            seen[place] = _Seen(committed, end, now if moved else before.since)
        self._seen = seen

    def stalled(self) -> dict[Place, Stall]:
        """Owned partitions with records waiting and no progress for ``after_s`` seconds or more."""
        now = self.clock()
        return {place: Stall(s.end - s.committed, now - s.since) for place, s in self._seen.items()
                if s.end > s.committed and now - s.since >= self.after_s}

    def lag(self) -> int:
        """Records waiting in the owned partitions: end offsets minus committed offsets."""
        return sum(max(0, s.end - s.committed) for s in self._seen.values())
