"""Kafka per-unit figures for the capacity plan (docs/scaling.md): the simulator's durable producer
into a single broker (replication 1) and into the local 3-broker cluster (replication 3,
min.insync.replicas 2), the brokers' CPU per event, and one consumer reading one partition."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from datetime import UTC, datetime

import psutil
from confluent_kafka import Consumer, TopicPartition

from billing.core.meters import load_meters
from billing.kafka.config import client_config
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics, min_insync_replicas
from billing.platform import stack
from billing.platform.kafka_broker import kafka_services
from billing.settings import Settings, default_state_dir, get_settings
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink

STATE = default_state_dir() / "bench-cluster"
START = datetime(2024, 6, 1, tzinfo=UTC)
EVENTS = 1_000_000
PARTITIONS = 12
LOGICAL = ("usage", "customers", "subscriptions", "invoices", "payments")


def _free_block(size: int) -> int:
    """First port of ``size`` consecutive free loopback ports."""
    for base in range(21000, 30000, 16):
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free block of ports")


def _brokers_cpu(settings: Settings) -> float:
    """CPU seconds the running broker JVMs of ``settings`` have used so far."""
    total = 0.0
    for node in kafka_services(settings):
        proc = node.managed().process()
        if proc is not None:
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _produce(settings: Settings) -> dict:
    """Simulator -> fresh topics of ``settings``' brokers; rate, records and broker CPU per event."""
    admin = admin_client(settings.kafka_bootstrap)
    run = uuid.uuid4().hex[:8]
    topics = {name: f"bench.cluster.{run}.{name}" for name in LOGICAL}
    config = {"min.insync.replicas": str(min_insync_replicas(settings.kafka_replication))}
    ensure_topics(admin, [TopicSpec(n, PARTITIONS, settings.kafka_replication, config) for n in topics.values()])
    cpu = _brokers_cpu(settings)
    result = Simulator(SimulationConfig(customers=1000, events=EVENTS, rate=None, start=START, days=7, seed=1),
                       load_meters(None), KafkaSink(settings.kafka_bootstrap, topics)).run()
    broker_cpu = _brokers_cpu(settings) - cpu
    records = sum(result.records.values())
    return {"rate": result.usage_rate, "records": records, "topic": topics["usage"],
            "broker_us": broker_cpu / records * 1e6}


def _one_partition(settings: Settings, topic: str) -> float:
    """Records/s one confluent-kafka consumer reads from partition 0 of ``topic`` (from the start;
    timed from the first record, so connecting is not counted)."""
    consumer = Consumer(client_config(settings.kafka_bootstrap, {
        "group.id": f"bench-{uuid.uuid4().hex}", "enable.auto.commit": False, "fetch.max.bytes": 52_428_800}))
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, low)])
    first = consumer.consume(10_000, timeout=30.0)
    read, began = 0, time.perf_counter()
    try:
        while len(first) + read < high - low:
            read += len(consumer.consume(10_000, timeout=1.0))
    finally:
        consumer.close()
    return read / (time.perf_counter() - began)


def _measure(brokers: int) -> dict:
    shutil.rmtree(STATE, ignore_errors=True)
    libs = get_settings().state_dir / "kafka" / "libs"
    if libs.exists():
        shutil.copytree(libs, STATE / "kafka" / "libs", copy_function=os.link)
    base = _free_block(2 * brokers)
    settings = Settings(state_dir=STATE, kafka_brokers=brokers, kafka_bootstrap=f"127.0.0.1:{base}",
                        kafka_controller_port=base + 1, kafka_partitions=PARTITIONS)
    names = [node.name for node in kafka_services(settings)]
    stack.up(settings, names)
    try:
        produced = _produce(settings)
        produced["partition"] = _one_partition(settings, produced["topic"])
        return produced
    finally:
        stack.down(settings, names)
        shutil.rmtree(STATE, ignore_errors=True)


def run() -> str:
    load = os.getloadavg()[0]
    single, cluster = _measure(1), _measure(3)
    cores = psutil.cpu_count()
    rows = [
        ("single broker, replication 1", single),
        ("3 brokers, replication 3, min.insync.replicas 2", cluster),
    ]
    return "\n".join([
        "## cluster (`bench/bench_cluster.py`)",
        "",
        f"The simulator ({EVENTS:,} usage events, 1,000 customers, idempotent producer, acks=all, lz4) into fresh "
        f"topics of {PARTITIONS} partitions, then one consumer reading partition 0 of the usage topic from the start. "
        f"Brokers, producer and consumer share the machine's {cores} cores (1-minute load average {load:.1f} at start; "
        "above the core count other work competed). Broker CPU is the JVMs' CPU time during the produce run over "
        "the records sent (usage and business topics): the load-independent cost of a record, leaders and followers together.",
        "",
        "| brokers | usage events/s produced | records | broker CPU µs/record | one partition, records/s read |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {r['rate']:,.0f} | {r['records']:,} | {r['broker_us']:.1f} | {r['partition']:,.0f} |"
          for label, r in rows),
    ])
