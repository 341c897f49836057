"""Open Superset dashboards in headless Chromium the way a person would and report every chart.

Runs with the Superset virtualenv's Python (Playwright lives there) and Debian's chromium (no
browser download). Reads a JSON job on stdin::

    {"url": ..., "username": ..., "password": ..., "chromium": "/usr/bin/chromium",
     "screenshots": "<folder>", "dashboards": [{"id": 1, "title": ..., "slug": ..., "query": "native_filters=...",
                                                "charts": [{"id": 7, "name": ...}]}]}

logs in through the login form, opens each dashboard, waits until every chart's data request has
answered and its spinner is gone, and prints one JSON report: per chart the row count of its data
response, whether it drew something, any error text, and per dashboard a full-page screenshot.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, Response, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
DRAWN = "canvas, svg, table, .header-line, .superset-legacy-chart-big-number, [data-test='big-number']"
ERRORS = "[data-test='error-tooltip'], .alert-danger, [role='alert'], .ant-alert-error"
BAD_TEXT = ("Invalid format", "No results", "Unexpected error")
CHARTS = "[data-test='chart-grid-component']"
LOAD_TIMEOUT_S = 180.0
EMPTY_RELOAD_S = 30.0
MAX_RELOADS = 3
LOGIN_TRIES = 3
LOGIN_TIMEOUT_S = 40.0


def chart_ids(body: dict) -> list[int]:
    """Slice ids a /api/v1/chart/data request is for."""
    form = body.get("form_data") or {}
    return [form["slice_id"]] if form.get("slice_id") else []


def log_in(page: Page, url: str, username: str, password: str) -> None:
    """Log in through the login form; a try after which the page stays on the form is retried (CI once
    saw it stay for minutes), and the error says what each try saw."""
    seen = []
    for _ in range(LOGIN_TRIES):
        problem = _try_log_in(page, url, username, password)
        if problem is None:
            return
        seen.append(problem)
    raise RuntimeError(f"could not log in as {username!r} in {LOGIN_TRIES} tries: " + "; ".join(seen))


def _try_log_in(page: Page, url: str, username: str, password: str) -> str | None:
    """One login through the form: None once the page left it, else what the page showed."""
    page.goto(f"{url}/login/", wait_until="domcontentloaded")
    try:  # the form is a React app: let it finish loading before typing into it
        page.wait_for_load_state("networkidle", timeout=30_000)
    except PlaywrightTimeout:
        pass
    page.fill("[data-test='username-input']", username)
    page.fill("[data-test='password-input']", password)
    posts: list[str] = []

    def on_login_post(response: Response) -> None:
        if "/login" in response.url and response.request.method == "POST":
            posts.append(f"POST {response.url} -> {response.status}")

    page.on("response", on_login_post)
    try:
        page.click("[data-test='login-button']")
        page.wait_for_url(lambda u: "/login" not in u, timeout=LOGIN_TIMEOUT_S * 1000, wait_until="commit")
        return None
    except PlaywrightTimeout:
        shown = " | ".join(t.strip() for t in page.locator(ERRORS).all_inner_texts() if t.strip())
        return (f"still on {page.url} after {LOGIN_TIMEOUT_S:.0f} s; login requests: {posts or 'none'}; "
                f"shown: {shown or 'nothing'}")
    finally:
        page.remove_listener("response", on_login_post)


def open_dashboard(page: Page, url: str, board: dict, folder: Path) -> dict:
    """Open one dashboard and describe each chart."""
    answers: dict[int, dict] = {}
    page_errors: list[str] = []

    def on_response(response: Response) -> None:
        if response.status >= 400:
            page_errors.append(f"HTTP {response.status} {response.request.method} {response.url}")
        if "/api/v1/chart/data" not in response.url or response.request.method != "POST":
            return
        ids = chart_ids(json.loads(response.request.post_data or "{}"))
        try:
            payload = response.json()
        except Exception as exc:  # a non-JSON answer is itself the finding
            payload = {"message": f"unreadable response: {exc}"}
        results = payload.get("result") or []
        errors = [r.get("error") for r in results if r.get("error")] + ([payload["message"]] if "message" in payload else [])
        for chart in ids:
            answers[chart] = {"status": response.status, "rows": sum(int(r.get("rowcount") or 0) for r in results),
                              "errors": errors}

    def on_page_error(error: Exception) -> None:
        page_errors.append(str(error)[:300])

    def on_request_failed(request) -> None:
        if request.failure != "net::ERR_ABORTED":  # aborted by the next navigation: not a finding
            page_errors.append(f"failed {request.method} {request.url}: {request.failure}")

    page.on("response", on_response)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    query = f"?{board['query']}" if board.get("query") else ""
    page.goto(f"{url}/superset/dashboard/{board['slug'] or board['id']}/{query}", wait_until="domcontentloaded")
    wanted = {c["id"] for c in board["charts"]}
    reloads = _wait_for_charts(page, wanted, answers)
    charts = _describe(page, board, answers)
    while any(c["problem"] == "not on the page" for c in charts) and reloads < MAX_RELOADS:
        # the single-page app occasionally empties the grid after its charts loaded: press F5, like a person
        page.reload(wait_until="domcontentloaded")
        reloads += 1 + _wait_for_charts(page, wanted, answers)
        charts = _describe(page, board, answers)
    shot = folder / f"{board['slug'] or board['id']}.png"
    _screenshot(page, wanted, shot)
    page.remove_listener("response", on_response)
    page.remove_listener("pageerror", on_page_error)
    page.remove_listener("requestfailed", on_request_failed)
    return {"title": board["title"], "slug": board["slug"], "screenshot": str(shot), "charts": charts,
            "page_errors": page_errors, "reloads": reloads}


def _absent(page: Page, wanted: set[int]) -> list[int]:
    return [c for c in wanted if not page.locator(f"[data-test-chart-id='{c}']").count()]


def _wait_for_charts(page: Page, wanted: set[int], answers: dict) -> int:
    """Wait until every chart is on the page, answered and done spinning, then for the network to
    settle; reload a page still missing charts after a while. Returns the number of reloads."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    loaded_at, reloads = time.monotonic(), 0
    while time.monotonic() < deadline:
        absent = _absent(page, wanted)
        spinning = page.locator(f"{CHARTS} [data-test='loading-indicator'], {CHARTS} .loading").count()
        if wanted <= answers.keys() and not spinning and not absent:
            break
        if absent and time.monotonic() - loaded_at > EMPTY_RELOAD_S and reloads < MAX_RELOADS:
            reloads += 1
            page.reload(wait_until="domcontentloaded")
            loaded_at = time.monotonic()
        page.wait_for_timeout(500)
    try:  # filter-value queries and the like: let the server finish them before the next dashboard
        page.wait_for_load_state("networkidle", timeout=30_000)
    except PlaywrightTimeout:
        pass
    page.wait_for_timeout(1500)  # let the last animations finish drawing
    return reloads


