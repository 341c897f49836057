"""`billing warehouse ...` and `billing sql`: schema migrations and ad-hoc SQL."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer
from clickhouse_connect.driver.client import Client
from rich.table import Table

from billing.cli.app import app, console, err_console
from billing.settings import get_settings
from billing.warehouse import migrations
from billing.warehouse.client import client
from billing.warehouse.sql import tables_read_without_final

warehouse_app = typer.Typer(help="Warehouse schema management.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command()
def migrate() -> None:
    """Apply pending schema migrations from clickhouse/schema/ (re-running is a no-op)."""
    settings = get_settings()
    done = migrations.migrate(settings, on_apply=lambda m: console.print(f"applying {m.path.name}"))
    console.print(f"{len(done)} migration(s) applied; schema is up to date.")
    console.print(migrations.ensure_readonly_user(settings))


@warehouse_app.command("status")
def migration_status() -> None:
    """List migrations and whether each is applied."""
    settings = get_settings()
    todo = {m.version for m in migrations.pending(settings)}
    table = Table("version", "name", "state")
    for m in migrations.discover():
        table.add_row(f"{m.version:04d}", m.name, "[yellow]pending" if m.version in todo else "[green]applied")
    console.print(table)


@warehouse_app.command()
def password(readonly: bool = typer.Option(False, "--readonly", help="The read-only user's (Superset's) instead.")) -> None:
    """Print the warehouse admin user and password, or the read-only user's (generated into the state folder unless set)."""
    settings = get_settings()
    if readonly:
        print(f"{settings.clickhouse_readonly_user}:{settings.clickhouse_readonly_password}")
    else:
        print(f"{settings.clickhouse_user}:{settings.clickhouse_password}")


@app.command()
def sql(
    query: str = typer.Argument(..., help="SQL to run; '-' reads it from standard input."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the result to this CSV file."),
    readonly: bool = typer.Option(False, "--readonly", help="Run as the read-only dashboards user."),
) -> None:
    """Run ad-hoc SQL against the warehouse and print the result as a table."""
    settings = get_settings()
    text = sys.stdin.read() if query == "-" else query
    ch = client(settings, readonly=readonly, database=settings.clickhouse_database)
    for table in tables_read_without_final(text, _versioned_tables(ch, settings.clickhouse_database)):
        err_console.print(f"[yellow]warning:[/] {table} is versioned (ReplacingMergeTree): without FINAL a row counts "
                          f"once per stored version until the engine merges them; read it as `{table} FINAL`")
    result = ch.query(text)
    if csv_out:
        with csv_out.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(result.column_names)
            writer.writerows(result.result_rows)
        console.print(f"{len(result.result_rows)} row(s) written to {csv_out}")
        return
    table = Table(*result.column_names)
    for row in result.result_rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)
    console.print(f"{len(result.result_rows)} row(s)")


def _versioned_tables(ch: Client, database: str) -> set[str]:
    """Tables of ``database`` that keep several versions of a row until merged (ReplacingMergeTree)."""
    result = ch.query("SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%ReplacingMergeTree'",
                      parameters={"db": database})
    return set(result.result_columns[0]) if result.result_rows else set()
