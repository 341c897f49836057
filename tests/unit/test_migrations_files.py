"""Schema migration files: naming, ordering, statement splitting and templating."""

from __future__ import annotations

import pytest

from billing.core.errors import ConfigError
from billing.settings import Settings
from billing.warehouse.migrations import discover, split_statements


def test_split_respects_strings_comments_and_parens():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (a String DEFAULT ';', b String COMMENT 'x;y') ENGINE = Memory;
    /* block; comment */ INSERT INTO t VALUES ('1;2', ';');
    SELECT 1
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[0].startswith("CREATE TABLE t") and "';'" in statements[0]
    assert statements[1] == "INSERT INTO t VALUES ('1;2', ';')"
    assert statements[2] == "SELECT 1"


def test_project_migrations_are_ordered_and_templated():
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == 1
    settings = Settings(clickhouse_database="acme", clickhouse_marts_database="acme_marts")
    for migration in found:
        for statement in migration.statements(settings):
            assert "${" not in statement, f"{migration.path.name}: unreplaced placeholder"
    assert any("CREATE TABLE IF NOT EXISTS acme.usage_rollups" in s for m in found for s in m.statements(settings))


def test_bad_file_names_and_duplicate_versions_are_rejected(tmp_path):
    (tmp_path / "0001_ok.sql").write_text("SELECT 1")
    (tmp_path / "0001_again.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match="version 1 is also used"):
        discover(tmp_path)
    (tmp_path / "0001_again.sql").unlink()
    (tmp_path / "2_bad name.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match="NNNN_snake_case.sql"):
        discover(tmp_path)
