"""The local 3-node KRaft cluster's settings, configs, folders and status sources (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from billing.core.errors import PlatformError
from billing.platform import stack
from billing.platform.kafka_broker import (
    KafkaService,
    is_local,
    kafka_services,
    quorum_state,
    render_server_properties,
)
from billing.settings import Settings


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _cluster(tmp_path: Path, **overrides) -> Settings:
    return Settings(state_dir=tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:17192",
                    kafka_controller_port=17193, **overrides)


def test_bootstrap_names_every_node_and_topics_are_replicated(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    assert settings.kafka_bootstrap == "127.0.0.1:17192,127.0.0.1:17194,127.0.0.1:17196"
    assert settings.kafka_replication == 3
    assert is_local(settings)
    assert _cluster(tmp_path, kafka_replication=2).kafka_replication == 2
    assert Settings(kafka_brokers=2).kafka_replication == 2


def test_single_node_stays_the_default() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:19092")
    assert settings.kafka_brokers == 1
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.kafka_replication == 1


def test_an_explicit_broker_list_is_an_external_cluster(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_brokers=3, kafka_bootstrap="127.0.0.1:9092,127.0.0.1:9192")
    assert not is_local(settings)
    assert [svc.name for svc in kafka_services(settings)] == ["kafka"]


def test_bad_bootstrap_of_a_cluster_is_refused() -> None:
    with pytest.raises(ValidationError, match="host:port"):
        Settings(kafka_brokers=3, kafka_bootstrap="no-port")


@pytest.mark.parametrize("node", [1, 2, 3])
def test_every_node_is_a_broker_and_a_voter_of_one_quorum(tmp_path: Path, node: int) -> None:
    props = _props(render_server_properties(_cluster(tmp_path), tmp_path / "data", node))
    port, controller = 17192 + 2 * (node - 1), 17193 + 2 * (node - 1)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == str(node)
    assert props["controller.quorum.voters"] == "1@127.0.0.1:17193,2@127.0.0.1:17195,3@127.0.0.1:17197"
    assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
        assert props[key] == "3", key
    for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "2", key
    assert props["unclean.leader.election.enable"] == "false"


def test_nodes_have_their_own_names_folders_logs_and_ports(tmp_path: Path) -> None:
    nodes = kafka_services(_cluster(tmp_path))
    assert [svc.name for svc in nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert len({svc.data for svc in nodes}) == 3
    assert {svc.cluster_id_file for svc in nodes} == {tmp_path / "kafka" / "cluster" / "cluster.id"}
    assert len({svc.managed().log_file for svc in nodes}) == 3
    ports = [port for svc in nodes for _, port in svc.managed().ports]
    assert sorted(ports) == list(range(17192, 17198))
    assert [svc.endpoint for svc in nodes] == ["127.0.0.1:17192", "127.0.0.1:17194", "127.0.0.1:17196"]
    assert all(svc.stops_with_peers for svc in nodes)


def test_the_name_kafka_stands_for_every_node_of_a_local_cluster(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    assert [svc.name for svc in stack.select(settings, ["kafka"])] == ["kafka-1", "kafka-2", "kafka-3"]
    kafka = stack.service(settings, "kafka")
    assert [member.name for member in kafka.members] == ["kafka-1", "kafka-2", "kafka-3"]
    assert kafka.endpoint == settings.kafka_bootstrap
    assert kafka.status().running is False
    with pytest.raises(PlatformError, match="unknown service"):
        stack.select(settings, ["kafka-4"])


def test_the_name_kafka_is_the_single_broker_itself(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:19092")
    kafka = stack.service(settings, "kafka")
    assert isinstance(kafka, KafkaService) and kafka.name == "kafka" and not kafka.stops_with_peers


def test_single_node_keeps_its_folders(tmp_path: Path) -> None:
    (single,) = kafka_services(Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:19092"))
    assert single.name == "kafka" and not single.stops_with_peers
    assert single.data == tmp_path / "kafka" / "data"


def test_quorum_state_names_the_leader_of_the_newest_epoch(tmp_path: Path) -> None:
    log = tmp_path / "__cluster_metadata-0"
    log.mkdir()
    assert quorum_state(tmp_path) is None
    (log / "quorum-state").write_text(json.dumps({"leaderId": 2, "leaderEpoch": 5, "votedId": -1, "data_version": 0}))
    assert quorum_state(tmp_path) == (5, 2)
    (log / "quorum-state").write_text("{not json")
    assert quorum_state(tmp_path) is None
