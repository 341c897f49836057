"""Run the `billing` CLI in the test's own process, as a user would type it."""

from __future__ import annotations

import sys

from billing.cli import main


def billing_in_process(*args: str, capsys) -> tuple[int, str, str]:
    """`billing ARGS` in-process: (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["billing", *args]
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = exited.code
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err
