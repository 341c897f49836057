"""Stream worker failover: how long the partitions of a worker killed with SIGKILL stay idle before
the surviving worker consumes them, and how long a worker takes to exit on SIGTERM (and to hand its
partitions over).

Broker, warehouse and two workers run on this machine (their own state folder and ports) while the
simulator produces 2,000 usage events/s in real time. A partition counts as consuming again once
the survivor has stored a batch of it (its ``/stats`` position for the partition is set: positions
are dropped when partitions are revoked and set after each stored batch).

Each hand-over is split into phases by the survivor's log (Faust's and aiokafka's own lines): the
rebalance noticed (the dead member's session expired, or the stopped one left), the survivor
assigned the partitions (group rejoined), its tables recovered from their changelogs ("Worker
ready"), and the first batch of each partition processed and stored.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

from bench.bench_streams import _env, _port, _prepare, _settings, _stats, clean, local_stack
from billing.core.meters import active_meters
from billing.platform.process import ManagedProcess
from billing.settings import default_state_dir
from producers.simulator import SimulationConfig, Simulator
from producers.sinks import KafkaSink

BEFORE = (
    "Before issue 20 (Faust's 60 s session timeout, 2026-12-07, with a first version of this benchmark that counted "
    "a partition as consuming once the survivor had stored any batch of it): kill -9 -> its partitions "
    "consuming on the survivor 68.9 / 73.9 s (median / max of 3 kills); SIGTERM -> exit 1.7 s and -> partitions "
    "consuming 6.7 s while the group was stable, but a worker stopped during a rebalance waited in aiokafka's group "
    "join for the rebalance to complete (up to the dead member's 60 s session) and `billing down` killed it after 20 s."
    " With the 10 s session (same benchmark, 2026-12-07): 23.7 / 24.3 s at load 5-7; in the instrumented run at load 7-14 "
    "46.7 / 91.3 s, of which noticed 10.2-10.9 s, assigned 10.4-14.5 s, recovered 21.2-42.6 s. Before the batched "
    "recovery (6 s session, 2026-12-07 22:41, load 6-13, phases from the survivor's log): the three kills replayed "
    "16,796, 52,672 and 146,948 changelog records in 5.1, 26.0 and 92.9 s (recovered ~12, ~34 and ~100 s after the "
    "kill), and the SIGTERM hand-over 400,306 records at ~1,000/s: not consuming within the benchmark's 300 s."
)
WHERE_THE_TIME_GOES = (
    "What the phases cost and what was chosen (instrumented runs of 2026-12-07 at load 7-21; kill times to the "
    "second). (1) Noticing the dead member is the session timeout: the broker expires the session and the survivor "
    "learns of the rebalance with its next heartbeat (every 1/20 of the session): 10.2-10.9 s with 10 s, 6.2-6.7 s "
    "with 6 s. `BILLING_WORKER_SESSION_TIMEOUT_S` now defaults to 6 s, the smallest a broker accepts by default "
    "(`group.min.session.timeout.ms`); heartbeats run in the consumer's own thread, and no live worker lost its "
    "partitions at load 21. (2) Rejoin and assignment: 0.05-0.3 s, but up to 4 s when the survivor is in the middle "
    "of a batch (the revocation runs on the event loop the batch holds). (3) Table recovery: the survivor replays "
    "the changelog records its local RocksDB has not seen; for partitions it held before, what the other worker "
    "wrote since (~20,000 records, 11-28 s at load 7-14), for partitions it never held, everything (126,000 records "
    "after 3 minutes, 137 s at load 21): Faust's recovery took the records one at a time, ~1-3k/s on a loaded "
    "core; the worker now writes each fetched list of them to RocksDB in one write batch (`restore` in "
    "`streams/transport.py`). (4) The first batch: the survivor has the backlog of the whole hand-over to read, and a catch-up batch "
    "of 20,000 records took 9-14 s to process at load 14-21 (the worker got ~1/4 of a core: ~2,000 events/s, the "
    "produced rate); its rows are stored while the next batch is processed, and the partition counts as consuming "
    "25-60 s after the recovery. Phases (3) and (4) are CPU: on an idle machine the same benchmark measured 13.2 s "
    "with the 10 s session. Left out: static membership (`group.instance.id`; aiokafka and Faust support it) does "
    "not hand a dead member's partitions over any sooner (the broker still waits for its session), and a static "
    "member stopped with SIGTERM does not leave the group, so the SIGTERM hand-over would wait for the session too; "
    "it only spares a rebalance when a worker restarts within its session. Standby replicas "
    "(`table_standby_replicas=1`) would turn (3) into a short catch-up, but each worker would replay the other's "
    "changelog all the time: ~2.3 changelog records per usage event, ~2,300/s per worker here, and standby "
    "partitions still take Faust's one-record path, which replayed less than that on this machine. Cooperative "
    "rebalancing: aiokafka has only the eager protocol."
)
STATE = default_state_dir() / "bench-failover"
PARTITIONS = 4
RATE = 2000
KILLS = 3
TIMEOUT_S = 300.0
PHASES = {
    "noticed": "Revoking previously assigned partitions",
    "assigned": "Setting newly assigned partitions",
    "recovered": "Worker ready",
}
"""Phase of a hand-over -> the survivor's first log line after the stop that ends it."""
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$")


