"""The settings object: environment overrides, absolute state folder."""

from __future__ import annotations

from pathlib import Path

from billing.settings import Settings


def test_relative_state_dir_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BILLING_STATE_DIR", "rel/state")
    settings = Settings()
    assert settings.state_dir == tmp_path / "rel" / "state"
    assert settings.log_dir.is_absolute() and settings.run_dir.is_absolute()


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("BILLING_KAFKA_PARTITIONS", "12")
    monkeypatch.setenv("BILLING_TOPIC_USAGE", "acme.usage")
    settings = Settings()
    assert settings.kafka_partitions == 12
    assert settings.topics()["usage"] == "acme.usage"
    assert Path(settings.state_dir).is_absolute()
