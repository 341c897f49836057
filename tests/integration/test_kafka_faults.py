"""Start-up faults of the local broker: one clear error and nothing left running.

These use their own ports and state folder so the session broker is not disturbed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from billing.core.errors import PlatformError
from billing.platform.kafka_broker import KafkaService
from billing.platform.process import port_owner
from billing.settings import Settings
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

BROKER_PORT, CONTROLLER_PORT = 19192, 19193


@pytest.fixture()
def fault_settings() -> Settings:
    return Settings(state_dir=REPO_ROOT / ".state" / "test-faults", kafka_bootstrap=f"127.0.0.1:{BROKER_PORT}",
                    kafka_controller_port=CONTROLLER_PORT)


@pytest.fixture()
def svc(fault_settings: Settings) -> Iterator[KafkaService]:
    service = KafkaService(fault_settings)
    yield service
    service.stop()


def _assert_nothing_running(svc: KafkaService) -> None:
    assert not svc.managed().is_running()
    assert not svc.managed().pid_file.exists()


@pytest.mark.parametrize("port", [BROKER_PORT, CONTROLLER_PORT])
def test_taken_port_is_a_clear_error(svc: KafkaService, port: int) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PlatformError, match=f"port 127.0.0.1:{port} is already taken"):
            svc.start()
    _assert_nothing_running(svc)


def test_broker_not_healthy_in_time_is_stopped(fault_settings: Settings) -> None:
    svc = KafkaService(fault_settings.model_copy(update={"start_timeout_s": 0.5}))
    with pytest.raises(PlatformError, match="did not become healthy within"):
        svc.start()
    _assert_nothing_running(svc)
    assert port_owner("127.0.0.1", BROKER_PORT) is None
    assert port_owner("127.0.0.1", CONTROLLER_PORT) is None


def test_jvm_refusing_to_start_is_explained(fault_settings: Settings) -> None:
    svc = KafkaService(fault_settings.model_copy(update={"kafka_heap": "1q"}))
    with pytest.raises(PlatformError, match="kafka could not start: Invalid maximum heap size: -Xmx1q"):
        svc.start()
    _assert_nothing_running(svc)


def test_damaged_data_folder_starts_nothing(tmp_path, fault_settings: Settings) -> None:
    svc = KafkaService(fault_settings.model_copy(update={"state_dir": tmp_path}))
    (svc.data / "billing.usage-0").mkdir(parents=True)
    with pytest.raises(PlatformError, match="is unusable"):
        svc.start()
    _assert_nothing_running(svc)
    assert not svc.libs.exists()


def test_missing_java_starts_nothing(svc: KafkaService, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PlatformError, match="Java 17\\+ is needed"):
        svc.start()
    _assert_nothing_running(svc)