def _worker(settings, name: str, port: int) -> ManagedProcess:
    return ManagedProcess(
        name=name, argv=[sys.executable, "-m", "billing", "worker", "--name", name, "--web-port", str(port),
                         "--loglevel", "info"],
        run_dir=settings.run_dir, log_dir=settings.log_dir, health=lambda: _stats(port) is not None,
        env={**_env(settings), "PYTHONUNBUFFERED": "1"})


def _positions(port: int, topic: str) -> dict[int, int]:
    """Usage partition -> next offset to store, as the worker's ``/stats`` shows them."""
    stats = _stats(port) or {"positions": {}}
    return {int(place.rsplit("/", 1)[1]): offset for place, offset in stats["positions"].items()
            if place.rsplit("/", 1)[0] == topic}


def _owned(port: int) -> set[int]:
    stats = _stats(port)
    return set(stats["partitions"]) if stats else set()


def _wait(check, timeout: float = TIMEOUT_S) -> float:
    """Seconds until ``check()`` is true (polled every 0.1 s); raises after ``timeout``."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"not reached within {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - began


def _consuming(port: int, topic: str) -> set[int]:
    """Usage partitions the worker on ``port`` owns and has stored a batch of since it got them."""
    return _owned(port) & set(_positions(port, topic))


def _steady(ports: list[int], topic: str) -> set[int]:
    """Wait until both workers consume usage partitions, together all of them, unchanged for 5 s;
    return the second worker's partitions."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        _wait(lambda: all(_consuming(port, topic) for port in ports))
        owned = [_consuming(port, topic) for port in ports]
        time.sleep(5)
        if [_consuming(port, topic) for port in ports] == owned and sorted(owned[0] | owned[1]) == list(range(PARTITIONS)):
            return owned[1]
    raise TimeoutError(f"the two workers did not settle on the {PARTITIONS} partitions within {TIMEOUT_S:.0f}s")


def _taken_over(port: int, topic: str, lost: set[int], before: dict[int, int]) -> bool:
    """The worker on ``port`` owns ``lost`` and has stored a batch of each since ``before``."""
    now = _positions(port, topic)
    return lost <= _owned(port) and all(p in now and now[p] != before.get(p) for p in lost)


def _phases(log: Path, since: float) -> dict[str, float | None]:
    """Seconds after ``since`` (epoch) at which the survivor's log shows each of :data:`PHASES`, in
    order (a line of a rebalance already under way at the stop does not count; None: not logged, e.g.
    held back by the worker's repeat filter)."""
    found: dict[str, float | None] = dict.fromkeys(PHASES)
    steps = iter(PHASES.items())
    phase, text = next(steps)
    for line in log.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        at = match and datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() - since  # local time
        if match and at >= 0 and text in match[2]:
            found[phase] = at
            phase, text = next(steps, (None, "\0"))
    return found


