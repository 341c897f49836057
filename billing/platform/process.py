"""Background processes with pid files, log files, health checks and clean shutdown.

Every local service (broker, warehouse, workers, API, Superset) is a :class:`ManagedProcess`.
A process is started in its own session (process group), so ``stop`` reaches its children too
and nothing is left behind. The pid file records when the process started, counted from the
machine's boot (a wall-clock start time moves when the clock is stepped, which made a running
service look stale), so a stale pid file (or a pid reused by an unrelated program) is recognised
and ignored.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from billing.core.errors import PlatformError

HealthCheck = Callable[[], bool]


def port_owner(host: str, port: int) -> str | None:
    """Describe who listens on ``host:port`` ("pid 123 (java)"), or None when the port is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return None
        except OSError:
            pass
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "another process"


def since_boot(proc: psutil.Process) -> float:
    """Seconds from the machine's boot to the start of ``proc``: unlike ``create_time`` it stays put
    when the wall clock is stepped or drifts (psutil adds the boot time as it reads it now)."""
    return proc.create_time() - psutil.boot_time()


def http_ok(url: str, expect: bytes | None = None, timeout: float = 2.0) -> bool:
    """True when ``GET url`` answers 200 (and, with ``expect``, that body after stripping)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200 and (expect is None or response.read().strip() == expect)
    except (urllib.error.URLError, OSError):
        return False


def tail(path: Path, lines: int = 15) -> str:
    """Last ``lines`` lines of a text file ('' if it does not exist)."""
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """A long-running local service started in the background.

    ``ports`` are (host, port) pairs the service will listen on; they are checked before start so
    a taken port is reported instead of a confusing crash.
    """

    name: str
    argv: Sequence[str]
    run_dir: Path
    log_dir: Path
    health: HealthCheck
    ports: Sequence[tuple[str, int]] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    hint: str = ""

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def process(self) -> psutil.Process | None:
        """The running process recorded in the pid file, or None (stale pid files are removed)."""
        try:
            record = json.loads(self.pid_file.read_text())
            proc = psutil.Process(int(record["pid"]))
            if abs(since_boot(proc) - float(record["since_boot"])) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        self.pid_file.unlink(missing_ok=True)
        return None

    def is_running(self) -> bool:
        return self.process() is not None

    def is_healthy(self) -> bool:
        """True when the process runs (or is external) and its health check passes."""
        try:
            return bool(self.health())
        except Exception:
            return False

    def start(self, timeout: float) -> bool:
        """Start the service and wait until healthy. Returns False if it was already running."""
        if self.is_running():
            return False
        for host, port in self.ports:
            owner = port_owner(host, port)
            if owner:
                raise PlatformError(
                    f"{self.name}: port {host}:{port} is already taken by {owner}; stop it or "
                    f"configure another port{(' (' + self.hint + ')') if self.hint else ''}."
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} starting {self.name}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    list(self.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.cwd, env=env, start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise PlatformError(f"{self.name}: cannot run {self.argv[0]!r} ({exc.strerror}).") from exc
        proc = psutil.Process(popen.pid)
        self.pid_file.write_text(json.dumps({"pid": popen.pid, "since_boot": since_boot(proc)}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise PlatformError(
                    f"{self.name} exited with code {popen.returncode} during start-up; "
                    f"see {self.log_file}:\n{tail(self.log_file)}"
                )
            if self.is_healthy():
                return True
            time.sleep(0.2)
        self.stop()
        raise PlatformError(
            f"{self.name} did not become healthy within {timeout:.0f}s and was stopped; "
            f"see {self.log_file}:\n{tail(self.log_file)}"
        )

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the service and its children (TERM, then KILL after ``timeout``). False if not running."""
        proc = self.process()
        if proc is None:
            return False
        members = [proc, *proc.children(recursive=True)]
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            proc.terminate()
        _, alive = psutil.wait_procs(members, timeout=timeout)
        for member in alive:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the service without any shutdown (used by crash tests)."""
        proc = self.process()
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            psutil.wait_procs([proc], timeout=10)
            self.pid_file.unlink(missing_ok=True)
