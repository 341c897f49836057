"""`billing report`: print the answers to the finance and operations questions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import typer
from rich.table import Table

from billing.analytics import report
from billing.cli.app import app, console
from billing.settings import get_settings


def cell(value) -> str:
    """Text of one value: decimals without trailing zeros past the cents, NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        whole, _, fraction = text.partition(".")
        return f"{whole}.{fraction.ljust(2, '0')}"
    return str(value)


@app.command("report")
def report_command(
    names: list[str] | None = typer.Argument(None, help="Questions to answer (default: all)."),
    list_only: bool = typer.Option(False, "--list", help="List the questions and exit."),
    csv_dir: Path | None = typer.Option(None, "--csv-dir", help="Also write each answer to <dir>/<question>.csv."),
    limit: int = typer.Option(20, "--limit", min=0, help="Rows printed per question (0: all); CSV files get every row."),
) -> None:
    """Answer the billing questions from the marts (build them first with `billing dbt build`)."""
    known = report.questions()
    if list_only:
        table = Table("question", "asks")
        for question in known.values():
            table.add_row(question.name, question.text)
        console.print(table)
        return
    settings = get_settings()
    for question in report.resolve(names or [], known):
        result = report.answer(settings, question)
        shown = result.rows if limit == 0 else result.rows[:limit]
        table = Table(*result.columns, title=f"{question.name}: {question.text}", title_justify="left")
        for row in shown:
            table.add_row(*(cell(value) for value in row))
        console.print(table)
        if len(shown) < len(result.rows):
            console.print(f"[dim]{len(result.rows) - len(shown)} more row(s); --limit 0 or --csv-dir shows all[/]")
        if csv_dir is not None:
            console.print(f"[dim]{len(result.rows)} row(s) -> {report.write_csv(result, csv_dir)}[/]")
