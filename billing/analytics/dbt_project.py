"""The dbt project in ``dbt/``: how to run it with the project's settings, and the plan seed.

dbt reads its connection from ``dbt/profiles.yml``, which takes everything from the ``BILLING_*``
environment variables; :func:`dbt_env` exports the resolved :class:`Settings` under those names so
``billing dbt`` and the tests build exactly where the rest of the project reads and writes.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import httpx

from billing.core.errors import ConfigError, ServiceUnavailable
from billing.core.pricing.catalog import PlanCatalog
from billing.core.pricing.money import currency
from billing.resources import DBT_PROJECT
from billing.settings import Settings

PROJECT_DIR = DBT_PROJECT
"""The dbt project as shipped (package data; never written to)."""
PLAN_SEED = Path("seeds") / "plan_catalog.csv"
"""Where the plan seed lives inside a project folder."""
GENERATED = ("target", "logs", "dbt_packages", ".user.yml")
PLAN_COLUMNS = ("plan_id", "product_id", "plan_name", "currency", "billing_interval", "base_fee",
                "minimum_commitment", "metered_charges", "charge_count")


def plan_rows(catalog: PlanCatalog) -> list[tuple]:
    """One row per plan: id, the product subscriptions name, name, currency, interval, flat fees (rounded to
    the currency's minor unit, as invoice lines are), commitment, meters, charge count."""
    rows = []
    for plan in sorted(catalog.plans.values(), key=lambda p: p.id):
        flat = sum((c.amount for c in plan.charges if c.model == "flat"), Decimal(0))
        meters = sorted({c.meter for c in plan.charges if getattr(c, "meter", None)})
        rows.append((plan.id, plan.product_id, plan.name, plan.currency, plan.interval, currency(plan.currency).round(flat),
                     plan.minimum_commitment or Decimal(0), ",".join(meters), len(plan.charges)))
    return rows


def working_copy(settings: Settings) -> Path:
    """A fresh copy of the shipped dbt project in ``<state>/dbt/project``, where dbt may write (the
    plan seed, its caches): the shipped project stays read-only wherever the package is installed."""
    folder = settings.state_dir / "dbt" / "project"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(PROJECT_DIR, folder, ignore=shutil.ignore_patterns(*GENERATED))
    return folder


def write_plan_seed(catalog: PlanCatalog, path: Path) -> int:
    """Write the catalog's plans as the dbt seed ``plan_catalog``; returns the number of plans."""
    rows = plan_rows(catalog)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PLAN_COLUMNS)
        writer.writerows(rows)
    return len(rows)


def dbt_env(settings: Settings, target: str | None = None) -> dict[str, str]:
    """Environment for a dbt process: the current environment plus the settings dbt reads."""
    env = {
        **os.environ,
        "BILLING_CLICKHOUSE_URL": settings.clickhouse_url,
        "BILLING_CLICKHOUSE_USER": settings.clickhouse_user,
        "BILLING_CLICKHOUSE_PASSWORD": settings.clickhouse_password,
        "BILLING_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        "BILLING_CLICKHOUSE_MARTS_DATABASE": settings.clickhouse_marts_database,
        "BILLING_CLICKHOUSE_CLUSTER": settings.clickhouse_cluster or "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(settings.state_dir / "dbt" / "logs"),
        "DBT_TARGET_PATH": str(settings.state_dir / "dbt" / "target"),
    }
    if target is not None:
        env["BILLING_DBT_TARGET"] = target
    return env


def dbt_executable() -> str:
    """The dbt command installed next to this Python (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise ConfigError("dbt is not installed; install the project with `pip install -c constraints.txt -e .`")
    return found


def check_warehouse(settings: Settings) -> None:
    """Raise :class:`ServiceUnavailable` with a hint when the warehouse does not answer."""
    try:
        httpx.get(f"{settings.clickhouse_url.rstrip('/')}/ping", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"cannot reach ClickHouse at {settings.clickhouse_url} ({exc.__class__.__name__}); "
            "start the local stack with `billing up` or set BILLING_CLICKHOUSE_URL."
        ) from None


def run_dbt(settings: Settings, args: Sequence[str], target: str | None = None, capture: bool = False,
            catalog: PlanCatalog | None = None) -> subprocess.CompletedProcess:
    """Run ``dbt <args>`` on a working copy of the project (:func:`working_copy`) with the project's
    profile and the settings' databases; ``catalog`` given, its plans are written as the plan seed first."""
    project = working_copy(settings)
    if catalog is not None:
        write_plan_seed(catalog, project / PLAN_SEED)
    command = [dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(command, env=dbt_env(settings, target), cwd=project, text=True,
                          capture_output=capture, check=False)
