"""The worker's repeat filter: runs of identical log messages are held back, then summarized."""

from __future__ import annotations

import logging

from streams.logs import RepeatFilter


def record(msg: str, *args, name: str = "aiokafka.conn", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_message_passes_once_per_interval_and_then_counts_what_was_held_back():
    now = [0.0]
    repeats = RepeatFilter(interval_s=10.0, clock=lambda: now[0])
    passed = []
    for second in range(25):
        now[0] = float(second)
        for _ in range(3):
            entry = record("Unable connect to node with id %s: %s", 1, "refused")
            if repeats.filter(entry):
                passed.append(entry.getMessage())
    assert passed == [
        "Unable connect to node with id 1: refused",
        "Unable connect to node with id 1: refused [and 29 more like it in the last 10s]",
        "Unable connect to node with id 1: refused [and 29 more like it in the last 10s]",
    ]


def test_different_templates_loggers_and_levels_are_not_held_back():
    repeats = RepeatFilter(interval_s=10.0, clock=lambda: 0.0)
    entries = [record("a %s", 1), record("b %s", 1), record("a %s", 1, name="faust"), record("a %s", 1, level=logging.WARNING)]
    assert all(repeats.filter(entry) for entry in entries)
    assert not repeats.filter(record("a %s", 2))
