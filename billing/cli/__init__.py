"""Entry point of the `billing` command. Command modules register themselves on ``app``."""

from __future__ import annotations

import sys

from billing.cli import platform_cmds  # noqa: F401  (registers commands)
from billing.cli import schema_cmds  # noqa: F401
from billing.cli.app import Options, app, err_console
from billing.errors import BillingError


def main() -> None:
    """Run the CLI; print BillingError as one line (full traceback with --debug)."""
    try:
        app()
    except BillingError as exc:
        if Options.debug or "--debug" in sys.argv:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
