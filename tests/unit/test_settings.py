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


def test_the_admin_password_is_generated_once_into_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("BILLING_CLICKHOUSE_PASSWORD", raising=False)
    monkeypatch.delenv("BILLING_CLICKHOUSE_READONLY_PASSWORD", raising=False)
    first = Settings(state_dir=tmp_path)
    stored = tmp_path / "secrets" / "clickhouse_password"
    assert len(first.clickhouse_password) >= 24 and stored.read_text() == first.clickhouse_password
    assert stored.stat().st_mode & 0o777 == 0o600 and stored.parent.stat().st_mode & 0o077 == 0
    assert Settings(state_dir=tmp_path).clickhouse_password == first.clickhouse_password
    assert Settings(state_dir=tmp_path / "other").clickhouse_password != first.clickhouse_password
    readonly = tmp_path / "secrets" / "clickhouse_readonly_password"
    assert sorted(stored.parent.iterdir()) == [stored, readonly]
    assert len(first.clickhouse_readonly_password) >= 24 and readonly.read_text() == first.clickhouse_readonly_password
    assert readonly.stat().st_mode & 0o777 == 0o600
    assert first.clickhouse_readonly_password not in (first.clickhouse_password, "dashboards")
    assert Settings(state_dir=tmp_path).clickhouse_readonly_password == first.clickhouse_readonly_password


def test_a_set_admin_password_is_used_as_is_even_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_CLICKHOUSE_PASSWORD", "")
    monkeypatch.setenv("BILLING_CLICKHOUSE_READONLY_PASSWORD", "ro")
    assert Settings(state_dir=tmp_path).clickhouse_password == ""
    assert Settings(state_dir=tmp_path).clickhouse_readonly_password == "ro"
    assert not (tmp_path / "secrets").exists()
