import gc

import psutil

from billing.gc_tuning import THRESHOLDS, batch_gc, collect_garbage, trim_heap, tune_gc


def test_tune_gc_freezes_the_start_up_objects_and_collects_less_often():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert THRESHOLDS[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_without_the_automatic_collector_cycles_wait_for_collect_garbage():
    before = gc.get_threshold()
    try:
        tune_gc(automatic=False)
        assert not gc.isenabled()
        for _ in range(THRESHOLDS[0] * 2):  # enough allocations to trigger the automatic collector
            cycle = []
            cycle.append(cycle)
        assert collect_garbage() >= THRESHOLDS[0]
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_batch_freezes_what_exists_and_restores_the_collector_after():
    before = gc.get_threshold()
    with batch_gc():
        assert gc.get_threshold() == THRESHOLDS and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    try:
        with batch_gc():
            raise KeyError("a failed run")
    except KeyError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _rss() -> int:
    return psutil.Process().memory_info().rss


def test_trim_heap_returns_memory_freed_below_a_live_block():
    blocks = [bytearray(2048) for _ in range(50_000)]  # ~100 MB of C heap (above pymalloc's size)
    keeper = bytearray(2048)  # a live block above the freed ones: free() alone cannot shrink the heap
    del blocks
    before = _rss()
    assert trim_heap()
    assert before - _rss() > 50 * 2**20
    assert len(keeper) == 2048
