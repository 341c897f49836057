"""The broker's data folder checks: damaged, foreign or locked folders are refused (no broker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from billing.core.errors import PlatformError
from billing.platform.kafka_broker import KafkaService, lock_holder
from billing.settings import Settings


@pytest.fixture()
def svc(tmp_path: Path) -> KafkaService:
    return KafkaService(Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:29392", kafka_controller_port=29393))


def test_fresh_folder_is_accepted(svc: KafkaService) -> None:
    svc.check_data_dir()
    svc.data.mkdir(parents=True)
    svc.check_data_dir()


def test_files_without_meta_properties_are_refused(svc: KafkaService) -> None:
    (svc.data / "billing.usage-0").mkdir(parents=True)
    with pytest.raises(PlatformError, match="half-formatted"):
        svc.check_data_dir()


def test_meta_properties_without_cluster_id_is_refused(svc: KafkaService) -> None:
    svc.data.mkdir(parents=True)
    (svc.data / "meta.properties").write_text("version=1\nnode.id=1\n")
    with pytest.raises(PlatformError, match="no cluster.id"):
        svc.check_data_dir()


def test_folder_of_another_cluster_is_refused(svc: KafkaService) -> None:
    svc.data.mkdir(parents=True)
    (svc.data / "meta.properties").write_text("version=1\nnode.id=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n")
    svc.cluster_id_file.write_text("BBBBBBBBBBBBBBBBBBBBBB")
    with pytest.raises(PlatformError, match="belongs to cluster AAAAAAAAAAAAAAAAAAAAAA"):
        svc.check_data_dir()


def test_locked_folder_names_the_holder(svc: KafkaService) -> None:
    svc.data.mkdir(parents=True)
    lock = svc.data / ".lock"
    lock.touch()
    assert lock_holder(lock) is None
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PlatformError, match=f"locked by pid {holder.pid}"):
            svc.check_data_dir()
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(lock) is None
