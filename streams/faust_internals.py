"""The private parts of faust-streaming (and aiokafka) the worker relies on, fenced in one place.

The batch transport (:mod:`streams.transport`) overrides private methods of Faust's consumer and
reads its private state; the table store (:mod:`streams.app`) writes RocksDB partitions directly.
Every such name is listed here with the parameters it has in the pinned faust-streaming version;
``tests/unit/test_faust_internals.py`` checks the installed packages against the list, so an upgrade
that renames or reshapes any of them fails the suite loudly instead of silently breaking the
worker's delivery guarantees. Code outside this module and the transport uses the helpers below.
"""

from __future__ import annotations

import inspect
from typing import Any

import aiokafka
import faust
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.consumer import ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

PINNED_VERSION = "0.15.3"
"""The faust-streaming version the list below was checked against (constraints.txt pins it)."""

METHODS: dict[tuple[type, str], tuple[str, ...]] = {
    (faust_aiokafka.Consumer, "_drain_messages"): ("self", "fetcher"),
    (faust_aiokafka.Consumer, "_wait_next_records"): ("self", "timeout"),
    (faust_aiokafka.Consumer, "_new_offset"): ("self", "tp"),
    (faust_aiokafka.Consumer, "_to_message"): ("self", "tp", "record"),
    (faust_aiokafka.Consumer, "_new_consumer_thread"): ("self",),
    (faust_aiokafka.Consumer, "perform_seek"): ("self",),
    (faust_aiokafka.Consumer, "on_partitions_revoked"): ("self", "revoked"),
    (faust_aiokafka.Consumer, "_is_changelog_tp"): ("self", "tp"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"): ("self", "transport"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"): ("self",),
    (faust_aiokafka.AIOKafkaConsumerThread, "seek_to_committed"): ("self",),
    (GroupCoordinator, "fetch_committed_offsets"): ("self", "partitions"),
    (RocksDBStore, "_db_for_partition"): ("self", "partition"),
    (faust.Worker, "_crash"): ("self", "reason"),
    (Recovery, "_set_recovery_ended"): ("self",),
    (Recovery, "need_recovery"): ("self",),
    (Recovery, "flush_buffers"): ("self",),
}
"""Private (or overridden) methods -> their parameter names."""

ATTRIBUTES: dict[type, tuple[str, ...]] = {
    FaustConsumer: ("_acked", "_read_offset", "_buffered_partitions"),
    ThreadDelegateConsumer: ("_thread",),
    aiokafka.AIOKafkaConsumer: ("_fetch_max_wait_ms", "_coordinator"),
    Recovery: ("active_tps", "standby_tps", "active_offsets", "tp_to_table"),
}
"""Classes -> private instance attributes their ``__init__`` sets and the worker reads or writes."""


def mismatches() -> list[str]:
    """What of the list above the installed packages no longer provide ([] when all is as pinned)."""
    found = [] if faust.__version__ == PINNED_VERSION else [
        f"faust-streaming {faust.__version__} is installed, the fence was checked against {PINNED_VERSION}"]
    for (owner, name), parameters in METHODS.items():
        method = getattr(owner, name, None)
        if method is None:
            found.append(f"{owner.__qualname__}.{name} is gone")
        elif tuple(inspect.signature(method).parameters) != parameters:
            found.append(f"{owner.__qualname__}.{name} takes {tuple(inspect.signature(method).parameters)}, "
                         f"not {parameters}")
    for owner, names in ATTRIBUTES.items():
        source = inspect.getsource(owner.__init__)
        found.extend(f"{owner.__qualname__}.__init__ no longer sets self.{name}" for name in names
                     if f"self.{name} =" not in source)
    return found


def partition_db(table: faust.Table, partition: int) -> Any:
    """The RocksDB database holding ``table``'s ``partition`` (opened by Faust on assignment)."""
    return table.data._db_for_partition(partition)


def end_recovery(recovery: Recovery) -> None:
    """End the table recovery under way, as Faust's own recovery loop does after the record that
    completes it (that loop otherwise notices only after 5 s without changelog records)."""
    recovery.flush_buffers()
    recovery._set_recovery_ended()
    recovery.signal_recovery_end.set()


def set_fetch_max_wait(consumer: aiokafka.AIOKafkaConsumer, milliseconds: int) -> None:
    """Change how long the broker may hold a fetch of ``consumer`` that has no new data."""
    consumer._fetch_max_wait_ms = milliseconds
