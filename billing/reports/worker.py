"""`billing reports worker`: report workers in one consumer group execute the jobs of the report jobs topic.

A worker process runs ``BILLING_REPORT_WORKER_CONCURRENCY`` consumers (threads, each with its own
warehouse session); the topic's partitions are shared among every consumer of the group. A message's
offset is committed only after its job reached a terminal state, so a job whose worker died
mid-way is delivered again (to whichever consumer owns the partition then) and found ``running``:
it starts another attempt, up to ``BILLING_REPORT_MAX_ATTEMPTS`` (:func:`~billing.core.reports.jobs.begin`).
A terminal job is never run again. Before an attempt completes or fails the job, the state is read
again and :func:`~billing.core.reports.jobs.fence` refuses an attempt that is no longer the job's
current one: a worker stalled past its session (SIGSTOP, a long GC pause, a frozen VM) whose job
another worker took over drops its result and its file, so the job completes once, by the current
attempt. (The check and the write are two requests: a stalled attempt whose check and write both fall
between the taking-over worker's first read and its first write is the one interleaving left; the
warehouse offers no compare-and-set.) A worker also deletes files past their retention and queues the due runs
of the report schedules (:mod:`billing.reports.schedules`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from clickhouse_connect.driver.exceptions import OperationalError
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from billing.core.contracts import ContractViolation, ReportJob, ReportKind, parse
from billing.core.errors import BillingError, PlatformError
from billing.core.reports.jobs import (
    TERMINAL,
    JobState,
    JobStatus,
    StaleAttempt,
    advance,
    begin,
    complete,
    fail,
    fence,
    queued,
    retry_later,
)
from billing.invoicing.run import Invoicing
from billing.kafka.config import client_config
from billing.reports import files, schedules
from billing.reports.content import customer_usage
from billing.reports.finance import finance_summary
from billing.reports.requests import Reports
from billing.reports.store import JobStore
from billing.settings import Settings

log = logging.getLogger("billing.reports")
SWEEP_EVERY_S = 3600.0
RETRY_PAUSE_S = 2.0
PASSING = (PlatformError, OperationalError)
"""Failures that may pass (a service away): the attempt is retried."""


def _now() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    """Executes report jobs against the warehouse of ``settings`` (one warehouse session: one thread)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _now):
        self.settings = settings
        self.clock = clock
        self.invoicing = Invoicing(settings)
        self.jobs = JobStore(self.invoicing.store.ch, settings.clickhouse_database)

    def execute(self, job: ReportJob) -> JobState:
        """Run ``job`` to a terminal state (see the module docstring); returns it, or the state an attempt that
        was superseded found."""
        state = self.jobs.get(job.id) or queued(job)
        while state.status not in TERMINAL:
            state = self.jobs.write(begin(state, self.clock(), self.settings.report_max_attempts))
            if state.status is JobStatus.RUNNING:
                try:
                    state = self._attempt(state)
                except StaleAttempt as exc:
                    log.warning("%s", exc)
                    return self.jobs.get(job.id) or state
        return state

    def _attempt(self, state: JobState) -> JobState:
        job = state.job
        current = [state]

        def progress(percent: int) -> None:
            current[0] = self.jobs.write(advance(current[0], percent, self.clock()))

        try:
            if job.kind is ReportKind.FINANCE_SUMMARY:
                report = finance_summary(self.settings, job.period, self.clock(), progress)
            else:
                report = customer_usage(self.invoicing, job.customer_id, job.period, self.clock(), progress)
            name = files.write(self.settings, current[0], report)
        except PASSING as exc:
            log.warning("report job %s attempt %d: %s", job.id, state.attempts, exc)
            time.sleep(RETRY_PAUSE_S)
            return self.jobs.write(retry_later(current[0], str(exc), self.clock()))
        except BillingError as exc:
            return self._finish(fail(current[0], str(exc), self.clock()))
        return self._finish(complete(current[0], name, self.clock()))

    def _finish(self, outcome: JobState) -> JobState:
        """Write the terminal ``outcome`` of an attempt if it is still the job's current one (else StaleAttempt)."""
        try:
            fence(outcome, self.jobs.get(outcome.job_id))
        except StaleAttempt:
            if outcome.file:
                files.remove(self.settings, outcome.file)
            raise
        return self.jobs.write(outcome)


class ReportWorker:
    """``settings.report_worker_concurrency`` consumers of the report jobs topic and the schedules, until :meth:`stop`."""

    def __init__(self, settings: Settings, name: str = "reports-1"):
        self.settings = settings
        self.name = name
        self.schedules = schedules.load([settings.report_schedules_file]) if settings.report_schedules_file else ()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Consume until stopped; sweeps expired files at start and hourly, queues due scheduled runs at start and
        every ``report_schedule_check_s``."""
        threads = [threading.Thread(target=self._consume, name=f"{self.name}-{i}", daemon=True)
                   for i in range(self.settings.report_worker_concurrency)]
        for thread in threads:
            thread.start()
        reports, swept = Reports(self.settings), float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - swept >= SWEEP_EVERY_S:
                files.sweep(self.settings, reports.jobs, _now())
                swept = time.monotonic()
            if self.schedules:
                self._queue_due(reports)
            self._stop.wait(self.settings.report_schedule_check_s if self.schedules else SWEEP_EVERY_S)
        for thread in threads:
            thread.join()

    def _queue_due(self, reports: Reports) -> None:
        try:
            count = schedules.queue_due(reports, self.schedules, _now())
        except PASSING as exc:
            log.warning("scheduled reports not queued (retrying in %.0fs): %s", self.settings.report_schedule_check_s, exc)
        else:
            if count:
                log.info("queued %d scheduled report job(s)", count)

    def _consume(self) -> None:
        runner = JobRunner(self.settings)
        consumer = Consumer(client_config(self.settings.kafka_bootstrap, {
            "group.id": self.settings.report_worker_group, "client.id": self.name, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": int(self.settings.worker_session_timeout_s * 1000),
        }))
        consumer.subscribe([self.settings.topics()["report_jobs"]])
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.5)
                if message is None:
                    continue
                if message.error():
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("report jobs topic: %s", message.error().str())
                    continue
                self._handle(consumer, runner, message)
        finally:
            consumer.close()

    def _handle(self, consumer: Consumer, runner: JobRunner, message: Message) -> None:
        try:
            job = parse(ReportJob, message.value())
        except ContractViolation as exc:
            log.error("skipping a malformed report job at %s[%d]@%d: %s", message.topic(), message.partition(),
                      message.offset(), exc.reason)
        else:
            try:
                state = runner.execute(job)
                log.info("report job %s %s", job.id, state.status.value)
            except Exception as exc:  # the job state could not be written: run it again from its message
                log.warning("report job %s not finished (%s); retrying in %.0fs", job.id, exc, RETRY_PAUSE_S)
                time.sleep(RETRY_PAUSE_S)
                consumer.seek(TopicPartition(message.topic(), message.partition(), message.offset()))
                return
        try:
            consumer.commit(message, asynchronous=False)
        except KafkaException as exc:  # this consumer lost the partition meanwhile: its new owner commits
            log.warning("report job offset %s[%d]@%d not committed: %s", message.topic(), message.partition(),
                        message.offset(), exc.args[0].str())
