"""Paths of the checkout the tests run from (tests always run from a checkout; the package does not)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
