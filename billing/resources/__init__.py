"""Files the package ships as package data, found with :mod:`importlib.resources` so that an
installed wheel finds them as well as a checkout.

In a checkout these entries are links to the top-level folders the project is known by
(``dbt/``, ``clickhouse/schema/``, ``superset/``, ``scripts/ensure-system.sh``); a built wheel
holds copies. Nothing here is written at run time: dbt runs on a working copy in the state folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource(name: str) -> Path:
    """The shipped file or folder ``name`` (``dbt``, ``schema``, ``superset``, ``ensure-system.sh``)."""
    return Path(str(resources.files(__name__) / name))


DBT_PROJECT = resource("dbt")
SCHEMA_MIGRATIONS = resource("schema")
SUPERSET = resource("superset")
ENSURE_SYSTEM = resource("ensure-system.sh")
