"""A private warehouse and private topics for one benchmark run.

The warehouse is a local chdb server on a free port with its own state folder (a temporary one,
removed afterwards); the topics live on the broker of the settings, which is started for the run
when it is not running (and stopped after), and are deleted afterwards.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.bench_marts import _free_port as free_port
from billing.kafka.topics import TopicSpec, admin_client, ensure_topics
from billing.platform import stack
from billing.settings import Settings, get_settings
from billing.warehouse.migrations import migrate


@contextmanager
def scratch(name: str, database: str, topics: Mapping[str, int | None], **updates: object) -> Iterator[Settings]:
    """Settings pointing at a private migrated warehouse database and private topics.

    ``topics`` maps topic settings (``topic_invoices``) to their partition count (None: the configured
    default); each gets the name ``bench-<name>-<random>.<topic>``. ``updates``: further settings."""
    base = get_settings()
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        names = {field: f"bench-{name}-{tag}.{field.removeprefix('topic_')}" for field in topics}
        settings = base.model_copy(update={
            "clickhouse_url": f"http://127.0.0.1:{free_port()}", "clickhouse_database": database, "state_dir": Path(tmp),
            **names, **updates})
        warehouse = stack.service(settings, "warehouse")
        warehouse.start()
        kafka = stack.service(base, "kafka")
        kafka_started = kafka.start()
        admin = admin_client(settings.kafka_bootstrap)
        try:
            ensure_topics(admin, [TopicSpec(names[field], partitions or settings.kafka_partitions, settings.kafka_replication)
                                  for field, partitions in topics.items()])
            migrate(settings)
            yield settings
        finally:
            admin.delete_topics(list(names.values()))
            warehouse.stop()
            if kafka_started:
                kafka.stop()