def _hand_over(survivor: ManagedProcess, survivor_port: int, topic: str, lost: set[int], stop) -> dict:
    """Seconds from stopping the other worker (``stop``) until the survivor consumes its partitions
    (``total``), and until each of :data:`PHASES`."""
    before = _positions(survivor_port, topic)
    began, wall = time.monotonic(), time.time()
    stop()
    _wait(lambda: _taken_over(survivor_port, topic, lost, before))
    return {"total": time.monotonic() - began, **_phases(survivor.log_file, wall)}


def measure(base) -> dict:
    settings = _settings("failover", base)
    _prepare(settings)
    ports = [settings.worker_web_port, _port()]
    survivor, victim = (_worker(settings, f"{settings.worker_app_id}-{n}", port) for n, port in enumerate(ports))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(settings, stop), daemon=True)
    producer.start()
    kills = []
    load = os.getloadavg()[0]
    try:
        for worker in (survivor, victim):
            worker.start(timeout=120)
        for _ in range(KILLS):
            lost = _steady(ports, settings.topic_usage)
            kills.append(_hand_over(survivor, ports[0], settings.topic_usage, lost, victim.kill))
            victim.start(timeout=120)
        lost = _steady(ports, settings.topic_usage)
        proc = victim.process()
        exited: list[float] = []

        def terminate() -> None:
            began = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
            psutil.wait_procs([proc], timeout=TIMEOUT_S)
            exited.append(time.monotonic() - began)

        term = _hand_over(survivor, ports[0], settings.topic_usage, lost, terminate)
    finally:
        stop.set()
        for worker in (survivor, victim):
            worker.stop()
        producer.join()
    return {"kills": kills, "term_exit": exited[0], "term": term, "session_timeout": settings.worker_session_timeout_s,
            "load": (load, os.getloadavg()[0])}


class _Stopped(Exception):
    """Ends the simulator's run."""


def _produce(settings, stop: threading.Event) -> None:
    """Usage events in real time at :data:`RATE` per second until ``stop`` is set."""
    def progress(_: int) -> None:
        if stop.is_set():
            raise _Stopped

    config = SimulationConfig(customers=50, rate=RATE, duration_s=3600, seed=4)
    try:
        Simulator(config, active_meters(), KafkaSink(settings.kafka_bootstrap, settings.topics()),
                  progress=progress).run()
    except _Stopped:
        pass


def run() -> str:
    clean(STATE)
    base, services = local_stack(STATE, PARTITIONS)
    try:
        m = measure(base)
    finally:
        for service in reversed(services):
            service.stop()
        clean(STATE)
    totals = [kill["total"] for kill in m["kills"]]
    return "\n".join([
        "## failover (`bench/bench_failover.py`)",
        "",
        f"Two `billing worker` processes, {PARTITIONS} partitions, the simulator producing {RATE:,} usage events/s; "
        f"session timeout {m['session_timeout']:g} s. A partition consumes again once the surviving worker owns it "
        "and has stored a batch of it since the other worker was stopped. 1-minute load average "
        f"{m['load'][0]:.1f} at the start, {m['load'][1]:.1f} at the end (2 cores: above 2, other work competed).",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| kill -9 of a worker -> its partitions consuming on the survivor ({len(totals)} kills: median / max) "
        f"| {statistics.median(totals):.1f} / {max(totals):.1f} s | < 15 s |",
        f"| SIGTERM -> the worker has exited | {m['term_exit']:.1f} s | < 5 s |",
        f"| SIGTERM -> its partitions consuming on the survivor | {m['term']['total']:.1f} s | - |",
        "",
        "Where the seconds go (seconds after the stop at which the survivor's log shows each step; - = not logged):",
        "",
        "| stop | rebalance noticed | partitions assigned | tables recovered | consuming |",
        "|---|---|---|---|---|",
        *(_phase_row(f"kill -9 #{n}", kill) for n, kill in enumerate(m["kills"], 1)),
        _phase_row("SIGTERM", m["term"]),
        "",
        WHERE_THE_TIME_GOES,
        "",
        BEFORE,
    ])


def _phase_row(name: str, phases: dict) -> str:
    cells = ["-" if phases[p] is None else f"{phases[p]:.1f}" for p in (*PHASES, "total")]
    return f"| {name} | " + " | ".join(cells) + " |"
