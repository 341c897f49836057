"""The table changelog producer waits out a broker outage instead of dropping state changes."""

from __future__ import annotations

from confluent_kafka import Producer

from billing.settings import Settings
from streams.app import changelog_config


def test_changelog_messages_never_time_out_and_need_every_replica():
    config = changelog_config(Settings(kafka_bootstrap="127.0.0.1:1"))
    assert config["message.timeout.ms"] == 0 and config["acks"] == "all" and config["enable.idempotence"]
    Producer(config).flush(0)  # librdkafka accepts the combination
