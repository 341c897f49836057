"""The warehouse process: data survives kill -9, clear start-up errors, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import psutil
import pytest

from billing.platform.process import ManagedProcess
from billing.platform.warehouse_service import WarehouseService
from billing.settings import Settings
from billing.warehouse.client import ping
from tests.paths import REPO_ROOT


def _client(settings: Settings):
    host, port = settings.clickhouse_url.rsplit("/", 1)[-1].split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), compress="lz4")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "billing.chdb_server.server", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(url):
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become healthy")


@pytest.fixture
def private_warehouse(settings: Settings, tmp_path: Path) -> Iterator[WarehouseService]:
    """A warehouse service of its own (state dir, port), so crashing it disturbs no other test."""
    own = WarehouseService(settings.model_copy(update={
        "state_dir": tmp_path / "state", "clickhouse_url": f"http://127.0.0.1:{_free_port()}",
    }))
    own.start()
    yield own
    own.stop()


def test_data_survives_kill_9_and_restart(private_warehouse: WarehouseService) -> None:
    client = _client(private_warehouse.settings)
    client.command("CREATE DATABASE IF NOT EXISTS wh_crash")
    client.command("CREATE TABLE wh_crash.events (id UInt64, note String) ENGINE = MergeTree ORDER BY id")
    client.insert("wh_crash.events", [(i, f"n{i}") for i in range(25_000)])
    client.close()
    managed: ManagedProcess = private_warehouse.managed()
    pid = managed.process().pid
    managed.kill()
    assert not ping(private_warehouse.endpoint) and not psutil.pid_exists(pid)
    assert private_warehouse.start()
    assert managed.process().pid != pid
    client = _client(private_warehouse.settings)
    assert client.query("SELECT count(), sum(id), max(note) FROM wh_crash.events").result_rows == [
        (25_000, sum(range(25_000)), "n9999")
    ]
    client.close()


def test_a_second_server_on_the_same_data_dir_fails_with_one_line(warehouse: WarehouseService) -> None:
    proc = _server(warehouse.data_dir, _free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "is locked by another process (pid" in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_a_taken_port_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _server(tmp_path / "data", taken.getsockname()[1])
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "cannot listen on 127.0.0.1" in out and len(out.strip().splitlines()) == 1, out


def test_a_data_dir_that_is_a_file_fails_with_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "data"
    bogus.write_text("not a directory")
    proc = _server(bogus, _free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "is not a directory" in out and len(out.strip().splitlines()) == 1, out


def test_sigterm_finishes_cleanly_and_keeps_data(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _server(tmp_path / "data", port)
    try:
        _wait_healthy(url, proc)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        client.command("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
        client.insert("t", [(1,), (2,)])
        client.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "warehouse: stopped" in out
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    proc = _server(tmp_path / "data", port)
    try:
        _wait_healthy(url, proc)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        assert client.query("SELECT sum(a) FROM t").result_rows == [(3,)]
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.parametrize("url", ["http://clickhouse.internal:8123", "https://clickhouse.example.com:8443"])
def test_an_external_server_is_never_started_locally(settings: Settings, url: str) -> None:
    external = WarehouseService(settings.model_copy(update={"clickhouse_url": url}))
    assert external.start() is False and external.stop() is False
    assert external.endpoint == url


def test_a_corrupt_data_dir_fails_with_one_line_naming_the_file(tmp_path: Path) -> None:
    port = _free_port()
    proc = _server(tmp_path / "data", port)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        client.command("CREATE TABLE broken (a UInt8) ENGINE = MergeTree ORDER BY a")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    [metadata] = (tmp_path / "data").rglob("broken.sql")
    metadata.write_text("garbage (((")
    proc = _server(tmp_path / "data", _free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and len(out.strip().splitlines()) == 1, out
    assert "cannot open data directory" in out and "broken.sql" in out
