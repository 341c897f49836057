"""The finance and operations questions, answered from the marts.

Each question is a dbt model ``dbt/models/reports/rpt_<name>.sql`` (a view in the marts
database, or a table where the dashboards need it faster) documented by ``rpt_<name>.yml``, whose
``meta`` holds the question text and the row order of the answer. Adding a question means adding
those two files and running ``billing dbt build``; this module discovers questions from the yml files.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

from billing.analytics.dbt_project import PROJECT_DIR
from billing.core.errors import ConfigError
from billing.settings import Settings
from billing.warehouse.client import client

REPORTS_DIR = PROJECT_DIR / "models" / "reports"
PREFIX = "rpt_"


@dataclass(frozen=True)
class Question:
    """One question and the view that answers it."""

    name: str
    text: str
    order_by: str

    @property
    def model(self) -> str:
        return PREFIX + self.name


@dataclass(frozen=True)
class Answer:
    """The rows answering a question."""

    question: Question
    columns: tuple[str, ...]
    rows: list[tuple]


def questions(directory: Path = REPORTS_DIR) -> dict[str, Question]:
    """Every question defined in ``directory``, by name, in name order."""
    found: dict[str, Question] = {}
    for path in sorted(directory.glob(f"{PREFIX}*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            meta = model.get("meta") or {}
            if "question" not in meta or "order_by" not in meta:
                raise ConfigError(f"{path}: model {model['name']} needs meta.question and meta.order_by")
            name = model["name"].removeprefix(PREFIX)
            found[name] = Question(name, meta["question"], meta["order_by"])
    return found


def resolve(names: list[str], known: dict[str, Question]) -> list[Question]:
    """The questions called ``names`` (all when empty); unknown names raise :class:`ConfigError`."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown question(s) {', '.join(unknown)}; `billing report --list` shows them")
    return [known[n] for n in names] if names else list(known.values())


def answer(settings: Settings, question: Question, where: str = "", parameters: dict | None = None) -> Answer:
    """Query the question's view in the marts database (as the read-only user), only the rows matching the
    SQL condition ``where`` (with ``parameters``) when given."""
    database = settings.clickhouse_marts_database
    ch = client(settings, readonly=True, database=database)
    condition = f" WHERE {where}" if where else ""
    result = ch.query(f"SELECT * FROM {database}.{question.model}{condition} ORDER BY {question.order_by}",
                      parameters=parameters)
    return Answer(question, tuple(result.column_names), [tuple(row) for row in result.result_rows])


def write_csv(result: Answer, directory: Path) -> Path:
    """Write an answer to ``<directory>/<question>.csv``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.question.name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(["" if value is None else value for value in row] for row in result.rows)
    return path
