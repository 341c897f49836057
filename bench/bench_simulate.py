"""Simulator throughput: the usage generator alone, and producing to the local broker."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

from billing.core.meters import load_meters
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.platform import stack
from billing.settings import get_settings
from producers.customers import build_customers
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink
from producers.usage import HOUR_US, FaultRates, UsageGenerator, us_of

START = datetime(2024, 6, 1, tzinfo=UTC)
CUSTOMERS = 1000
GENERATOR_EVENTS = 1_000_000
KAFKA_EVENTS = 2_000_000
FAULTS = FaultRates(duplicate=0.01, late=0.01, malformed=0.001)


def generator_rate() -> float:
    """Usage events per second from the generator alone (bytes built, truth folded, nothing sent)."""
    generator = UsageGenerator(build_customers(CUSTOMERS, 1, START), load_meters(None), 1, FAULTS)
    hour = us_of(START)
    began = time.perf_counter()
    made = 0
    while made < GENERATOR_EVENTS:
        made += len(generator.batch(hour, HOUR_US, 20_000))
        hour += HOUR_US
    return made / (time.perf_counter() - began)


def kafka_rate() -> tuple[float, int]:
    """Usage events per second through the whole simulator into fresh topics of the local broker."""
    settings = get_settings()
    kafka = stack.service(settings, "kafka")
    started = kafka.start()
    admin = admin_client(settings.kafka_bootstrap)
    run = uuid.uuid4().hex[:8]
    topics = {name: f"bench.simulate.{run}.{name}" for name in ("usage", "customers", "subscriptions", "invoices", "payments")}
    try:
        ensure_topics(admin, [TopicSpec(n, settings.kafka_partitions, 1) for n in topics.values()])
        config = SimulationConfig(customers=CUSTOMERS, events=KAFKA_EVENTS, rate=None, start=START, days=7, seed=1,
                                  duplicate_rate=FAULTS.duplicate, late_rate=FAULTS.late, malformed_rate=FAULTS.malformed)
        result = Simulator(config, load_meters(None), KafkaSink(settings.kafka_bootstrap, topics)).run()
        return result.usage_rate, sum(result.records.values())
    finally:
        for future in admin.delete_topics(list(topics.values())).values():
            future.result()
        if started:
            kafka.stop()


def run() -> str:
    load_before = os.getloadavg()[0]
    alone = generator_rate()
    produced, records = kafka_rate()
    return "\n".join([
        "## simulate",
        "",
        f"`billing simulate` hot path, {CUSTOMERS:,} customers, 1% duplicates, 1% late, 0.1% malformed,"
        " lz4, idempotent producer with acks=all, local single-node broker on the same machine.",
        "",
        "| what | usage events/s |",
        "|---|---|",
        f"| generator alone ({GENERATOR_EVENTS:,} events, bytes + ground truth, nothing sent) | {alone:,.0f} |",
        f"| simulator -> Kafka ({KAFKA_EVENTS:,} events, {records:,} records incl. business topics, until all acked) | {produced:,.0f} |",
        "",
        "Target: >= 100,000 usage events/s to the local broker on 2 cores.",
        f"1-minute load average when the run began: {load_before:.1f} (other work on the machine slows both rows).",
    ])
