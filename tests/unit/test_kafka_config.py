"""Rendering of the local broker's configs, Java detection and cluster ids (no broker needed)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from billing.core.errors import PlatformError
from billing.platform.kafka_broker import (
    broker_address,
    find_java,
    is_local,
    kafka_version,
    new_cluster_id,
    parse_java_major,
    read_since,
    render_log4j2,
    render_server_properties,
    startup_failure,
)
from billing.settings import Settings


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_single_kraft_node(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:19092", kafka_controller_port=19093,
                        kafka_retention_hours=48, kafka_partitions=6)
    props = _props(render_server_properties(settings, tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["log.retention.hours"] == "48"
    assert props["num.partitions"] == "6"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "default.replication.factor"):
        assert props[key] == "1", key
    assert not any(key.startswith("zookeeper") for key in props)


def test_log4j2_writes_to_the_given_file(tmp_path: Path) -> None:
    text = render_log4j2(tmp_path / "kafka-server.log")
    assert f"appender.file.fileName = {tmp_path / 'kafka-server.log'}" in text
    assert "rootLogger.appenderRef.file.ref = file" in text


def test_pom_pins_one_kafka_4_version() -> None:
    assert kafka_version().startswith("4.")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_401"', 8),
        ("no version here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_missing_java_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PlatformError, match="apt-get install openjdk-17"):
        find_java()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(PlatformError, match="is Java 11"):
        find_java()


def test_java_home_wins_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'openjdk version "21.0.1"\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert find_java() == str(java)


def test_cluster_ids_are_kraft_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


@pytest.mark.parametrize(
    ("bootstrap", "local"),
    [
        ("127.0.0.1:9092", True),
        ("localhost:9092", True),
        ("kafka-1.internal:9092", False),
        ("127.0.0.1:9092,127.0.0.1:9094", False),
    ],
)
def test_local_broker_only_for_one_loopback_address(bootstrap: str, local: bool) -> None:
    assert is_local(Settings(kafka_bootstrap=bootstrap)) is local


def test_bad_bootstrap_is_a_clear_error() -> None:
    with pytest.raises(PlatformError, match="host:port"):
        broker_address(Settings(kafka_bootstrap="no-port"))


def test_startup_failure_reads_only_the_latest_start() -> None:
    log = (
        "\n--- 2026-01-01T00:00:00Z starting kafka\n"
        "[2026-01-01 00:00:01,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\n"
        "java.lang.RuntimeException: old problem\n"
        "\n--- 2026-01-01T00:01:00Z starting kafka\n"
        "[2026-01-01 00:01:01,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\n"
        "java.lang.RuntimeException: Stored node id 2 doesn't match previous node id 1\n"
        "\tat kafka.Kafka.main(Kafka.scala)\n"
    )
    assert startup_failure(log) == "java.lang.RuntimeException: Stored node id 2 doesn't match previous node id 1"
    assert startup_failure(log + "\n--- 2026-01-01T00:02:00Z starting kafka\n[x] WARN slow\n") is None


def test_startup_failure_of_the_jvm_itself() -> None:
    log = ("\n--- 2026-01-01T00:00:00Z starting kafka\nInvalid maximum heap size: -Xmx1q\n"
           "Error: Could not create the Java Virtual Machine.\n")
    assert startup_failure(log) == "Invalid maximum heap size: -Xmx1q"


def test_read_since_returns_only_the_new_text(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    assert read_since(log, 0) == ""
    log.write_text("old start\n")
    offset = log.stat().st_size
    with log.open("a") as fh:
        fh.write("new start\n")
    assert read_since(log, offset) == "new start\n"
    assert read_since(log, 0, limit=4) == "art\n"
