"""The `billing` Typer application and the console every command prints to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from billing.core.errors import ConfigError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    help="Usage metering, billing and billing analytics pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Options:
    """Global options set by the root callback."""

    debug = False


@app.callback()
def root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """Usage metering, billing and billing analytics pipeline."""
    Options.debug = debug


def utc_moment(text: str, option: str) -> datetime:
    """The ISO 8601 time given to ``option``; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} must be an ISO 8601 time such as 2026-12-01T02:00:00Z (got {text!r})") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress bar for long work in stages; yields the ``progress(stage, done, total)`` callback
    the work reports to."""
    columns = [TextColumn("[bold]{task.description:<26}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=1)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=max(total, 1))

        yield progress
