"""The wheel works installed non-editable, away from the checkout (what the production image does).

The wheel is built from the repository and installed with ``--no-deps`` into a fresh virtualenv
outside the repository; the dependencies come from the project's virtualenv through a path entry,
so the only copy of the project's own code that can be imported is the installed one. From a
folder outside the checkout, with a HOME of its own, the installed ``billing`` migrates a fresh
database on the test warehouse, builds the dbt marts and runs an invoice run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from billing.warehouse.client import client
from billing.warehouse.migrations import discover
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # builds and installs the wheel in fresh virtualenvs: runs in make test's slow shard

LOCAL_ONLY = (".git", ".venv", ".state", "build", "dist", "*.egg-info", "__pycache__", "target", "logs", "screenshots")
"""What a checkout holds that is not the source (the wheel is built from a copy without it, so the
build leaves nothing in the checkout)."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the built wheel installed non-editable; returns its bin folder."""
    root = tmp_path_factory.mktemp("packaging")
    source, wheels = root / "source", root / "wheels"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, cwd=root)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("billing_pipeline-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "--no-deps", "--quiet", str(wheel)], capture_output=True, text=True, cwd=root)
    assert install.returncode == 0, install.stderr
    return venv / "bin"


@pytest.fixture()
def scratch(settings, warehouse, kafka, installed: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for the installed CLI: the test broker and warehouse, fresh databases, no checkout."""
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BILLING_", "PYTHON"))}
    env.update({
        "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
        "PATH": f"{installed}:{env['PATH']}:{Path(sys.executable).parent}",
        "BILLING_CLICKHOUSE_URL": settings.clickhouse_url, "BILLING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "BILLING_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
        "BILLING_CLICKHOUSE_READONLY_PASSWORD": settings.clickhouse_readonly_password,
        "BILLING_CLICKHOUSE_DATABASE": name, "BILLING_CLICKHOUSE_MARTS_DATABASE": f"{name}_marts",
    })
    yield env
    admin = client(settings)
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.command(f"DROP DATABASE IF EXISTS {name}_marts")


def _billing(bin_dir: Path, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "billing"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "python"), "-c", "import billing, billing.resources as r; "
                            "print(billing.__file__); print(r.SCHEMA_MIGRATIONS)"],
                           capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert where.returncode == 0, where.stderr
    package, schema = where.stdout.split()
    assert str(installed.parent) in package and str(REPO_ROOT) not in package
    assert sorted(p.name for p in Path(schema).glob("*.sql")) == [m.path.name for m in discover()]


def test_migrate_dbt_build_and_invoice_run_from_the_wheel(installed: Path, scratch: dict[str, str],
                                                          tmp_path: Path, settings) -> None:
    migrate = _billing(installed, scratch, tmp_path, "warehouse", "migrate")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    applied = client(settings).query(f"SELECT count() FROM {scratch['BILLING_CLICKHOUSE_DATABASE']}.schema_migrations")
    assert applied.result_rows[0][0] == len(discover()) > 0

    build = _billing(installed, scratch, tmp_path, "dbt", "build")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    plans = client(settings).query(f"SELECT count() FROM {scratch['BILLING_CLICKHOUSE_MARTS_DATABASE']}.dim_plan")
    assert plans.result_rows[0][0] > 0

    run = _billing(installed, scratch, tmp_path, "invoice", "run", "--period", "2026-10")
    assert run.returncode == 0, run.stdout + run.stderr
    state = Path(scratch["XDG_DATA_HOME"]) / "billing-pipeline"
    assert (state / "dbt" / "project" / "dbt_project.yml").is_file()
    assert not (tmp_path / ".state").exists()
