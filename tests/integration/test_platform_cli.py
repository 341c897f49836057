"""`billing up | status | down` as a user runs them: real processes, nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest

from billing.core.webhooks.endpoints import EXAMPLE_ENDPOINTS
from billing.platform import stack
from billing.settings import Settings
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # starts and stops the whole local platform: runs in make test's slow shard

STATE = REPO_ROOT / ".state" / "test-platform"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def env():
    ports = [free_port() for _ in range(6)]
    return {
        **os.environ,
        "BILLING_STATE_DIR": str(STATE),
        "BILLING_KAFKA_BOOTSTRAP": f"127.0.0.1:{ports[0]}",
        "BILLING_KAFKA_CONTROLLER_PORT": str(ports[1]),
        "BILLING_CLICKHOUSE_URL": f"http://127.0.0.1:{ports[2]}",
        "BILLING_API_PORT": str(ports[3]),
        "BILLING_WORKER_WEB_PORT": str(ports[4]),
        "BILLING_SUPERSET_PORT": str(ports[5]),
        "BILLING_WEBHOOK_ENDPOINTS_FILE": str(EXAMPLE_ENDPOINTS),
    }


def billing(env, *args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def processes_using_state() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(STATE) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def test_up_status_down_leaves_no_process_behind(env):
    try:
        up = billing(env, "up")
        assert up.returncode == 0, up.stderr
        status = billing(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "stopped" not in status.stdout and "unhealthy" not in status.stdout
        expected = stack.select(Settings(webhook_endpoints_file=EXAMPLE_ENDPOINTS), None, with_optional=False)
        assert "webhooks" in [s.name for s in expected], "endpoints configured: up delivers webhooks"
        assert status.stdout.count("healthy") == len(expected)
        assert "off (optional)" in status.stdout, "Superset is optional and not started by a plain `up`"
        assert processes_using_state(), "services should run while up"
        again = billing(env, "up")
        assert again.returncode == 0, "up is idempotent"
    finally:
        down = billing(env, "down")
    assert down.returncode == 0, down.stderr
    assert "kafka: stopped" in down.stdout and "warehouse: stopped" in down.stdout
    assert processes_using_state() == []
    stopped = billing(env, "status")
    assert stopped.returncode == 3 and "healthy" not in stopped.stdout


def test_failed_up_stops_what_it_started(env):
    kafka_port = int(env["BILLING_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", kafka_port))
        squatter.listen()
        try:
            up = billing(env, "up")
        finally:
            billing(env, "down")
    assert up.returncode == 1
    assert "Traceback" not in up.stderr
    assert f"port 127.0.0.1:{kafka_port} is already taken" in up.stderr
    assert processes_using_state() == [], "the warehouse started by the failed `up` must be stopped"
