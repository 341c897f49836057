"""Report workers as `billing reports worker` processes, and following a job over the API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.api_fixtures import bearer

WAIT_S = 120


def start_worker(env: dict[str, str], name: str, log: Path | None = None) -> subprocess.Popen:
    """A `billing reports worker` process; its stderr (warnings) in ``log`` when given, else a pipe."""
    argv = [sys.executable, "-m", "billing", "reports", "worker", "--name", name]
    if log is None:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with log.open("w") as stderr:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGCONT)  # a stopped process handles SIGTERM once continued
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def until_done(base: str, token: str, job: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        body = httpx.get(f"{base}/v1/reports/{job}", headers=bearer(token)).json()
        if body["status"] in ("completed", "failed", "expired") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)
