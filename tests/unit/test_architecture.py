"""The layers of docs/ARCHITECTURE.md, checked on the import graph: each package imports only the
layers below it, so the layering cannot erode silently. Function-local imports count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("billing", "producers", "streams", "api")

CORE = ("billing.core",)
LEAVES = ("billing.settings", "billing.resources", "billing.gc_tuning")
ADAPTERS = ("billing.kafka", "billing.warehouse")
APPLICATIONS = ("billing.invoicing", "billing.analytics", "billing.alerts", "billing.webhooks", "billing.reports", "producers",
                "streams")

ALLOWED: dict[str, tuple[str, ...]] = {
    "billing.core": CORE,
    "billing.settings": (*CORE,),
    "billing.resources": (),
    "billing.gc_tuning": (),
    "billing.kafka": (*CORE, *LEAVES),
    "billing.warehouse": (*CORE, *LEAVES),
    "billing.invoicing": (*CORE, *LEAVES, *ADAPTERS),
    "billing.analytics": (*CORE, *LEAVES, *ADAPTERS),
    "billing.alerts": (*CORE, *LEAVES, *ADAPTERS, "billing.invoicing"),
    "billing.webhooks": (*CORE, *LEAVES, *ADAPTERS),
    "billing.reports": (*CORE, *LEAVES, *ADAPTERS, "billing.invoicing", "billing.analytics"),
    "producers": (*CORE, *LEAVES, *ADAPTERS),
    "streams": (*CORE, *LEAVES, *ADAPTERS),
    "api": (*CORE, *LEAVES, *ADAPTERS, "billing.invoicing", "billing.reports", "billing.alerts"),
    "billing.chdb_server": (*CORE, *LEAVES, "billing.warehouse.sql"),
    "billing.platform": (*CORE, *LEAVES, *ADAPTERS, "billing.analytics"),
    "billing.cli": PACKAGES,
    "billing": ("billing.cli",),
}
"""Layer -> the prefixes it may import (besides itself). The CLI is the only composition root."""


def _layer(module: str) -> str:
    return max((name for name in ALLOWED if module == name or module.startswith(name + ".")), key=len)


def _module(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(files: list[Path], root: Path = ROOT) -> list[str]:
    """``module (layer) imports name`` for every import that its layer does not allow."""
    found = []
    for path in files:
        module = _module(path, root)
        layer = _layer(module)
        for name in sorted(_project_imports(path)):
            if not _within(name, (layer, *ALLOWED[layer])):
                found.append(f"{module} ({layer}) imports {name}")
    return found


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    assert _sources(), "no sources found"
    assert all(_layer(_module(path)) for path in _sources())


def test_layers_import_only_what_they_may() -> None:
    assert violations(_sources()) == []


def test_the_core_imports_nothing_else_of_the_project() -> None:
    core = [p for p in _sources() if _module(p).startswith("billing.core")]
    assert core and all(_within(name, CORE) for path in core for name in _project_imports(path))


def test_a_violation_is_reported(tmp_path: Path) -> None:
    (tmp_path / "billing" / "core").mkdir(parents=True)
    (tmp_path / "api").mkdir()
    core = tmp_path / "billing" / "core" / "probe.py"
    core.write_text("from billing.settings import get_settings\n")
    api = tmp_path / "api" / "probe.py"
    api.write_text("def f():\n    from billing.platform import stack\n")
    assert violations([core, api], tmp_path) == [
        "billing.core.probe (billing.core) imports billing.settings.get_settings",
        "api.probe (api) imports billing.platform.stack",
    ]
