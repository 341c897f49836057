"""Log hygiene for the worker: a broker outage must not bury the log.

While Kafka is unreachable, aiokafka logs the same few errors dozens of times a second (a 30 s
outage wrote 4,600 lines). :class:`RepeatFilter` lets the first of a run of identical messages
through, then at most one per interval, saying how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RepeatFilter(logging.Filter):
    """Pass a message (same logger, level and template) at most once per ``interval_s``."""

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval_s:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [and {held} more like it in the last {now - last:.0f}s]"
        return True
