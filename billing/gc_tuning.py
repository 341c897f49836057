"""Garbage-collector settings of the long-running hot processes (stream worker, HTTP API).

Python collects its youngest generation every 700 allocations and, now and then, walks every
tracked object. A stream worker keeps every open window decoded in memory (hundreds of thousands
of objects) and both processes allocate dozens of short-lived objects per event, so with the
defaults the collector walked the same long-lived objects over and over: about a quarter of a
worker's time (12,100 -> 15,700 events/s when tuned).
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)
"""Youngest generation every 50,000 allocations, the oldest about every 10^8."""


def tune_gc() -> None:
    """Move the objects made at start-up out of the collector's sight and collect less often (see
    :data:`THRESHOLDS`); cyclic garbage is still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
