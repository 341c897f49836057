"""The same migrations for a ClickHouse cluster (``BILLING_CLICKHOUSE_CLUSTER``).

Each ``CREATE TABLE db.t`` of a migration becomes two tables, both ``ON CLUSTER``:

* ``db.t_local``: the data, with the Replicated variant of the table's engine (its ZooKeeper/Keeper
  path ``/clickhouse/tables/{shard}/db/t_local`` and replica ``{replica}`` from each server's macros);
* ``db.t``: a ``Distributed`` table over ``t_local`` on every shard, under the original name, so
  every reader (invoice runs, the API, dbt, dashboards) and the stream worker's inserts use the
  names they use on one server. Rows are sharded by ``customer_id`` when the table's sorting key
  starts with it (every customer table), else by a hash of the whole sorting key: every version
  of a row lands on one shard, so ReplacingMergeTree and ``FINAL`` stay exact per shard.

``CREATE DATABASE`` gains ``ON CLUSTER``; ``ALTER TABLE db.t`` alters ``t_local`` and ``t`` alike.
"""

from __future__ import annotations

import re

from billing.core.errors import ConfigError
from billing.warehouse.sql import Kind, Token, tokenize

LOCAL_SUFFIX = "_local"
_CREATE_DATABASE = re.compile(r"^(CREATE DATABASE IF NOT EXISTS [\w$]+)(.*)$", re.DOTALL | re.IGNORECASE)
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS ([\w$]+)\.(\w+)\s*(\(.*)$", re.DOTALL | re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^ALTER TABLE ([\w$]+)\.(\w+)\s+(.*)$", re.DOTALL | re.IGNORECASE)
_CLAUSES = {"PARTITION", "ORDER", "PRIMARY", "SAMPLE", "TTL", "SETTINGS", "COMMENT"}


def on_cluster(statement: str, cluster: str) -> list[str]:
    """The statement(s) that apply ``statement`` of a migration to every server of ``cluster``."""
    where = f"ON CLUSTER '{cluster}'"
    if match := _CREATE_DATABASE.match(statement):
        return [f"{match.group(1)} {where}{match.group(2)}"]
    if match := _ALTER_TABLE.match(statement):
        database, table, change = match.groups()
        return [f"ALTER TABLE {database}.{table}{LOCAL_SUFFIX} {where} {change}",
                f"ALTER TABLE {database}.{table} {where} {change}"]
    if match := _CREATE_TABLE.match(statement):
        database, table, body = match.groups()
        return _replicated_and_distributed(database, table, body, cluster)
    raise ConfigError(f"cannot render this migration statement for a cluster (only CREATE DATABASE, CREATE TABLE "
                      f"and ALTER TABLE are known): {statement[:120]}")


def _top_level_words(body: str) -> list[Token]:
    return [token for token in tokenize(body) if token.depth == 0 and token.kind is Kind.WORD]


def _replicated_and_distributed(database: str, table: str, body: str, cluster: str) -> list[str]:
    words = _top_level_words(body)
    engine = next((i for i, token in enumerate(words) if token.upper == "ENGINE"), None)
    if engine is None or engine + 1 >= len(words):
        raise ConfigError(f"{database}.{table}: a table of a cluster schema needs an explicit ENGINE.")
    name = words[engine + 1]
    if not name.text.endswith("MergeTree"):
        raise ConfigError(f"{database}.{table}: only MergeTree engines can be replicated (found {name.text}).")
    local = f"{table}{LOCAL_SUFFIX}"
    rest = body[name.end:]
    args = ""
    if rest.lstrip().startswith("("):
        open_at = body.index("(", name.end)
        close_at = _matching_paren(body, open_at)
        args, rest = body[open_at + 1:close_at].strip(), body[close_at + 1:]
    replicated_args = ", ".join(filter(None, [f"'/clickhouse/tables/{{shard}}/{database}/{local}'", "'{replica}'", args]))
    create_local = (f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER '{cluster}' {body[:name.start]}"
                    f"Replicated{name.text}({replicated_args}){rest}")
    create_distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER '{cluster}' AS {database}.{local} "
        f"ENGINE = Distributed('{cluster}', '{database}', '{local}', {_shard_key(body, words, f'{database}.{table}')})"
    )
    return [create_local, create_distributed]


def _matching_paren(text: str, open_at: int) -> int:
    depth = None
    for token in tokenize(text[open_at:]):
        if token.kind is Kind.PUNCT and token.text == "(" and depth is None:
            depth = token.depth
        elif token.kind is Kind.PUNCT and token.text == ")" and token.depth == depth:
            return open_at + token.start
    raise ConfigError(f"unbalanced parentheses in {text[open_at:open_at + 80]!r}")


def _shard_key(body: str, words: list[Token], table: str) -> str:
    """``cityHash64(customer_id)`` when the sorting key starts with customer_id, else a hash of the
    whole sorting key."""
    order = next((i for i, token in enumerate(words[:-1]) if token.upper == "ORDER" and words[i + 1].upper == "BY"), None)
    if order is None:
        raise ConfigError(f"{table}: a table of a cluster schema needs an ORDER BY to shard by.")
    start = words[order + 1].end
    end = next((token.start for token in words[order + 2:] if token.upper in _CLAUSES), len(body))
    key = body[start:end].strip()
    columns = key[1:-1] if key.startswith("(") and key.endswith(")") else key
    if columns.split(",")[0].strip() == "customer_id":
        return "cityHash64(customer_id)"
    return f"cityHash64({columns})"
