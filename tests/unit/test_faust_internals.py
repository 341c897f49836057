"""The fence around faust-streaming's private API: an upgrade that changes what the worker relies
on fails here, by name, before it can break the batch transport or the table store."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from streams import faust_internals
from streams.faust_internals import METHODS, mismatches
from streams.transport import BatchConsumer, BatchConsumerThread


def test_installed_faust_provides_every_private_name_the_worker_relies_on() -> None:
    assert mismatches() == []


def test_every_override_of_the_transport_is_listed() -> None:
    listed = {name for _, name in METHODS}
    overridden = {name for cls in (BatchConsumer, BatchConsumerThread) for name in vars(cls)
                  if name.startswith("_") and not name.startswith("__") and callable(vars(cls)[name])
                  and any(hasattr(base, name) for base in cls.__mro__[1:])}
    assert overridden <= listed


def test_a_changed_private_method_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    owner = next(owner for owner, name in METHODS if name == "_new_offset")
    monkeypatch.setattr(owner, "_new_offset", lambda self, tp, extra: None)
    monkeypatch.setattr(faust, "__version__", "9.9.9")
    found = mismatches()
    assert any("_new_offset takes ('self', 'tp', 'extra')" in line for line in found)
    assert any("faust-streaming 9.9.9 is installed" in line for line in found)


def test_only_the_fence_and_the_transport_touch_faust_privates() -> None:
    streams = Path(faust_internals.__file__).parent
    for path in streams.glob("*.py"):
        if path.name in ("faust_internals.py", "transport.py"):
            continue
        text = path.read_text()
        assert "._db_for_partition" not in text and "._fetch_max_wait_ms" not in text, path.name
