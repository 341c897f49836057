"""`billing webhooks deliver`: the alerts, invoices, credit notes and payments topics -> signed POSTs to every subscribed endpoint.

A consumer of its own group (:attr:`~billing.settings.Settings.webhook_group_id`), apart from the stream
worker: it reads the topics after they are written and nothing waits for it, so a slow or dead
receiver never touches the usage path. Each record becomes at most one event
(:func:`~billing.core.webhooks.events.webhook_event`) and one delivery per subscribed endpoint.

**No event is lost.** A record's offset is committed only once every delivery of it is done:
delivered (2xx) or dead-lettered after ``webhook_max_attempts`` failures, each attempt logged in the
warehouse first (by a writer thread, one insert at a time of whatever finished meanwhile, so sending
never waits for the warehouse). A crash or a restart reads the uncommitted records again; the log says which of
their deliveries were delivered or dead (skipped: the receiver gets each event once) and which were
still retrying (resumed at their next attempt). Pending deliveries are held in memory, bounded by
``webhook_max_pending`` records (reading pauses beyond it), and made durable by the uncommitted
offsets plus the log, not by a store of their own.

**One bad endpoint blocks no other.** Failed attempts wait their backoff in a timer heap, and at most
``webhook_per_endpoint`` POSTs go to one endpoint at a time out of ``webhook_concurrency``, so a
receiver that is down, answers 500 or is slow (``webhook_timeout_s``) delays only its own deliveries
(and the commits of the records they belong to, never the POSTs of other endpoints).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from billing.core.contracts import ContractViolation, parse_topic
from billing.core.errors import ServiceUnavailable
from billing.core.webhooks.endpoints import Endpoint, EndpointSet
from billing.core.webhooks.events import TOPICS, WebhookEvent, delivery_id, webhook_event
from billing.core.webhooks.retry import Backoff
from billing.kafka.config import QUIET, client_config
from billing.settings import Settings
from billing.webhooks.log import Attempt, DeliveryLog, State
from billing.webhooks.sender import Outcome, http_client, post

log = logging.getLogger("billing.webhooks")

BATCH = 500
COMMIT_EVERY_S = 0.5
WAREHOUSE_RETRY_S = 2.0
DRAIN_S = 10.0


def backoff(settings: Settings) -> Backoff:
    """The retry policy of ``settings``."""
    return Backoff(settings.webhook_backoff_base_s, max(settings.webhook_backoff_max_s, settings.webhook_backoff_base_s),
                   settings.webhook_backoff_jitter, settings.webhook_max_attempts)


@dataclass(eq=False)
class Record:
    """A consumed record and how many of its deliveries are not done yet."""

    partition: tuple[str, int]
    offset: int
    remaining: int = 0
    abandoned: bool = False


@dataclass(eq=False)
class Task:
    """A delivery in progress: the next attempt and the records waiting for it (one, unless a record repeats)."""

    delivery_id: str
    event: WebhookEvent
    endpoint: Endpoint
    attempt: int
    records: list[Record] = field(default_factory=list)


@dataclass
class Stats:
    """Counters of one run (for logs and tests)."""

    records: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0


class DeliveryService:
    """Delivers the events of the topics named by ``settings`` to ``endpoints`` until stopped."""

    def __init__(self, settings: Settings, endpoints: EndpointSet, *, name: str = "webhooks",
                 draw: Callable[[], float] = random.random):
        self.settings = settings
        self.name = name
        self.endpoints = endpoints
        self.backoff = backoff(settings)
        self.draw = draw
        self.log = DeliveryLog(settings)
        self.writer_log = DeliveryLog(settings)
        self.stats = Stats()
        self.topics = {settings.topics()[name]: name for name in TOPICS}
        self.records: dict[tuple[str, int], deque[Record]] = defaultdict(deque)
        self.active: dict[str, Task] = {}
        self.timers: list[tuple[float, int, Task]] = []
        self.ready: dict[str, deque[Task]] = defaultdict(deque)
        self.busy: dict[str, int] = defaultdict(int)
        self.inflight: dict[Future, Task] = {}
        self.finished: list[tuple[Task, Attempt]] = []
        self.writing: tuple[Future, list[tuple[Task, Attempt]]] | None = None
        self.write_after = 0.0
        self.sequence = itertools.count()
        self.committed_at = 0.0
        self.paused = False
        self.stop = threading.Event()

    # ------------------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> Stats:
        """Consume, deliver, log and commit until ``stop`` is set; then finish the POSTs in flight."""
        consumer = Consumer(client_config(self.settings.kafka_bootstrap, {
            "group.id": self.settings.webhook_group_id, "client.id": self.name, "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000, "logger": QUIET,
        }))
        self.stop = stop
        consumer.subscribe(list(self.topics), on_assign=self._assigned, on_revoke=self._revoked(consumer))
        with ThreadPoolExecutor(self.settings.webhook_concurrency, thread_name_prefix="webhook") as pool, \
                ThreadPoolExecutor(1, thread_name_prefix="webhook-log") as writer, \
                http_client(self.settings.webhook_timeout_s, self.settings.webhook_concurrency) as http:
            try:
                while not stop.is_set():
                    self._step(consumer, pool, writer, http)
                self._drain(writer)
                self._commit(consumer, force=True)
            finally:
                consumer.close()
        return self.stats

    def _step(self, consumer: Consumer, pool: ThreadPoolExecutor, writer: ThreadPoolExecutor, http) -> None:
        busy = bool(self.inflight or self.ready or self.finished or self.writing)
        messages = consumer.consume(BATCH, timeout=0 if busy else 0.1)
        if messages:
            self._admit(messages)
        self._flow(consumer)
        self._wake(time.monotonic())
        self._launch(pool, http)
        self._collect(0.01 if self.inflight and not messages else 0)
        self._record(writer)
        self._commit(consumer)

    # ------------------------------------------------------------------------------ reading

    def _admit(self, messages: list[Message]) -> None:
        """Turn records into deliveries (resuming what the log already has) and remember the records."""
        wanted: list[tuple[Record, WebhookEvent, Endpoint]] = []
        for message in messages:
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("webhooks: consumer error: %s", message.error().str())
                continue
            record = Record((message.topic(), message.partition()), message.offset())
            self.records[record.partition].append(record)
            self.stats.records += 1
            event = self._event(message)
            if event is not None:
                wanted.extend((record, event, endpoint) for endpoint in self.endpoints.subscribed(event.type, event.customer_id))
        if not wanted:
            return
        known = self._with_warehouse(lambda: self.log.states(delivery_id(e.id, ep.id) for _, e, ep in wanted))
        for record, event, endpoint in wanted:
            key = delivery_id(event.id, endpoint.id)
            if key in self.active:
                self.active[key].records.append(record)
                record.remaining += 1
                continue
            attempt, state = known.get(key, (0, State.RETRYING))
            if state is not State.RETRYING:
                self.stats.skipped += 1
                continue
            record.remaining += 1
            task = Task(key, event, endpoint, attempt + 1, [record])
            self.active[key] = task
            self.ready[endpoint.id].append(task)

    def _event(self, message: Message) -> WebhookEvent | None:
        try:
            return webhook_event(parse_topic(self.topics[message.topic()], message.value()))
        except ContractViolation as exc:
            log.warning("webhooks: %s[%d]@%d is not a valid message (%s); skipped (the stream worker dead-letters it)",
                        message.topic(), message.partition(), message.offset(), exc.reason)
            return None

    def _flow(self, consumer: Consumer) -> None:
        """Pause reading while too many records wait for their deliveries; resume below the bound."""
        pending = sum(len(queue) for queue in self.records.values())
        full = pending >= self.settings.webhook_max_pending
        if full != self.paused:
            assignment = consumer.assignment()
            (consumer.pause if full else consumer.resume)(assignment)
            self.paused = full
            log.info("webhooks: %s reading (%d records pending)", "paused" if full else "resumed", pending)

    # ------------------------------------------------------------------------------ sending

    def _wake(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, _, task = heapq.heappop(self.timers)
            self.ready[task.endpoint.id].append(task)

    def _launch(self, pool: ThreadPoolExecutor, http) -> None:
        """Start due deliveries, round-robin over endpoints, within the global and per-endpoint limits."""
        progress = True
        while progress and len(self.inflight) < self.settings.webhook_concurrency:
            progress = False
            for endpoint_id in list(self.ready):
                queue = self.ready[endpoint_id]
                while queue and all(record.abandoned for record in queue[0].records):
                    self.active.pop(queue.popleft().delivery_id, None)
                if not queue:
                    del self.ready[endpoint_id]
                    continue
                if self.busy[endpoint_id] >= self.settings.webhook_per_endpoint or \
                        len(self.inflight) >= self.settings.webhook_concurrency:
                    continue
                task = queue.popleft()
                self.busy[endpoint_id] += 1
                self.inflight[pool.submit(post, http, task.endpoint, task.event.id, task.event.body)] = task
                progress = True

    def _collect(self, timeout: float) -> None:
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            task = self.inflight.pop(future)
            self.busy[task.endpoint.id] -= 1
            outcome: Outcome = future.result()
            state = State.DELIVERED if outcome.ok else State.DEAD if self.backoff.exhausted(task.attempt) else State.RETRYING
            self.finished.append((task, Attempt(task.delivery_id, task.attempt, task.event, task.endpoint, state, outcome,
                                                datetime.now(UTC))))

    def _record(self, writer: ThreadPoolExecutor) -> None:
        """Log the finished attempts in the background (one insert at a time, batching what finished meanwhile),
        then act on the logged ones: done deliveries release their records, failed ones wait their backoff."""
        if self.writing is not None:
            future, batch = self.writing
            if not future.done():
                return
            self.writing = None
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 (any warehouse failure: keep the attempts, log them again)
                log.warning("webhooks: cannot write the delivery log (%s); retrying", exc)
                self.finished = batch + self.finished
                self.write_after = time.monotonic() + WAREHOUSE_RETRY_S
            else:
                self._logged(batch)
        if self.finished and time.monotonic() >= self.write_after:
            batch, self.finished = self.finished, []
            self.writing = (writer.submit(self.writer_log.write, [attempt for _, attempt in batch]), batch)

    def _logged(self, batch: list[tuple[Task, Attempt]]) -> None:
        now = time.monotonic()
        for task, attempt in batch:
            if attempt.state is State.RETRYING:
                self.stats.retried += 1
                task.attempt += 1
                delay = self.backoff.delay(attempt.attempt, self.draw())
                heapq.heappush(self.timers, (now + delay, next(self.sequence), task))
                continue
            self.stats.delivered += attempt.state is State.DELIVERED
            self.stats.dead += attempt.state is State.DEAD
            if attempt.state is State.DEAD:
                log.warning("webhooks: delivery %s of %s to %s is dead after %d attempts (%s); `billing webhooks replay %s`",
                            task.delivery_id, task.event.id, task.endpoint.id, attempt.attempt, attempt.outcome.error,
                            task.delivery_id)
            self.active.pop(task.delivery_id, None)
            for record in task.records:
                record.remaining -= 1

    def _drain(self, writer: ThreadPoolExecutor) -> None:
        """Wait for the POSTs in flight (each ends within the timeout) and log them. Attempts the log cannot take
        within :data:`DRAIN_S` are dropped: their records stay uncommitted, so the next run sends them again."""
        while self.inflight:
            self._collect(self.settings.webhook_timeout_s + 1)
        deadline = time.monotonic() + DRAIN_S
        while (self.finished or self.writing) and time.monotonic() < deadline:
            self._record(writer)
            time.sleep(0.01)

    # ------------------------------------------------------------------------------ offsets

    def _commit(self, consumer: Consumer, *, force: bool = False, only: set[tuple[str, int]] | None = None) -> None:
        """Commit, per partition, past the records whose deliveries are all done."""
        if not force and time.monotonic() - self.committed_at < COMMIT_EVERY_S:
            return
        offsets = []
        for partition, queue in self.records.items():
            if only is not None and partition not in only:
                continue
            last = None
            while queue and queue[0].remaining <= 0:
                last = queue.popleft().offset
            if last is not None:
                offsets.append(TopicPartition(*partition, last + 1))
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # noqa: BLE001 (a failed commit re-reads the records later; their deliveries are skipped)
                log.warning("webhooks: offset commit failed (%s); the records are read again later and skipped", exc)
        self.committed_at = time.monotonic()

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("webhooks: assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        self.paused = False

    def _revoked(self, consumer: Consumer) -> Callable[[Consumer, list[TopicPartition]], None]:
        def revoked(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
            gone = {(p.topic, p.partition) for p in partitions}
            self._commit(consumer, force=True, only=gone)
            for partition in gone:
                for record in self.records.pop(partition, ()):
                    record.abandoned = True
        return revoked

    def _with_warehouse(self, read: Callable[[], dict]) -> dict:
        """``read()``, retried while the warehouse is unreachable (nothing can be decided without the log)
        until the service is stopped (then :class:`ServiceUnavailable`; the records stay uncommitted)."""
        while True:
            try:
                return read()
            except Exception as exc:  # noqa: BLE001 (ServiceUnavailable, ClickHouse driver and network errors)
                if self.stop.is_set():
                    raise ServiceUnavailable(f"stopped while the delivery log was unreadable ({exc})") from exc
                log.warning("webhooks: delivery log unreadable (%s); retrying", exc)
            self.stop.wait(WAREHOUSE_RETRY_S)