def _describe(page: Page, board: dict, answers: dict) -> list[dict]:
    """Each chart of ``board`` as it is on the page now, with its data answer and any problem."""
    charts = []
    for chart in board["charts"]:
        slot = page.locator(f"[data-test-chart-id='{chart['id']}']")
        answer = answers.get(chart["id"])
        drawn = slot.locator(DRAWN).count() if slot.count() else 0
        error_text = slot.locator(ERRORS).all_inner_texts() if slot.count() else []
        shown = slot.inner_text() if slot.count() else ""
        error_text += [bad for bad in BAD_TEXT if bad in shown]
        problem = ""
        if not slot.count():
            problem = "not on the page"
        elif answer is None:
            problem = "no data request answered"
        elif answer["status"] != 200 or answer["errors"]:
            problem = f"HTTP {answer['status']}: {'; '.join(map(str, answer['errors']))[:300]}"
        elif answer["rows"] == 0:
            problem = "no rows"
        elif error_text:
            problem = "; ".join(t.strip() for t in error_text if t.strip())[:300] or "error shown"
        elif not drawn:
            problem = "nothing drawn"
        charts.append({"id": chart["id"], "name": chart["name"], "rows": answer["rows"] if answer else 0,
                       "drawn": drawn, "problem": problem})
    return charts


def _screenshot(page: Page, wanted: set[int], path: Path) -> None:
    """A full-page screenshot showing the charts: a full-page capture resizes the page, after which
    the grid was seen re-rendering empty; such a capture is taken again once the charts are back."""
    for _ in range(MAX_RELOADS):
        page.screenshot(path=str(path), full_page=True)
        if not _absent(page, wanted):
            return
        page.wait_for_timeout(EMPTY_RELOAD_S * 1000 / MAX_RELOADS)
    page.screenshot(path=str(path), full_page=True)


def main() -> None:
    job = json.load(sys.stdin)
    folder = Path(job["screenshots"])
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="superset-check-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=job["chromium"], headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000}, device_scale_factor=1,
        )
        # Only the Superset server is reachable: anything else the page asks for is refused and reported.
        context.route(re.compile(f"^(?!{re.escape(job['url'])}/)"), lambda route: route.abort())
        page = context.new_page()
        log_in(page, job["url"], job["username"], job["password"])
        report = [open_dashboard(page, job["url"], board, folder) for board in job["dashboards"]]
        context.close()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
