"""`billing schemas export`: write the JSON Schema of every event contract to docs/schemas/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from billing.cli.app import app, console
from billing.core.contracts import ALL_MODELS, SCHEMA_VERSION, TOPIC_MODELS
from billing.core.errors import ConfigError

SCHEMA_DIR = Path("docs") / "schemas"
"""Where `billing schemas export` writes by default: docs/schemas of the current folder (a checkout)."""

schemas_app = typer.Typer(help="JSON Schemas of the event contracts.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")


def _file_name(model_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model_name).lower() + ".schema.json"


def render() -> dict[str, str]:
    """File name -> JSON Schema text of every contract (validation mode, stable formatting)."""
    topics = {model.__name__: topic for topic, model in TOPIC_MODELS.items()}
    files = {}
    for model in ALL_MODELS:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"billing/{_file_name(model.__name__)}",
            **model.model_json_schema(mode="validation"),
        }
        schema["x-schema-version"] = SCHEMA_VERSION
        if model.__name__ in topics:
            schema["x-topic"] = topics[model.__name__]
        files[_file_name(model.__name__)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Schema files in ``directory`` that are missing, outdated or no longer generated."""
    expected = render()
    present = {p.name for p in directory.glob("*.schema.json")} if directory.is_dir() else set()
    outdated = [name for name, text in expected.items() if name not in present or (directory / name).read_text() != text]
    return sorted(outdated + sorted(present - set(expected)))


@schemas_app.command("export")
def export(
    out: Path = typer.Option(SCHEMA_DIR, "--out", help="Folder to write the *.schema.json files to."),
    check: bool = typer.Option(False, "--check", help="Only verify the files are current; exit 1 if not."),
) -> None:
    """Write (or with --check, verify) the JSON Schema of every contract."""
    if check:
        outdated = stale(out)
        if outdated:
            raise ConfigError(f"stale schemas in {out}: {', '.join(outdated)}; run `billing schemas export`")
        console.print(f"schemas in {out} are current")
        return
    out.mkdir(parents=True, exist_ok=True)
    files = render()
    for old in out.glob("*.schema.json"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (out / name).write_text(text)
    console.print(f"wrote {len(files)} schemas to {out}")
