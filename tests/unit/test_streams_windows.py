"""Window assignment, grace/closing, replay fencing and dedup expiry of the stream worker."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.meters import Accumulator, Aggregation, Meter, MeterSet, window_start
from streams.dedup import DedupEntry, Seen, classify, entry_for
from streams.pipeline import DictStore, Output, Record, UsageProcessor, WindowConfig
from streams.windows import WindowState, is_closed, window_bounds

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
METERS = MeterSet([
    Meter(name="api_calls", unit="calls", aggregation=Aggregation.SUM, group_by=("region",)),
    Meter(name="peak", unit="x", aggregation=Aggregation.MAX),
    Meter(name="seats", unit="seats", aggregation=Aggregation.UNIQUE_COUNT, value_field="user_id"),
    Meter(name="level", unit="x", aggregation=Aggregation.LATEST),
])


def us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


@given(st.integers(min_value=0, max_value=4_000_000_000_000_000), st.sampled_from([60, 3600, 86400]))
def test_window_bounds_contain_the_event_and_agree_with_meters_window_start(event_us, seconds):
    start, end = window_bounds(event_us, seconds)
    assert start * 1_000_000 <= event_us < end * 1_000_000 and end - start == seconds and start % seconds == 0
    moment = datetime.fromtimestamp(event_us // 1_000_000, UTC)
    assert window_start(moment, seconds).timestamp() == start


def test_a_window_closes_exactly_at_end_plus_grace():
    end = int(T0.timestamp())
    assert not is_closed(end, us(T0) + 59_999_999, 60)
    assert is_closed(end, us(T0) + 60_000_000, 60)
    assert is_closed(end, us(T0), 0)


def test_dedup_classifies_new_replay_duplicate_and_forgets_after_retention():
    entry = entry_for(partition=2, offset=17, now_s=1000, retention_s=500)
    assert DedupEntry.decode(entry.encode()) == entry
    assert classify(None, 2, 17, 1000) is Seen.NEW
    assert classify(entry, 2, 17, 1200) is Seen.REPLAY
    assert classify(entry, 2, 18, 1200) is Seen.DUPLICATE
    assert classify(entry, 3, 17, 1200) is Seen.DUPLICATE
    assert classify(entry, 2, 18, 1500) is Seen.NEW


def test_window_state_round_trips_and_fences_offsets():
    state = WindowState.new(METERS["seats"], "c1", 3600, 0, "", {}, 1)
    assert state.apply("u1", 5, 10, "e1") and state.apply("u2", 6, 11, "e2")
    assert not state.apply("u3", 6, 12, "e3") and not state.apply("u3", 2, 12, "e3")
    copy = WindowState.decode(state.encode())
    assert copy.value() == Decimal(2) and copy.applied_offset == 6 and copy.version == state.version


def test_window_state_reads_the_object_format_of_earlier_stores():
    state = WindowState.new(METERS["level"], "c1", 60, 120, "region=eu", {"region": "eu"}, 3)
    state.apply(Decimal("2.5"), 7, 130_000_000, "e7")
    state.closed = True
    earlier = orjson.dumps({"c": "c1", "m": "level", "s": 60, "t": 120, "g": "region=eu", "d": {"region": "eu"},
                            "p": 3, "a": state.acc.aggregation.value,
                            "acc": {"count": 1, "total": None, "seen": [], "latest": "2.5"},
                            "o": 7, "l": [130_000_000, "e7"], "x": True})
    copy = WindowState.decode(earlier)
    assert copy.encode() == state.encode() and copy.value() == Decimal("2.5") and copy.version == state.version
    assert len(state.encode()) < len(earlier)


def test_latest_follows_event_time_not_arrival_order():
    state = WindowState.new(METERS["level"], "c1", 60, 0, "", {}, 0)
    state.apply(Decimal(5), 1, 2_000, "b")
    state.apply(Decimal(9), 2, 1_000, "a")  # older event arriving later
    assert state.value() == Decimal(5) and state.acc.events == 2


def test_versions_grow_with_offsets_and_closing():
    state = WindowState.new(METERS["peak"], "c1", 60, 0, "", {}, 0)
    versions = [state.version]
    state.apply(Decimal(1), 10, 0, "a")
    versions.append(state.version)
    state.closed = True
    versions.append(state.version)
    state.apply(Decimal(2), 11, 0, "b")
    versions.append(state.version)
    assert versions == sorted(set(versions))


@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=3), max_size=30), st.sampled_from(list(Aggregation)))
def test_accumulator_state_round_trips(values, aggregation):
    acc = Accumulator(aggregation)
    for value in values:
        acc.add(str(value) if aggregation is Aggregation.UNIQUE_COUNT else value)
    copy = Accumulator.from_state(aggregation, orjson.loads(orjson.dumps(acc.to_state())))
    assert copy.value() == acc.value() and copy.events == acc.events


# ------------------------------------------------------------------------------ the processor


def usage_record(offset: int, event_id: str, meter: str, moment: datetime, data: dict, customer: str = "c1",
                 partition: int = 0) -> Record:
    body = {"specversion": "1.0", "id": event_id, "source": "t", "type": meter, "subject": customer,
            "time": moment.isoformat().replace("+00:00", "Z"), "data": data}
    return Record("usage", "t.usage", partition, offset, customer.encode(), orjson.dumps(body), 0)


def processor(stores=None, grace=60.0, clock=lambda: T0.timestamp() + 86_400) -> UsageProcessor:
    dedup, windows, marks = stores or (DictStore(), DictStore(), DictStore())
    return UsageProcessor(METERS, WindowConfig((60, 3600), grace, 3 * 86_400, 32 * 86_400), dedup, windows, marks,
                          clock=clock)


def run(proc: UsageProcessor, records: list[Record]) -> Output:
    out = Output()
    proc.process(records, out)
    out.finish(T0)
    return out


def rollups(out: Output) -> dict[tuple, tuple]:
    return {(r[0], r[1], r[2], r[3], r[4]): (r[7], r[8], r[10]) for r in out.rows.get("usage_rollups", [])}


def test_duplicates_are_counted_once_and_malformed_records_become_dead_letters():
    proc = processor()
    out = run(proc, [
        usage_record(0, "e1", "api_calls", T0, {"quantity": "2", "region": "eu"}),
        usage_record(1, "e1", "api_calls", T0, {"quantity": "2", "region": "eu"}),
        usage_record(2, "e2", "api_calls", T0 + timedelta(seconds=5), {"quantity": "3", "region": "eu"}),
        Record("usage", "t.usage", 0, 3, b"c1", b'{"id": "broken"', 0),
        usage_record(4, "e3", "api_calls", T0, {"quantity": "-1", "region": "eu"}),
    ])
    hour = rollups(out)[("c1", "api_calls", 3600, T0, "region=eu")]
    assert hour[:2] == (Decimal(5), 2)
    assert out.counts["duplicates"] == 1 and out.counts["dead_letters"] == 2
    assert [d.offset for d in out.dead_letters] == [3, 4] and "quantity" in out.dead_letters[1].reason


def test_a_wrong_kafka_key_is_a_dead_letter():
    record = usage_record(0, "e1", "api_calls", T0, {"quantity": "1", "region": "eu"})
    out = run(processor(), [record._replace(key=b"someone-else")])
    assert out.counts["dead_letters"] == 1 and "key" in out.dead_letters[0].reason


def test_late_events_within_grace_join_their_window_and_later_ones_are_corrections():
    proc = processor(grace=120)
    run(proc, [usage_record(0, "a", "api_calls", T0 + timedelta(seconds=10), {"quantity": "1", "region": "eu"}),
               usage_record(1, "b", "api_calls", T0 + timedelta(minutes=2), {"quantity": "1", "region": "eu"})])
    within = run(proc, [usage_record(2, "c", "api_calls", T0 + timedelta(seconds=20), {"quantity": "1", "region": "eu"})])
    assert within.counts["late_in_grace"] == 1 and within.counts["late_corrections"] == 0
    run(proc, [usage_record(3, "d", "api_calls", T0 + timedelta(minutes=9), {"quantity": "1", "region": "eu"})])
    late = run(proc, [usage_record(4, "e", "api_calls", T0 + timedelta(seconds=30), {"quantity": "1", "region": "eu"})])
    minute = rollups(late)[("c1", "api_calls", 60, T0, "region=eu")]
    assert late.counts["late_corrections"] == 1
    assert minute == (Decimal(3), 3, 1)  # the closed minute gets a new, corrected version


def test_windows_close_after_grace_by_watermark_and_when_idle():
    now = [T0.timestamp()]
    proc = processor(grace=60, clock=lambda: now[0])
    run(proc, [usage_record(0, "a", "api_calls", T0, {"quantity": "1", "region": "eu"})])
    out = run(proc, [usage_record(1, "b", "api_calls", T0 + timedelta(minutes=2), {"quantity": "1", "region": "eu"})])
    assert rollups(out)[("c1", "api_calls", 60, T0, "region=eu")][2] == 1
    assert rollups(out)[("c1", "api_calls", 3600, T0, "region=eu")][2] == 0
    now[0] = (T0 + timedelta(hours=2)).timestamp()
    idle = Output()
    proc.close_idle([0], idle)
    idle.finish(T0)
    assert {k[2]: v[2] for k, v in rollups(idle).items()} == {60: 1, 3600: 1}


def test_unique_count_and_max_per_window():
    proc = processor()
    out = run(proc, [
        usage_record(0, "a", "seats", T0, {"quantity": "1", "user_id": "u1"}),
        usage_record(1, "b", "seats", T0 + timedelta(seconds=1), {"quantity": "1", "user_id": "u2"}),
        usage_record(2, "c", "seats", T0 + timedelta(seconds=2), {"quantity": "1", "user_id": "u1"}),
        usage_record(3, "d", "peak", T0, {"quantity": "4"}),
        usage_record(4, "e", "peak", T0 + timedelta(seconds=3), {"quantity": "2.5"}),
    ])
    values = rollups(out)
    assert values[("c1", "seats", 3600, T0, "")][:2] == (Decimal(2), 3)
    assert values[("c1", "peak", 60, T0, "")][:2] == (Decimal(4), 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.data())
def test_crash_at_any_point_and_replay_gives_the_exact_totals(seed, data):
    """Process a stream in batches, "crash" after a random batch keeping an arbitrary subset of the
    state writes of that batch (per key), replay from an earlier committed offset: totals are exact."""
    rng = random.Random(seed)
    records, truth = [], Counter()
    for offset in range(60):
        event_id = f"e{rng.randrange(45)}"  # ids repeat: duplicates
        moment = T0 + timedelta(seconds=rng.randrange(0, 7200))
        quantity = rng.randrange(1, 5)
        records.append(usage_record(offset, event_id, "api_calls", moment, {"quantity": str(quantity), "region": "eu"}))
    first_seen: dict[str, Record] = {}
    for record in records:
        first_seen.setdefault(orjson.loads(record.value)["id"], record)
    for record in first_seen.values():
        body = orjson.loads(record.value)
        hour = window_start(datetime.fromisoformat(body["time"]), 3600)
        truth[hour] += Decimal(body["data"]["quantity"])
    size = data.draw(st.integers(min_value=1, max_value=20))
    batches = [records[i:i + size] for i in range(0, len(records), size)]
    crash_after = data.draw(st.integers(min_value=0, max_value=len(batches) - 1))
    committed = data.draw(st.integers(min_value=0, max_value=crash_after))
    stores = (DictStore(), DictStore(), DictStore())
    proc = processor(stores)
    for number, batch in enumerate(batches[:crash_after + 1]):
        before = [dict(s) for s in stores]
        run(proc, batch)
        if number == crash_after:  # the last batch's writes reach the changelog only partly
            for store, old in zip(stores, before, strict=True):
                for key in list(store):
                    if rng.random() < 0.5:
                        if key in old:
                            store[key] = old[key]
                        else:
                            del store[key]
    restarted = processor(stores)
    replay = [r for batch in batches[committed:] for r in batch]
    for i in range(0, len(replay), size):
        run(restarted, replay[i:i + size])
    states = [WindowState.decode(raw) for raw in stores[1].values()]
    hours = {datetime.fromtimestamp(w.start, UTC): w.value() for w in states if w.seconds == 3600}
    minutes = Counter()
    for w in states:
        if w.seconds == 60:
            minutes[window_start(datetime.fromtimestamp(w.start, UTC), 3600)] += w.value()
    assert hours == dict(truth) and dict(minutes) == dict(truth)


def test_purge_forgets_expired_keys_and_old_closed_windows_only():
    now = [T0.timestamp()]
    stores = (DictStore(), DictStore(), DictStore())
    proc = processor(stores, clock=lambda: now[0])
    run(proc, [usage_record(0, "a", "api_calls", T0, {"quantity": "1", "region": "eu"})])
    now[0] += 10 * 86_400
    run(proc, [usage_record(1, "b", "api_calls", T0 + timedelta(days=10), {"quantity": "1", "region": "eu"})])
    assert purged(proc, now[0]) == Counter({"windows_purged": 2})  # day-0 windows: closed and past retention
    assert purged(proc, now[0] + 32 * 86_400 - 10 * 86_400) == Counter({"dedup_keys_purged": 1})
    assert set(stores[0]) == {b"b"}
    assert run(proc, [usage_record(2, "a", "api_calls", T0 + timedelta(days=10), {"quantity": "1", "region": "eu"})]
               ).counts["duplicates"] == 0  # a forgotten key is new again


def purged(proc: UsageProcessor, now_s: float, limit: int = 1000) -> Counter:
    return sum(proc.purge(now_s, limit), Counter())


def test_purge_works_in_slices_and_leaves_a_partition_revoked_between_slices_alone():
    now = T0.timestamp()
    stores = (DictStore(), DictStore(), DictStore())
    proc = processor(stores, clock=lambda: now)
    for partition in (0, 1):
        run(proc, [usage_record(n, f"p{partition}-{n}", "api_calls", T0, {"quantity": "1", "region": "eu"},
                                partition=partition) for n in range(5)])
    later = now + 33 * 86_400
    slices = proc.purge(later, limit=2)
    first = next(slices)
    assert first == Counter({"dedup_keys_purged": 2})
    proc.forget([1])
    rest = sum(slices, Counter())
    assert first + rest == Counter({"dedup_keys_purged": 5})
    assert sorted(stores[0]) == [f"p1-{n}".encode() for n in range(5)]


def test_records_after_a_skipped_offset_are_held_back_until_the_gap_is_reread():
    proc = processor()
    run(proc, [usage_record(0, "a", "api_calls", T0, {"quantity": "1", "region": "eu"})])
    gap = run(proc, [usage_record(3, "d", "api_calls", T0, {"quantity": "1", "region": "eu"}),
                     usage_record(4, "e", "api_calls", T0, {"quantity": "1", "region": "eu"})])
    assert gap.counts["offset_gaps"] == 1 and gap.rewind == {0: 1} and gap.hold == {0: 3}
    assert "usage_events" not in gap.rows
    stale = run(proc, [usage_record(4, "e", "api_calls", T0, {"quantity": "1", "region": "eu"})])
    assert stale.hold == {0: 4} and not stale.rewind and stale.counts["offset_gaps"] == 0
    reread = run(proc, [usage_record(n, x, "api_calls", T0, {"quantity": "1", "region": "eu"})
                        for n, x in ((1, "b"), (2, "c"), (3, "d"), (4, "e"))])
    assert not reread.hold and rollups(reread)[("c1", "api_calls", 3600, T0, "region=eu")][:2] == (Decimal(5), 5)


class RecordingStore(DictStore):
    """A store that remembers the key of every write."""

    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []

    def put(self, partition, key, value):
        self.writes.append(key)
        super().put(partition, key, value)


def test_a_batch_over_several_partitions_stores_each_changed_window_once():
    windows = RecordingStore()
    proc = processor((DictStore(), windows, DictStore()))
    out = Output()
    for partition, customer in enumerate(("c1", "c2", "c3")):
        proc.process([usage_record(0, f"e{partition}", "api_calls", T0, {"quantity": "1", "region": "eu"},
                                   customer=customer, partition=partition)], out)
    assert len(out.windows) == 6
    assert sorted(windows.writes) == sorted(out.windows)


def test_a_restarted_processor_reads_each_partitions_windows_once_and_still_closes_every_partition():
    class CountingScans(DictStore):
        scans: list[int] = []

        def partition_items(self, partition):
            self.scans.append(partition)
            return super().partition_items(partition)

    windows, now = CountingScans(), [T0.timestamp()]
    stores = (DictStore(), windows, DictStore())
    first = processor(stores, clock=lambda: now[0])
    for partition, customer in enumerate(("c1", "c2")):
        run(first, [usage_record(0, f"a{partition}", "api_calls", T0, {"quantity": "1", "region": "eu"},
                                 customer=customer, partition=partition)])
    windows.scans = []
    restarted = processor(stores, clock=lambda: now[0])
    for partition, customer in enumerate(("c1", "c2")):
        for offset in (1, 2):
            run(restarted, [usage_record(offset, f"b{partition}{offset}", "api_calls", T0,
                                         {"quantity": "1", "region": "eu"}, customer=customer, partition=partition)])
    assert windows.scans == [0, 1]
    now[0] = (T0 + timedelta(hours=2)).timestamp()
    idle = Output()
    restarted.close_idle([0, 1], idle)
    idle.finish(T0)
    assert sorted((k[0], k[2], v) for k, v in rollups(idle).items()) == [
        (c, s, (Decimal(3), 3, 1)) for c in ("c1", "c2") for s in (60, 3600)]


def test_a_replayed_event_rewrites_its_idempotency_key():
    """After a crash the local store may hold a key whose changelog message was lost; the replay
    must write it again so a worker that later recovers the partition from the changelog has it."""

    dedup = RecordingStore()
    proc = processor((dedup, DictStore(), DictStore()))
    record = usage_record(0, "a", "api_calls", T0, {"quantity": "1", "region": "eu"})
    run(proc, [record])
    replay = run(processor((dedup, proc.windows, proc.watermarks)), [record])
    assert replay.counts["replayed"] == 1 and dedup.writes == [b"a", b"a"]


def test_events_breaking_the_input_rules_become_dead_letters_not_losses():
    before_1970 = datetime(1969, 12, 31, 23, 59, tzinfo=UTC)
    out = run(processor(), [
        usage_record(0, "e1", "api_calls", before_1970, {"quantity": "1", "region": "eu"}),
        usage_record(1, "e2", "api_calls", T0, {"quantity": "\u0661\u0662", "region": "eu"}),
        usage_record(2, "e3", "api_calls", T0, {"quantity": "1", "region": "eu\r\nus"}),
        usage_record(3, "e4", "api_calls", T0 - timedelta(days=500), {"quantity": "1", "region": "eu"}),
    ])
    assert out.counts["dead_letters"] == 4 and not out.rows.get("usage_rollups")
    reasons = [d.reason for d in out.dead_letters]
    assert "never before 1970" in reasons[0] and "canonical decimal" in reasons[1]
    assert "non-printable" in reasons[2] and "days old" in reasons[3]
