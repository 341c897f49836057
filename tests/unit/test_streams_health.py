from hypothesis import given
from hypothesis import strategies as st

from streams.health import ProgressWatch, Stall

P = ("billing.subscriptions", 1)
Q = ("billing.usage", 0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_with_records_waiting_and_no_progress_is_stalled_after_the_limit():
    clock = Clock()
    watch = ProgressWatch(after_s=30, clock=clock)
    watch.observe({P: (149, 151), Q: (10, 10)})
    clock.now += 29
    watch.observe({P: (149, 151), Q: (10, 10)})
    assert watch.stalled() == {}
    clock.now += 1
    watch.observe({P: (149, 151), Q: (10, 10)})
    assert watch.stalled() == {P: Stall(waiting=2, for_s=30)}
    assert watch.lag() == 2


def test_progress_or_nothing_waiting_restarts_the_clock():
    clock = Clock()
    watch = ProgressWatch(after_s=30, clock=clock)
    watch.observe({P: (100, 200)})
    clock.now += 25
    watch.observe({P: (150, 260)})  # moved: busy, not stalled
    clock.now += 25
    watch.observe({P: (150, 260)})
    assert watch.stalled() == {}
    watch.observe({P: (260, 260)})
    clock.now += 100
    watch.observe({P: (260, 260)})  # quiet partition, nothing to do
    assert watch.stalled() == {} and watch.lag() == 0
    watch.observe({P: (260, 261)})
    clock.now += 30
    assert watch.stalled() == {P: Stall(waiting=1, for_s=30)}


def test_a_partition_no_longer_owned_is_forgotten():
    clock = Clock()
    watch = ProgressWatch(after_s=10, clock=clock)
    watch.observe({P: (1, 5)})
    clock.now += 60
    watch.observe({})
    assert watch.stalled() == {} and watch.lag() == 0
    watch.observe({P: (1, 5)})  # assigned again: a new chance
    assert watch.stalled() == {}


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.floats(0, 20)), min_size=1, max_size=30))
def test_stalled_means_waiting_records_and_the_same_committed_offset_for_the_whole_limit(steps):
    clock = Clock()
    watch = ProgressWatch(after_s=15, clock=clock)
    history: list[tuple[float, int, int]] = []
    committed = 0
    for advance, more, elapsed in steps:
        committed += advance
        end = committed + more
        clock.now += elapsed
        watch.observe({P: (committed, end)})
        history.append((clock.now, committed, end))
    now, committed, end = history[-1]
    unchanged_since = now
    for when, c, e in reversed(history):  # the clock starts where it last moved or had nothing waiting
        if c != committed:
            break
        unchanged_since = when
        if c >= e:
            break
    expect_stalled = end > committed and now - unchanged_since >= 15
    assert (P in watch.stalled()) == expect_stalled
    assert watch.lag() == end - committed
