"""docker-compose.yml and terraform/ describe the same product: same settings, real commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import hcl2
import jsonschema
import pytest
import typer.main
import yaml

from billing.cli import app
from billing.settings import Settings
from tests.paths import REPO_ROOT

COMPOSE_FILES = sorted(REPO_ROOT.glob("docker-compose*.yml"))
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
"""The Compose Specification's JSON schema, vendored unchanged (Apache-2.0) from
https://github.com/compose-spec/compose-spec/blob/170098ba07d9f53c383a41bfd4c5166b0a4529a6/schema/compose-spec.json
(no maintained PyPI package ships it); refresh it from there when compose gains a field we use."""
TERRAFORM = sorted((REPO_ROOT / "terraform").glob("*.tf"))
SETTING_NAMES = {f"BILLING_{name.upper()}" for name in Settings.model_fields}


def resolves(args: list[str]) -> bool:
    """True when ``billing <args>`` names a command, or a group that runs without a subcommand
    (options after it are the command's)."""
    command = typer.main.get_command(app)
    for word in args:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        command = command.commands.get(word)
        if command is None:
            return False
    return not hasattr(command, "commands") or command.invoke_without_command


def pipeline_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build") == "."}


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Path):
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(path.read_text())), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_schema_check_catches_a_bad_file():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    bad = {"services": {"worker": {"build": ".", "comand": ["worker"], "ports": "8000:8000"}}}
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(bad))) == 2


def test_compose_settings_exist():
    used = {key for svc in COMPOSE["services"].values() for key in (svc.get("environment") or {}) if key.startswith("BILLING_")}
    assert used, "compose passes BILLING_* settings to the pipeline"
    assert used <= SETTING_NAMES, f"unknown settings: {sorted(used - SETTING_NAMES)}"


@pytest.mark.parametrize("name", sorted(pipeline_services()))
def test_compose_commands_exist(name):
    command = pipeline_services()[name]["command"]
    assert resolves(command), f"service {name}: `billing {' '.join(command)}` is not a command"


def test_compose_runs_three_brokers():
    brokers = [name for name, svc in COMPOSE["services"].items() if str(svc.get("image", "")).startswith("apache/kafka")]
    assert len(brokers) == 3


@pytest.mark.parametrize("path", TERRAFORM, ids=lambda p: p.name)
def test_terraform_parses(path: Path):
    with path.open() as fh:
        assert hcl2.load(fh)


def test_terraform_settings_and_commands_exist():
    text = "\n".join(path.read_text() for path in TERRAFORM)
    used = set(re.findall(r"\bBILLING_[A-Z_]+\b", text))
    assert used and used <= SETTING_NAMES, f"unknown settings: {sorted(used - SETTING_NAMES)}"
    for command in re.findall(r"command\s*=\s*(\[[^\]]*\])", text) + re.findall(r"=\s*(\[\"[a-z]+\", \"[a-z]+\"\])", text):
        words = re.findall(r'"([^"]+)"', command)
        assert resolves(words), f"terraform runs `billing {' '.join(words)}`, which is not a command"
