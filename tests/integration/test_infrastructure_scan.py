"""checkov scans the Dockerfile, terraform/ and every file for secrets (settings in .checkov.yaml): every
finding is fixed, or skipped in place with a reason. checkov runs from its own virtualenv (`make tools`:
its pins, e.g. packaging<24 and networkx 2, clash with the project's)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.paths import REPO_ROOT

FRAMEWORKS = ("dockerfile", "terraform", "secrets")


def _checkov() -> str:
    beside = REPO_ROOT / ".venv-tools" / "bin" / "checkov"
    found = str(beside) if beside.exists() else shutil.which("checkov")
    if found is None:
        pytest.fail("checkov is not installed: run `make tools` (a virtualenv .venv-tools with checkov from PyPI)")
    return found


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    result = subprocess.run([_checkov(), "--directory", str(REPO_ROOT), "--config-file", str(REPO_ROOT / ".checkov.yaml"),
                             "--skip-download", "--output", "json", "--framework", *FRAMEWORKS],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, check=False)
    assert result.stdout.strip(), result.stderr[-2000:]
    parsed = json.loads(result.stdout)
    return {report["check_type"]: report for report in (parsed if isinstance(parsed, list) else [parsed])}


def test_the_image_and_terraform_are_scanned(reports: dict[str, dict]) -> None:
    assert reports["dockerfile"]["summary"]["resource_count"] == 1
    assert reports["terraform"]["summary"]["resource_count"] > 30
    assert all(report["summary"]["parsing_errors"] == 0 for report in reports.values())


def test_no_finding_is_left_open(reports: dict[str, dict]) -> None:
    failed = [f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range'][0]})"
              for report in reports.values() for check in report["results"].get("failed_checks", [])]
    assert not failed, "fix these or skip each in place with `checkov:skip=<id>: <reason>`:\n" + "\n".join(failed)


def test_every_skip_says_why(reports: dict[str, dict]) -> None:
    skipped = [check for report in reports.values() for check in report["results"].get("skipped_checks", [])]
    assert skipped
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment") or "") > 30, f"{check['check_id']} in {check['file_path']} has no reason"
