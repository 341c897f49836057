"""Garbage-collector and heap settings of the long-running hot processes (stream worker, HTTP API)
and of big batches (the invoice run, :func:`batch_gc`).

Python collects its youngest generation every 700 allocations and, now and then, walks every
tracked object. A stream worker keeps every open window decoded in memory (hundreds of thousands
of objects) and both processes allocate dozens of short-lived objects per event, so with the
defaults the collector walked the same long-lived objects over and over: about a quarter of a
worker's time (12,100 -> 15,700 events/s when tuned). Even tuned, every young collection in a
worker walked the records and rows of the batch in progress (tens of thousands of objects, ~7 ms
each, ~7% of its time), so a worker turns the automatic collector off and collects on a timer
(:func:`collect_garbage`, every :data:`COLLECT_EVERY_S`).

The C heap keeps memory freed by a big batch for reuse instead of returning it, so a worker's
resident size grew by the rows of its largest batch (batches of 20,000 records with 1M dedup keys:
665 MB); :func:`trim_heap` gives it back (480 MB when called before each write).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

THRESHOLDS = (50_000, 20, 100)
"""Youngest generation every 50,000 allocations, the oldest about every 10^8."""
COLLECT_EVERY_S = 10.0
"""Period of :func:`collect_garbage` in a process without the automatic collector."""


def tune_gc(automatic: bool = True) -> None:
    """Move the objects made at start-up out of the collector's sight and collect less often (see
    :data:`THRESHOLDS`); cyclic garbage is still collected. Without ``automatic`` the collector
    runs only when called: the caller must run :func:`collect_garbage` every few seconds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if not automatic:
        gc.disable()


@contextmanager
def batch_gc() -> Iterator[None]:
    """Inside: the objects that exist on entry are frozen (out of the collector's sight, and pages a
    forked child shares stay shared) and the collector runs at :data:`THRESHOLDS`; both restored on
    exit. For a batch that builds many long-lived objects at once (the invoice run keeps every
    customer's usage, spans and invoices): with the defaults, collections walk them over and over."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def collect_garbage() -> int:
    """Collect every generation (a few tens of ms in a worker); returns the objects freed."""
    return gc.collect()


@cache
def _malloc_trim():
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def trim_heap() -> bool:
    """Return the C heap's free memory to the operating system (glibc's ``malloc_trim``, a few ms);
    False where the C library has no such call."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
