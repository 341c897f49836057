"""The `billing` Typer application and the console every command prints to."""

from __future__ import annotations

import typer
from rich.console import Console

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
