"""ManagedProcess: start/stop, stale pid files, taken ports, start-up failures — with real processes."""

from __future__ import annotations

import json
import socket
import sys
import time

import psutil
import pytest

from billing.core.errors import PlatformError
from billing.platform.process import ManagedProcess, port_owner


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_server(tmp_path, port: int, *, spawn_child: bool = False, **kwargs) -> ManagedProcess:
    code = (
        "import subprocess, sys, http.server\n"
        + ("subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n" if spawn_child else "")
        + f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    return ManagedProcess(
        name="web",
        argv=[sys.executable, "-c", code],
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
        health=lambda: listening(port),
        ports=[("127.0.0.1", port)],
        cwd=tmp_path,
        **kwargs,
    )


def test_start_then_stop_leaves_no_process_behind(tmp_path):
    port = free_port()
    proc = http_server(tmp_path, port, spawn_child=True)
    assert proc.start(timeout=20) is True
    main = proc.process()
    assert main is not None and proc.is_healthy()
    time.sleep(0.3)
    family = [main, *main.children(recursive=True)]
    assert len(family) == 2
    assert proc.start(timeout=20) is False, "second start must be a no-op"
    assert proc.stop() is True
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    assert not proc.pid_file.exists()
    assert not listening(port)
    assert proc.stop() is False


def test_stale_pid_file_is_ignored(tmp_path):
    port = free_port()
    proc = http_server(tmp_path, port)
    proc.run_dir.mkdir(parents=True)
    dead = psutil.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc.pid_file.write_text(json.dumps({"pid": dead.pid, "since_boot": 1.0}))
    assert proc.process() is None
    assert not proc.pid_file.exists()
    proc.pid_file.write_text("garbage")
    assert proc.start(timeout=20) is True
    proc.stop()


def test_pid_reused_by_another_program_is_not_ours(tmp_path):
    proc = http_server(tmp_path, free_port())
    proc.run_dir.mkdir(parents=True)
    proc.pid_file.write_text(json.dumps({"pid": psutil.Process().pid, "since_boot": 12345.0}))
    assert proc.process() is None


def test_running_service_survives_a_stepped_clock(tmp_path, monkeypatch):
    proc = http_server(tmp_path, free_port())
    assert proc.start(timeout=20) is True
    try:
        stepped = psutil.boot_time() + 1.0
        monkeypatch.setattr(psutil._psplatform, "boot_time", lambda: stepped)
        assert proc.process() is not None, "a clock step must not orphan a running service"
    finally:
        monkeypatch.undo()
        assert proc.stop() is True


def test_taken_port_is_reported_with_its_owner(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_owner("127.0.0.1", port) is not None
        proc = http_server(tmp_path, port)
        with pytest.raises(PlatformError, match=f"port 127.0.0.1:{port} is already taken"):
            proc.start(timeout=5)
    assert not proc.pid_file.exists()


def test_exit_during_startup_shows_the_log(tmp_path):
    proc = ManagedProcess(
        name="broken",
        argv=[sys.executable, "-c", "import sys; print('bad config: xyz'); sys.exit(3)"],
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
        health=lambda: False,
    )
    with pytest.raises(PlatformError, match=r"(?s)exited with code 3.*bad config: xyz"):
        proc.start(timeout=20)
    assert not proc.pid_file.exists()


def test_start_timeout_stops_the_process(tmp_path):
    proc = ManagedProcess(
        name="slow",
        argv=[sys.executable, "-c", "import time; time.sleep(600)"],
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
        health=lambda: False,
    )
    with pytest.raises(PlatformError, match="did not become healthy within 1s"):
        proc.start(timeout=1)
    assert proc.process() is None


def test_missing_executable_is_a_clear_error(tmp_path):
    proc = ManagedProcess(
        name="ghost", argv=["/nonexistent/binary"], run_dir=tmp_path, log_dir=tmp_path, health=lambda: True
    )
    with pytest.raises(PlatformError, match="cannot run '/nonexistent/binary'"):
        proc.start(timeout=5)


def test_http_ok_checks_status_and_body():
    import http.server
    import threading

    from billing.platform.process import http_ok

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ping" else 404)
            self.end_headers()
            self.wfile.write(b"Ok.\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert http_ok(base + "/ping", b"Ok.")
        assert http_ok(base + "/ping")
        assert not http_ok(base + "/ping", b"OK")
        assert not http_ok(base + "/missing")
    finally:
        server.shutdown()
    assert not http_ok(base + "/ping")
