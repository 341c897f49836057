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

from billing.errors import PlatformError
from billing.platform.superset import SUPERSET_DIR, SupersetService
from billing.settings import REPO_ROOT

CHROMIUM = "chromium"
# Debian packages of the browser check: the browser, and CJK fonts for customer names in screenshots.
PACKAGES = ("chromium", "fonts-noto-cjk")


def ensure_chromium() -> str:
    """Path of the chromium binary; installs the missing Debian packages (idempotent, needs root or sudo)."""
    env = {**os.environ, "BILLING_EXTRA_APT_PACKAGES": " ".join(PACKAGES)}
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "ensure-system.sh")], env=env,
                          capture_output=True, text=True)
    found = shutil.which(CHROMIUM)
    if done.returncode != 0 or not found:
        raise PlatformError(f"could not install {' '.join(PACKAGES)} with apt-get: "
                            f"{(done.stderr or done.stdout).strip()[-500:]}")
    return found


def check_dashboards(svc: SupersetService, screenshots: Path, timeout_s: float = 600.0) -> list[dict]:
    """Open each dashboard, screenshot it into ``screenshots`` and report every chart.

    Returns ``[{"title", "slug", "screenshot", "charts": [{"id", "name", "rows", "drawn", "problem"}]}]``;
    ``problem`` is empty for a chart that answered rows and drew them without error.
    """
    chromium = ensure_chromium()
    with svc.client() as api:
        boards = [
            {"id": b["id"], "title": b["dashboard_title"], "slug": b["slug"],
             "charts": [{"id": c["id"], "name": c["slice_name"]} for c in api.dashboard_charts(b["id"])]}
            for b in sorted(api.dashboards(), key=lambda b: b["dashboard_title"])
        ]
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
