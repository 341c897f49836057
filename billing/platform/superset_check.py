"""Check every dashboard of the running Superset in a real headless Chromium.

The browser work runs in Superset's virtualenv (``superset/browser_check.py`` with Playwright)
against Debian's ``chromium``; Playwright never downloads a browser. Chromium (and CJK fonts) are
installed with ``scripts/ensure-system.sh`` when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from billing.core.errors import PlatformError
from billing.platform.superset import SUPERSET_DIR, SupersetService
from billing.resources import ENSURE_SYSTEM

CHROMIUM = "chromium"
# Debian packages of the browser check: the browser, and CJK fonts for customer names in screenshots.
PACKAGES = ("chromium", "fonts-noto-cjk")


def ensure_chromium() -> str:
    """Path of the chromium binary; installs the missing Debian packages (idempotent, needs root or sudo)."""
    env = {**os.environ, "BILLING_EXTRA_APT_PACKAGES": " ".join(PACKAGES)}
    done = subprocess.run(["bash", str(ENSURE_SYSTEM)], env=env,
                          capture_output=True, text=True)
    found = shutil.which(CHROMIUM)
    if done.returncode != 0 or not found:
        raise PlatformError(f"could not install {' '.join(PACKAGES)} with apt-get: "
                            f"{(done.stderr or done.stdout).strip()[-500:]}")
    return found


def _rison(text: str) -> str:
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"


def _filter_query(native_filters: list[dict], select: dict[str, list[str]]) -> str:
    """URL query preselecting the named native select filters (Superset's rison ``native_filters``)."""
    states = []
    for spec in native_filters:
        values = select.get(spec["name"])
        if not values or spec["filterType"] != "filter_select":
            continue
        column, items = spec["targets"][0]["column"]["name"], ",".join(_rison(v) for v in values)
        states.append(f"{_rison(spec['id'])}:(id:{_rison(spec['id'])},extraFormData:(filters:!((col:{_rison(column)},"
                      f"op:IN,val:!({items})))),filterState:(value:!({items})),ownState:())")
    return "native_filters=" + quote("(" + ",".join(states) + ")", safe="") if states else ""


def check_dashboards(svc: SupersetService, screenshots: Path, select: dict[str, list[str]] | None = None,
                     timeout_s: float = 900.0) -> list[dict]:
    """Open each dashboard, screenshot it into ``screenshots`` and report every chart.

    ``select`` preselects native filters by name (``{"Region": ["EMEA"]}``) on the dashboards that
    have them; the others are opened unfiltered. Returns ``[{"title", "slug", "screenshot", "charts":
    [{"id", "name", "rows", "drawn", "problem"}], "page_errors", "reloads"}]``; ``problem`` is empty
    for a chart that answered rows and drew them without error, ``page_errors`` are the page's
    uncaught JavaScript errors and ``reloads`` counts the times a page missing charts was reloaded.
    """
    chromium = ensure_chromium()
    boards = []
    with svc.client() as api:
        for board in sorted(api.dashboards(), key=lambda b: b["dashboard_title"]):
            charts = [{"id": c["id"], "name": c["slice_name"]} for c in api.dashboard_charts(board["id"])]
            entry = {"id": board["id"], "title": board["dashboard_title"], "slug": board["slug"], "charts": charts}
            if select:
                entry["query"] = _filter_query(api.native_filters(board["id"]), select)
            boards.append(entry)
    s = svc.settings
    job = {"url": svc.endpoint, "username": s.superset_admin_user, "password": s.superset_admin_password,
           "chromium": chromium, "screenshots": str(screenshots), "dashboards": boards}
    try:
        done = subprocess.run([str(svc.bin("python")), str(SUPERSET_DIR / "browser_check.py")],
                              input=json.dumps(job), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise PlatformError(f"the browser check did not finish within {timeout_s:.0f}s") from None
    if done.returncode != 0:
        raise PlatformError(f"the browser check failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout)
