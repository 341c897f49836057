"""Fixtures of the invoicing tests: a simulated month and, per test, a scratch database and topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.settings import Settings, get_settings
from billing.warehouse.client import client
from billing.warehouse.migrations import migrate
from producers.manifest import Manifest
from tests.integration.invoicing_data import load, simulate

SEED = 19  # 30 customers with plan changes, cancellations and a trial in September 2026


@dataclass
class World:
    """A scratch database loaded with the simulated month, and its own invoices topic."""

    settings: Settings
    ch: Client
    db: str
    records: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[Path, Manifest]:
    return simulate(tmp_path_factory.mktemp("simulated"), seed=SEED)


@pytest.fixture()
def world(settings, warehouse, kafka, simulated) -> Iterator[World]:
    name = f"invoicing_{uuid.uuid4().hex[:8]}"
    topic = f"billing.invoices.{name}"
    scoped = settings.model_copy(update={"clickhouse_database": name, "topic_invoices": topic})
    migrate(scoped)
    admin = admin_client(settings.kafka_bootstrap)
    ensure_topics(admin, [TopicSpec(topic, settings.kafka_partitions, 1)])
    ch = client(scoped)
    records, manifest = simulated
    load(ch, name, records, manifest)
    yield World(scoped, ch, name, records, manifest)
    client(settings).command(f"DROP DATABASE IF EXISTS {name}")
    admin.delete_topics([topic])


@pytest.fixture()
def cli_env(world: World, monkeypatch) -> Iterator[World]:
    """``world`` as the environment of the `billing` CLI (its database and invoices topic)."""
    monkeypatch.setenv("BILLING_CLICKHOUSE_DATABASE", world.db)
    monkeypatch.setenv("BILLING_TOPIC_INVOICES", world.settings.topic_invoices)
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()
