"""Run a pure function over many items in forked processes, results in the items' order.

The invoice run prices each customer independently from data already read (plans, spans, usage),
which is CPU work in Python: on a machine with several cores, forked children share that data
without copying it and send back only their results. Anything the function raises in a child is
raised here. Without ``fork`` (or with one process, or few items) the items run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

FORK_FROM = 64
"""Fewer items than this run in this process: forking would cost more than it saves."""
TASKS_PER_PROCESS = 4
"""Items are sent to the children in this many tasks per process, so progress advances as they finish."""

_task: Callable[..., Any] | None = None


def _run_chunk(chunk: Sequence[tuple]) -> list:
    assert _task is not None  # set before the pool forks
    return [_task(*item) for item in chunk]


def processes(setting: int) -> int:
    """The number of processes a ``setting`` of 0 (one per usable core) or N means."""
    if setting:
        return setting
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fork_map(function: Callable[..., Any], items: Sequence[tuple], *, workers: int) -> Iterator[Any]:
    """``function(*item)`` for every item, in order, computed by up to ``workers`` forked processes."""
    global _task
    if workers <= 1 or len(items) < FORK_FROM or "fork" not in multiprocessing.get_all_start_methods():
        yield from (function(*item) for item in items)
        return
    size = -(-len(items) // (workers * TASKS_PER_PROCESS))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    _task = function
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(chunks))) as pool:
            for results in pool.imap(_run_chunk, chunks):
                yield from results
    finally:
        _task = None
