"""Broker failures under load on the local 3-node cluster: while the simulator produces and two
workers consume, brokers are killed with SIGKILL (the usage partitions' leader, then the active
controller) or restarted one by one; the simulator's producer must get every record acknowledged,
and the warehouse must end with the manifest's totals exactly and only the injected dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from billing.kafka.cluster import wait_for_brokers
from billing.kafka.topics import admin_client
from billing.platform.kafka_broker import KafkaService, active_controller
from billing.settings import Settings
from tests.integration.streams_harness import (
    Paced,
    caught_up,
    differences,
    free_port,
    hourly_totals,
    isolated,
    query,
    simulate,
    wait_for,
    worker_process,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RATE = 1_000
"""Events/s the simulator sends while the faults run (the rest goes as fast as it can once they are
over): low enough for two loaded cores, high enough that every fault lands in the middle of production."""


def _usage_leader(settings: Settings, nodes: list[KafkaService]) -> KafkaService:
    """The node leading most partitions of the usage topic."""
    topic = settings.topic_usage
    leaders = [p.leader for p in admin_client(settings.kafka_bootstrap).list_topics(topic, timeout=10)
               .topics[topic].partitions.values()]
    return nodes[max(set(leaders), key=leaders.count) - 1]


def _led_elsewhere(settings: Settings, node: int) -> bool:
    """True once the metadata shows every partition of the usage topic led by a node other than ``node``."""
    topic = settings.topic_usage
    partitions = admin_client(settings.kafka_bootstrap).list_topics(topic, timeout=10).topics[topic].partitions
    return all(p.leader not in (-1, node) for p in partitions.values())


def _restart(node: KafkaService) -> None:
    """Start a stopped node's process again (the cluster's readiness is checked by the caller)."""
    node.managed(starting=True).start(timeout=180)


def _under_load(settings: Settings, tmp_path: Path, tag: str, events: int,
                faults: Callable[[Future, Settings], None]) -> None:
    """Produce ``events`` into this test's topics, at :data:`RATE` while ``faults`` runs (given the
    production and the test's settings) and at full speed after, while two workers consume; then
    check the warehouse against the manifest."""
    mine = isolated(settings, tag, worker_metrics_interval_s=1.0)
    workers = [worker_process(mine, "w1"), worker_process(mine, "w2", free_port())]
    for worker in workers:
        worker.start(timeout=180)
    try:
        with ThreadPoolExecutor(1) as pool:
            pace = Paced(RATE)
            production = pool.submit(simulate, mine, tmp_path / "manifest", events=events, customers=40,
                                     seed=23, progress=pace)
            try:
                assert wait_for(lambda: query(mine, "SELECT count() FROM {db}.usage_events")[0][0] > 0,
                                timeout=120, interval=0.5), "the workers stored nothing before the faults"
                faults(production, mine)
            finally:
                pace.release()
            manifest = production.result(timeout=900)
        wait_for(caught_up(mine, manifest), timeout=600, interval=2.0)
        assert all(worker.is_running() for worker in workers), "a worker died during the broker faults"
    finally:
        for worker in workers:
            worker.stop()
    usage = manifest.summary["usage"]
    assert differences(manifest.usage_totals("hour"), hourly_totals(mine)) == []
    assert query(mine, "SELECT count() FROM {db}.usage_events FINAL")[0][0] == usage["unique_valid"]
    assert query(mine, "SELECT count() FROM {db}.dead_letters FINAL")[0][0] == usage["malformed"]


def test_killing_the_usage_leader_and_the_active_controller_loses_nothing(
        healthy_cluster: list[KafkaService], cluster_settings: Settings, warehouse, tmp_path: Path) -> None:
    admin = admin_client(cluster_settings.kafka_bootstrap)
    killed: list[str] = []

    def faults(production: Future, mine: Settings) -> None:
        leader = _usage_leader(mine, healthy_cluster)
        assert not production.done(), "production ended before the leader was killed: raise the events"
        leader.managed().kill()
        killed.append(f"leader {leader.name}")
        assert wait_for(lambda: _led_elsewhere(mine, leader.node), timeout=60, interval=0.5), \
            f"the partitions {leader.name} led got no other leader"
        _restart(leader)
        wait_for_brokers(admin, 3, timeout=300)
        controller = healthy_cluster[active_controller(cluster_settings) - 1]
        assert not production.done(), "production ended before the controller was killed: raise the events"
        controller.managed().kill()
        killed.append(f"controller {controller.name}")
        assert wait_for(lambda: active_controller(cluster_settings) not in (None, controller.node), timeout=60,
                        interval=0.5), f"no other node became the active controller after {controller.name}"
        time.sleep(5)
        _restart(controller)

    _under_load(cluster_settings, tmp_path, "failover", events=180_000, faults=faults)
    assert len(killed) == 2, killed


def test_rolling_restart_of_every_broker_loses_nothing(
        healthy_cluster: list[KafkaService], cluster_settings: Settings, warehouse, tmp_path: Path) -> None:
    admin = admin_client(cluster_settings.kafka_bootstrap)
    restarted: list[str] = []

    def faults(production: Future, _mine: Settings) -> None:
        for node in healthy_cluster:
            assert not production.done(), f"production ended before {node.name} was restarted: raise the events"
            assert node.managed().stop() is True
            _restart(node)
            wait_for_brokers(admin, 3, timeout=300)
            restarted.append(node.name)

    _under_load(cluster_settings, tmp_path, "rolling", events=240_000, faults=faults)
    assert restarted == ["kafka-1", "kafka-2", "kafka-3"]
