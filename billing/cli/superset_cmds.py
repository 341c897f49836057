"""`billing superset up | down | export | check`: dashboards as code on a local Superset."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from billing.cli.app import app, console
from billing.core.errors import BillingError, ConfigError
from billing.platform.superset import SupersetService
from billing.platform.superset_assets import ASSETS_DIR, unbundle
from billing.settings import get_settings

superset_app = typer.Typer(help="Superset dashboards: start, stop, export edits, check in a browser.",
                           no_args_is_help=True)
app.add_typer(superset_app, name="superset")


def _service(progress=None) -> SupersetService:
    return SupersetService(get_settings(), progress=progress)


@superset_app.command("up")
def up() -> None:
    """Install Superset (once), start it and import the warehouse connection and dashboards."""
    with console.status("starting Superset…") as spinner:
        svc = _service(progress=spinner.update)
        started = svc.start()
        with svc.client() as api:
            dashboards = api.dashboards()
    s = svc.settings
    console.print(f"superset: {'started' if started else 'already running'} at {svc.endpoint} "
                  f"(login {s.superset_admin_user}); dashboards imported from {ASSETS_DIR}:")
    for board in sorted(dashboards, key=lambda b: b["dashboard_title"]):
        console.print(f"  {board['dashboard_title']}: {svc.endpoint}{board['url']}")


@superset_app.command("down")
def down() -> None:
    """Stop Superset."""
    console.print(f"superset: {'stopped' if _service().stop() else 'not running'}")


@superset_app.command("export")
def export(
    to: Path = typer.Option(ASSETS_DIR, "--to", help="Folder to write the YAML assets to."),
) -> None:
    """Write the datasets, charts and dashboards of the running Superset back to YAML (after UI edits)."""
    with _service().client() as api:
        written = unbundle(api.export_assets(), to)
    console.print(f"exported {len(written)} files to {to}")


@superset_app.command("check")
def check(
    screenshots: Path | None = typer.Option(None, "--screenshots", help="Folder for one PNG per dashboard "
                                               "(default: <state>/superset/screenshots)."),
    filters: list[str] | None = typer.Option(None, "--filter", help="Preselect a native filter, e.g. "
                                                "--filter Region=EMEA (repeatable; values joined by commas)."),
) -> None:
    """Open every dashboard in headless Chromium and verify each chart rendered data without error."""
    from billing.platform.superset_check import check_dashboards

    select = {}
    for text in filters or []:
        name, sep, values = text.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(f"--filter must look like NAME=VALUE[,VALUE] (got {text!r})")
        select[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    svc = _service()
    folder = screenshots or svc.home / "screenshots"
    with console.status("opening dashboards in Chromium…"):
        report = check_dashboards(svc, folder, select=select)
    table = Table(title=f"Superset dashboards at {svc.endpoint}")
    for column in ("dashboard", "charts", "rendered", "problems", "screenshot"):
        table.add_column(column)
    for board in report:
        problems = "; ".join([f"{c['name']}: {c['problem']}" for c in board["charts"] if c["problem"]]
                             + [f"page error: {e}" for e in board["page_errors"]])
        rendered = sum(1 for c in board["charts"] if not c["problem"])
        table.add_row(board["title"], str(len(board["charts"])), str(rendered), problems or "-", board["screenshot"])
    console.print(table)
    failed = [b["title"] for b in report if any(c["problem"] for c in b["charts"])]
    if failed:
        raise BillingError(f"charts failed to render on: {', '.join(failed)}")
