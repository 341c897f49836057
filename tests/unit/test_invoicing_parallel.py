"""fork_map: the invoice run's parallel pricing gives the in-process results, in order, and its errors."""

from __future__ import annotations

import os

import pytest

from billing.core.errors import ConfigError
from billing.invoicing.parallel import FORK_FROM, fork_map, processes


def square_and_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def refuse_seven(value: int) -> int:
    if value == 7:
        raise ConfigError("plan 'x' has no NGN price")
    return value


def test_children_compute_every_item_in_order():
    items = [(n,) for n in range(FORK_FROM * 3)]
    results = list(fork_map(square_and_pid, items, workers=2))
    assert [value for value, _ in results] == [n * n for n in range(FORK_FROM * 3)]
    assert os.getpid() not in {pid for _, pid in results}


def test_few_items_or_one_process_run_here():
    assert {pid for _, pid in fork_map(square_and_pid, [(1,), (2,)], workers=2)} == {os.getpid()}
    assert {pid for _, pid in fork_map(square_and_pid, [(n,) for n in range(FORK_FROM)], workers=1)} == {os.getpid()}


def test_an_error_in_a_child_is_raised_here_with_its_message():
    with pytest.raises(ConfigError, match="no NGN price"):
        list(fork_map(refuse_seven, [(n,) for n in range(FORK_FROM * 2)], workers=2))


def test_zero_means_one_process_per_usable_core():
    assert processes(3) == 3
    assert processes(0) == len(os.sched_getaffinity(0))
