import gc

from billing.gc_tuning import THRESHOLDS, tune_gc


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
