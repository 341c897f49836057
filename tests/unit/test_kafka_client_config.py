"""The one librdkafka configuration factory: every producer is durable, callers only tune."""

from __future__ import annotations

import pytest

from billing.kafka.config import client_config, producer_config


def test_a_producer_is_durable_and_keeps_the_callers_tuning() -> None:
    config = producer_config("b1:9092,b2:9092", {"linger.ms": 7})
    assert config["bootstrap.servers"] == "b1:9092,b2:9092"
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["compression.type"] == "lz4" and config["linger.ms"] == 7


def test_tuning_may_change_compression_but_never_weaken_durability() -> None:
    assert producer_config("b:1", {"compression.type": "zstd"})["compression.type"] == "zstd"
    with pytest.raises(ValueError, match="acks"):
        producer_config("b:1", {"acks": 1})
    with pytest.raises(ValueError, match="enable.idempotence"):
        producer_config("b:1", {"enable.idempotence": False})


def test_any_client_shares_the_connection_settings() -> None:
    assert client_config("b:1", {"group.id": "g"}) == {"bootstrap.servers": "b:1", "group.id": "g"}
