"""Stream worker failover: how long the partitions of a worker killed with SIGKILL stay idle before
the surviving worker consumes them, and how long a worker takes to exit on SIGTERM (and to hand its
partitions over).

Broker, warehouse and two workers run on this machine (their own state folder and ports) while the
simulator produces 2,000 usage events/s in real time. A partition counts as consuming again once
the survivor has stored a batch of it (its ``/stats`` position for the partition is set: positions
are dropped when partitions are revoked and set after each stored batch).
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time

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
)
STATE = default_state_dir() / "bench-failover"
PARTITIONS = 4
RATE = 2000
KILLS = 3
TIMEOUT_S = 180.0


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


def _steady(ports: list[int]) -> set[int]:
    """Wait until both workers own usage partitions, together all of them, unchanged for 5 s while
    both store batches; return the second worker's partitions."""
    while True:
        _wait(lambda: all(_owned(port) for port in ports))
        owned = [_owned(port) for port in ports]
        time.sleep(5)
        if [_owned(port) for port in ports] == owned and sorted(owned[0] | owned[1]) == list(range(PARTITIONS)):
            return owned[1]


def _taken_over(port: int, topic: str, lost: set[int], before: dict[int, int]) -> bool:
    """The worker on ``port`` owns ``lost`` and has stored a batch of each since ``before``."""
    now = _positions(port, topic)
    return lost <= _owned(port) and all(p in now and now[p] != before.get(p) for p in lost)


def _hand_over(survivor_port: int, victim: ManagedProcess, topic: str, lost: set[int], stop) -> float:
    """Seconds from stopping ``victim`` (``stop``) until the survivor consumes its partitions."""
    before = _positions(survivor_port, topic)
    began = time.monotonic()
    stop()
    _wait(lambda: _taken_over(survivor_port, topic, lost, before))
    return time.monotonic() - began


def measure(base) -> dict:
    settings = _settings("failover", base)
    _prepare(settings)
    ports = [settings.worker_web_port, _port()]
    survivor, victim = (_worker(settings, f"{settings.worker_app_id}-{n}", port) for n, port in enumerate(ports))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(settings, stop), daemon=True)
    producer.start()
    kills = []
    try:
        for worker in (survivor, victim):
            worker.start(timeout=120)
        for _ in range(KILLS):
            lost = _steady(ports)
            kills.append(_hand_over(ports[0], victim, settings.topic_usage, lost, victim.kill))
            victim.start(timeout=120)
        lost = _steady(ports)
        proc = victim.process()
        exited: list[float] = []

        def terminate() -> None:
            began = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
            psutil.wait_procs([proc], timeout=TIMEOUT_S)
            exited.append(time.monotonic() - began)

        term_handover = _hand_over(ports[0], victim, settings.topic_usage, lost, terminate)
    finally:
        stop.set()
        for worker in (survivor, victim):
            worker.stop()
        producer.join()
    return {"kills": kills, "term_exit": exited[0], "term_handover": term_handover,
            "session_timeout": settings.worker_session_timeout_s}


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
    kills = m["kills"]
    return "\n".join([
        "## failover (`bench/bench_failover.py`)",
        "",
        f"Two `billing worker` processes, {PARTITIONS} partitions, the simulator producing {RATE:,} usage events/s; "
        f"session timeout {m['session_timeout']:g} s. A partition consumes again once the surviving worker owns it "
        "and has stored a batch of it since the other worker was stopped.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| kill -9 of a worker -> its partitions consuming on the survivor ({len(kills)} kills: median / max) "
        f"| {statistics.median(kills):.1f} / {max(kills):.1f} s | < 15 s |",
        f"| SIGTERM -> the worker has exited | {m['term_exit']:.1f} s | < 5 s |",
        f"| SIGTERM -> its partitions consuming on the survivor | {m['term_handover']:.1f} s | - |",
        "",
        BEFORE,
    ])
