"""Superset, the dashboards service: its own virtualenv, SQLite metadata, gunicorn, assets as code.

Superset's pins conflict with the pipeline's, so it lives in a separate virtualenv
(``BILLING_SUPERSET_VENV``) installed from ``superset/requirements.txt`` once (a stamp file holds
the hash of the requirements). Metadata, the generated secret key and the bootstrap stamp live in
``<state>/superset``. After start, the ClickHouse connection (read-only user) and every dataset,
chart and dashboard in ``superset/assets/`` are imported through the REST API.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from billing.core.errors import PlatformError
from billing.platform.process import ManagedProcess, http_ok, tail
from billing.platform.service import Service
from billing.platform.superset_api import SupersetClient
from billing.platform.superset_assets import ASSETS_DIR, bundle
from billing.resources import SUPERSET
from billing.settings import Settings

SUPERSET_DIR = SUPERSET
REQUIREMENTS = SUPERSET_DIR / "requirements.txt"
CONFIG = SUPERSET_DIR / "superset_config.py"

Progress = Callable[[str], None]


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def health(url: str, timeout: float = 2.0) -> bool:
    """True when Superset's ``/health`` answers ``OK``."""
    return http_ok(url.rstrip("/") + "/health", b"OK", timeout)


def _base_python() -> str:
    """A Python interpreter to create the virtualenv with (the one behind the project's venv)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


class SupersetService(Service):
    """Apache Superset on ``BILLING_SUPERSET_HOST:PORT`` with the project's dashboards imported."""

    name = "superset"
    optional = True

    def __init__(self, settings: Settings, progress: Progress | None = None):
        super().__init__(settings)
        self.progress = progress or (lambda _text: None)

    @property
    def endpoint(self) -> str:
        return f"http://{self.settings.superset_host}:{self.settings.superset_port}"

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "superset"

    @property
    def venv(self) -> Path:
        return self.settings.superset_venv

    def bin(self, program: str) -> Path:
        return self.venv / "bin" / program

    # -- install and bootstrap -------------------------------------------------------------------

    def install(self) -> bool:
        """Create the virtualenv and install the pinned requirements; False if already current."""
        stamp = self.venv / ".requirements.sha256"
        digest = requirements_digest()
        if stamp.exists() and stamp.read_text().strip() == digest and self.bin("superset").exists():
            return False
        self.progress("installing Superset into its own virtualenv (once, a few minutes)…")
        if not self.bin("python").exists():
            self._run([_base_python(), "-m", "venv", str(self.venv)], "create the Superset virtualenv", 300)
        self._run([str(self.bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "-r", str(REQUIREMENTS)], "install superset/requirements.txt", 1800)
        stamp.write_text(digest)
        return True

    def secret_key(self) -> str:
        """BILLING_SUPERSET_SECRET_KEY, else a key generated on first use and kept in the state dir."""
        if self.settings.superset_secret_key:
            return self.settings.superset_secret_key
        path = self.home / "secret_key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def environment(self) -> dict[str, str]:
        """Environment of every Superset process (CLI and web server)."""
        return {
            "SUPERSET_CONFIG_PATH": str(CONFIG),
            "SUPERSET_HOME": str(self.home),
            "SUPERSET_SECRET_KEY": self.secret_key(),
            "BILLING_CLICKHOUSE_DATABASE": self.settings.clickhouse_database,
            "BILLING_CLICKHOUSE_MARTS_DATABASE": self.settings.clickhouse_marts_database,
            "FLASK_APP": "superset",
            "PYTHONUNBUFFERED": "1",
            "TZ": "UTC",
        }

    def bootstrap(self) -> bool:
        """Create or upgrade the metadata database, roles and the admin user; False if done before."""
        stamp = self.home / ".bootstrapped"
        digest = requirements_digest()
        if stamp.exists() and stamp.read_text().strip() == digest and (self.home / "superset.db").exists():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        superset, env = str(self.bin("superset")), self.environment()
        self.progress("creating Superset's metadata database…")
        self._run([superset, "db", "upgrade"], "superset db upgrade", 600, env)
        self.progress("creating Superset roles and the admin user…")
        s = self.settings
        self._run([superset, "fab", "create-admin", "--username", s.superset_admin_user, "--firstname", "Billing",
                   "--lastname", "Admin", "--email", f"{s.superset_admin_user}@localhost",
                   "--password", s.superset_admin_password], "create the Superset admin user", 300, env)
        self._run([superset, "init"], "superset init", 600, env)
        stamp.write_text(digest)
        return True

    def _run(self, argv: Sequence[str], what: str, timeout: float, extra_env: dict[str, str] | None = None) -> None:
        log = self.settings.log_dir / "superset-setup.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(extra_env or {})
        with log.open("ab") as out:
            out.write(f"\n--- {what}: {' '.join(argv[:4])}\n".encode())
            out.flush()
            try:
                done = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, cwd=self.home if self.home.exists() else None, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise PlatformError(f"could not {what}: no result within {timeout:.0f}s; see {log}") from None
        if done.returncode != 0:
            raise PlatformError(f"could not {what} (exit {done.returncode}); see {log}:\n{tail(log)}")

    # -- the running service ---------------------------------------------------------------------

    def prepare(self) -> None:
        self.install()
        self.bootstrap()

    def managed(self) -> ManagedProcess:
        s = self.settings
        return ManagedProcess(
            name=self.name,
            argv=[str(self.bin("gunicorn")), "--bind", f"{s.superset_host}:{s.superset_port}",
                  "--workers", str(s.superset_workers), "--worker-class", "gthread",
                  "--threads", str(s.superset_threads), "--timeout", "120", "--limit-request-line", "0",
                  "--limit-request-field_size", "0", "superset.app:create_app()"],
            run_dir=s.run_dir,
            log_dir=s.log_dir,
            health=lambda: health(self.endpoint),
            ports=[(s.superset_host, s.superset_port)],
            env=self.environment(),
            cwd=self.home,
            hint="set BILLING_SUPERSET_PORT",
        )

    def start(self) -> bool:
        """Install, bootstrap, start gunicorn and import the dashboards; False if it was running."""
        self.prepare()
        self.progress("starting Superset…")
        started = self.managed().start(timeout=self.settings.superset_start_timeout_s)
        self.after_start()
        return started

    def after_start(self) -> None:
        """Register the warehouse (read-only user) and import every asset in ``superset/assets``."""
        self.progress("importing datasets, charts and dashboards…")
        self.import_assets()

    def client(self) -> SupersetClient:
        """A logged-in REST client of the running server."""
        return SupersetClient(self.endpoint, self.settings.superset_admin_user, self.settings.superset_admin_password)

    def import_assets(self, assets_dir: Path = ASSETS_DIR) -> None:
        archive, passwords = bundle(self.settings, assets_dir)
        with self.client() as api:
            api.import_assets(archive, passwords)

    def details(self) -> str:
        return f"metadata {self.home / 'superset.db'}"
