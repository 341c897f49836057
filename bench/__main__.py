"""Run benchmarks and record their results in docs/benchmarks.md.

Each benchmark is a module ``bench/bench_<name>.py`` with ``run() -> str`` returning a Markdown
section. The results file keeps one section per benchmark, so running one benchmark updates only
its own section.
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK = "<!-- bench:{name} -->"


def available() -> list[str]:
    """Names of all benchmark modules."""
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def machine() -> str:
    """One line describing the machine the numbers were taken on."""
    mem = psutil.virtual_memory().total / 2**30
    return (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, {mem:.0f} GiB RAM, "
            f"Python {platform.python_version()}")


def sections(text: str) -> dict[str, str]:
    """Split the results file into its benchmark sections."""
    parts = re.split(r"(?m)^<!-- bench:(\w+) -->\n", text)
    return {parts[i]: parts[i + 1].rstrip() + "\n" for i in range(1, len(parts) - 1, 2)}


def write(results: dict[str, str]) -> None:
    """Merge ``results`` into docs/benchmarks.md."""
    known = sections(RESULTS.read_text()) if RESULTS.exists() else {}
    known.update(results)
    body = ["# Benchmarks\n", "Written by `make bench` (`python -m bench [NAME ...]`). Each section says when and where it ran.\n"]
    for name in sorted(known):
        body.append(MARK.format(name=name) + "\n" + known[name])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(body))


def main(names: list[str]) -> int:
    names = names or available()
    unknown = set(names) - set(available())
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; available: {available()}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== bench {name}", flush=True)
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        section = importlib.import_module(f"bench.bench_{name}").run()
        write({name: f"{section.rstrip()}\n\n_Measured {started} on {machine()}._\n"})
        print(section)
    print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
