"""The stream worker against its peer: the same usage job in Quix Streams (``bench/peer_quix.py``),
side by side on one copy of the topic, with one and two processes each, plus the raw ceiling.

Quix Streams runs from its own virtualenv, which this benchmark creates on first use (Quix Streams
pins older confluent-kafka and pydantic than the project). Both jobs read the same pre-produced
history (1% duplicates) from one topic, each in its own consumer group, and write ``usage_rollups``
to their own database. The rollups are then compared window by window: every window the peer closed
must have the same value and event count as the worker's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.bench_streams import (
    _ceiling,
    _prepare,
    _settings,
    clean,
    consume,
    follow,
    local_stack,
    produce_history,
)
from billing.settings import default_state_dir
from billing.warehouse.client import client

EVENTS = 500_000
PARTITIONS = 12
QUIX = "quixstreams==3.28.0"
PEER_REQUIREMENTS = [QUIX, "babel==2.18.0", "pyyaml==6.0.3", "clickhouse-connect==1.12.0", "lz4==4.4.5",
                     "psutil==7.2.2"]
STATE = default_state_dir() / "bench-peer"
VENV = default_state_dir() / "peer-venv"
REPO = Path(__file__).resolve().parent.parent


def peer_python() -> Path:
    """The peer virtualenv's interpreter, created and installed when missing or outdated."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS], check=True)
        stamp.write_text(wanted)
    return python


def run_peer(settings, produced, processes: int) -> dict:
    """Run ``processes`` peer processes (one consumer group) until they consumed the history; their
    throughput, CPU and peak RSS as :func:`follow` measures them."""
    total = produced.records["usage"]
    python = peer_python()
    folder = settings.state_dir / settings.worker_app_id
    children = []
    for n in range(processes):
        run_dir = folder / f"p{n}"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = {"broker": settings.kafka_bootstrap, "topic": settings.topic_usage, "group": settings.worker_app_id,
                  "state_dir": str(run_dir / "state"), "clickhouse_url": settings.clickhouse_url,
                  "user": settings.clickhouse_user, "password": settings.clickhouse_password,
                  "database": settings.clickhouse_database, "stats": str(run_dir / "stats.json")}
        (run_dir / "config.json").write_text(json.dumps(config))
        log = (run_dir / "peer.log").open("w")
        children.append((subprocess.Popen([str(python), str(REPO / "bench" / "peer_quix.py"), str(run_dir / "config.json")],
                                          env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log,
                                          stderr=subprocess.STDOUT), run_dir))

    def progress() -> float | None:
        counts = []
        for child, run_dir in children:
            if child.poll() is not None:
                raise RuntimeError(f"the peer exited with {child.returncode}; see {run_dir / 'peer.log'}")
            stats = run_dir / "stats.json"
            counts.append(json.loads(stats.read_text())["consumed"] if stats.exists() else None)
        return None if None in counts else sum(counts)

    try:
        run = follow([psutil.Process(child.pid) for child, _ in children], progress, total)
        settle(settings)
        return run
    finally:
        for child, _ in children:
            child.terminate()
        for child, _ in children:
            child.wait(timeout=30)


def settle(settings, quiet_s: float = 12.0) -> None:
    """Wait until the peer's rollup table stops growing for ``quiet_s`` (more than two of its 5 s
    checkpoints): the windows closed by the last records go through the repartition topic first."""
    ch = client(settings)
    table = f"{settings.clickhouse_database}.usage_rollups"
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        rows = ch.query(f"SELECT count() FROM {table}").result_rows[0][0]
        if rows != last:
            last, since = rows, time.monotonic()
        time.sleep(1)


def compare(settings, ours: str, peer: str) -> dict:
    """Windows the peer closed vs the worker's rollups of the same windows: how many, how many differ."""
    ch = client(settings)
    key = "customer_id, meter, window_seconds, window_start, group_key"
    closed, missing, different = ch.query(
        f"SELECT count(), countIf(o.customer_id = ''), countIf(o.customer_id != '' AND "
        f"(o.value != p.value OR o.event_count != p.event_count)) "
        f"FROM (SELECT {key}, value, event_count FROM {peer}.usage_rollups FINAL) AS p "
        f"LEFT JOIN (SELECT {key}, value, event_count FROM {ours}.usage_rollups FINAL) AS o USING ({key})"
    ).result_rows[0]
    windows = ch.query(f"SELECT count() FROM {ours}.usage_rollups FINAL").result_rows[0][0]
    return {"peer_windows": closed, "missing": missing, "different": different, "our_windows": windows}


def run() -> str:
    clean(STATE)
    peer_python()
    base, services = local_stack(STATE, PARTITIONS)
    load = os.getloadavg()[0]
    results = {}
    try:
        source = _settings("peersrc", base)
        _prepare(source)
        produced = produce_history(source, EVENTS)
        for name, workers in (("ours1", 1), ("ours2", 2), ("quix1", 1), ("quix2", 2)):
            settings = _settings(name, base).model_copy(update={"topic_usage": source.topic_usage})
            _prepare(settings)
            if name.startswith("ours"):
                results[name] = consume(settings, produced, workers)
            else:
                results[name] = run_peer(settings, produced, workers)
                results[name].update(compare(settings, _settings("ours1", base).clickhouse_database,
                                             settings.clickhouse_database))
        ceiling = _ceiling(source, produced.records["usage"])
    finally:
        for service in reversed(services):
            service.stop()
        clean(STATE)
    return report(results, ceiling, produced.records["usage"], load)


def report(results: dict, ceiling: float, total: int, load: float) -> str:
    """The side-by-side Markdown section."""
    rows = []
    for name, label in (("ours1", "Faust worker, 1 process"), ("ours2", "Faust worker, 2 processes"),
                        ("quix1", f"Quix Streams {QUIX.split('==')[1]}, 1 process"),
                        ("quix2", f"Quix Streams {QUIX.split('==')[1]}, 2 processes")):
        r = results[name]
        check = (f"{r['peer_windows']:,} windows closed; {r['different']} differ, {r['missing']} not in ours"
                 if "peer_windows" in r else "reference")
        rows.append(f"| {label} | {r['sustained']:,.0f} | {r['sustained'] / ceiling:.1%} | {r['cpu_us']:,.0f} "
                    f"| {r['peak_rss_mb']:,.0f} | {check} |")
    lead1 = results["ours1"]["sustained"] / results["quix1"]["sustained"]
    lead2 = results["ours2"]["sustained"] / results["quix2"]["sustained"]
    return "\n".join([
        "## peer (`bench/bench_peer.py`)",
        "",
        f"The same usage job in the project's Faust worker and in Quix Streams (`bench/peer_quix.py`, exactly-once "
        f"on, dedup in state, `group_by` customer x meter x dimensions, minute and hour tumbling windows with 60 s "
        f"grace closed per partition) on one copy of a {total:,}-record topic ({PARTITIONS} partitions, 1% "
        f"duplicates); broker and warehouse on the same machine (1-minute load average {load:.1f} at start). "
        f"Ceiling: a bare confluent-kafka consume + orjson decode of the same topic, {ceiling:,.0f} records/s.",
        "",
        "| job | records/s | of the ceiling | CPU us/record | peak RSS MB | rollups check |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Lead of the Faust worker: {lead1:.1f}x with one process, {lead2:.1f}x with two (target >= 3x). The rollups "
        "check compares every window the peer closed with the worker's row for it (value and event count); the "
        "peer writes only closed windows, so the last windows of each partition exist only in the worker's "
        "table (it closes idle partitions by the wall clock).",
    ])
