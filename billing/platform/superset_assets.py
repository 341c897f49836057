"""Dashboards as code: ``superset/assets/`` (Superset's YAML export format) <-> an import zip.

The folder holds ``databases/``, ``datasets/``, ``charts/`` and ``dashboards/`` exactly as
Superset exports them, minus the per-export ``metadata.yaml`` and the numeric ids Superset appends
to file names, so an export after edits in the UI diffs cleanly. The database connection is
rewritten at import time to the configured warehouse and read-only user, so the same files work
against the local chdb endpoint and a real ClickHouse server.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import yaml

from billing.core.errors import ConfigError
from billing.resources import SUPERSET
from billing.settings import Settings
from billing.warehouse.client import endpoint

ASSETS_DIR = SUPERSET / "assets"
KINDS = ("databases", "datasets", "charts", "dashboards", "queries")
MASK = "XXXXXXXXXX"
_ROOT = "billing_assets"
_ID_SUFFIX = re.compile(r"_\d+\.yaml$")


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line text (dataset SQL) as literal blocks, so diffs of the assets read well."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def dump(config: dict) -> str:
    """YAML text of one asset (keys in Superset's order)."""
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def warehouse_uri(settings: Settings, password: str = MASK) -> str:
    """SQLAlchemy URI (clickhouse-connect's ``clickhousedb`` dialect) of the read-only user."""
    host, port, secure = endpoint(settings)
    user = quote(settings.clickhouse_readonly_user, safe="")
    uri = f"clickhousedb://{user}:{password}@{host}:{port}/{settings.clickhouse_marts_database}"
    return uri + ("?secure=true" if secure else "")


def asset_files(assets_dir: Path = ASSETS_DIR) -> dict[str, str]:
    """``{"charts/x.yaml": text}`` of every asset file."""
    files = {
        path.relative_to(assets_dir).as_posix(): path.read_text(encoding="utf-8")
        for kind in KINDS
        for path in sorted((assets_dir / kind).rglob("*.yaml"))
    }
    if not any(name.startswith("dashboards/") for name in files):
        raise ConfigError(f"no dashboards found in {assets_dir}/dashboards.")
    return files


def bundle(settings: Settings, assets_dir: Path = ASSETS_DIR) -> tuple[bytes, dict[str, str]]:
    """The import zip of ``assets_dir`` and the password of each database file in it."""
    files = asset_files(assets_dir)
    passwords = {}
    for name in [n for n in files if n.startswith("databases/")]:
        config = yaml.safe_load(files[name])
        config["sqlalchemy_uri"] = warehouse_uri(settings)
        files[name] = dump(config)
        passwords[name] = settings.clickhouse_readonly_password
    metadata = {"version": "1.0.0", "type": "assets",
                "timestamp": datetime.now(UTC).isoformat()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{_ROOT}/metadata.yaml", yaml.safe_dump(metadata))
        for name, text in files.items():
            archive.writestr(f"{_ROOT}/{name}", text)
    return buffer.getvalue(), passwords


def unbundle(export: bytes, assets_dir: Path = ASSETS_DIR) -> list[str]:
    """Write an export zip into ``assets_dir`` (replacing what was there); returns the files written.

    Database files keep the connection URI they had in the folder (the local default), so an export
    from a test or production instance does not leak its address into version control.
    """
    written: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(export)) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts[1:]
            if not parts or parts[0] not in KINDS or info.is_dir():
                continue
            name = _stable_name("/".join(parts), written)
            written[name] = archive.read(info).decode("utf-8")
    for name, text in written.items():
        config = yaml.safe_load(text)
        if name.startswith("databases/"):
            config = _keep_uri(assets_dir / name, config)
        written[name] = dump(config)
    for kind in KINDS:
        for stale in (assets_dir / kind).rglob("*.yaml") if (assets_dir / kind).exists() else ():
            if stale.relative_to(assets_dir).as_posix() not in written:
                stale.unlink()
    for name, text in written.items():
        target = assets_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(written)


def _stable_name(name: str, taken: dict[str, str]) -> str:
    """``charts/Revenue_12.yaml`` -> ``charts/Revenue.yaml`` unless another file has that name."""
    stable = _ID_SUFFIX.sub(".yaml", name)
    return name if stable in taken else stable


def _keep_uri(existing: Path, config: dict) -> dict:
    if existing.exists():
        config["sqlalchemy_uri"] = yaml.safe_load(existing.read_text(encoding="utf-8"))["sqlalchemy_uri"]
    return config
