"""Which pass a multi-pass row keeps, and in what order sweeps run."""

import pytest

from hwprof.latency.passes import combine, done_passes, lower_median, pass_order


def _pass(median, n=10, status="ok"):
    return {"signature": "s", "status": status, "latency_ms": median if status == "ok" else None,
            "n_samples": n, "error": None if status == "ok" else "boom",
            "passes": None, "pass_medians_ms": None}


def test_one_pass_keeps_its_statistics_and_lists_its_median():
    row = combine(None, [_pass(2.0, n=17)])
    assert row["latency_ms"] == 2.0 and row["n_samples"] == 17
    assert row["passes"] == 1 and row["pass_medians_ms"] == [2.0]


def test_odd_count_keeps_the_median_pass_whole():
    row = combine(None, [_pass(3.0, n=1), _pass(1.0, n=2), _pass(2.0, n=3)])
    assert row["latency_ms"] == 2.0 and row["n_samples"] == 3  # stats of that pass, not a mix
    assert row["passes"] == 3 and row["pass_medians_ms"] == [3.0, 1.0, 2.0]


def test_even_count_keeps_the_lower_middle_pass():
    row = combine(None, [_pass(4.0), _pass(1.0), _pass(2.0), _pass(3.0)])
    assert row["latency_ms"] == 2.0 and row["passes"] == 4


def test_a_slow_spell_in_one_pass_does_not_reach_the_row():
    row = combine(None, [_pass(1.00), _pass(1.35), _pass(1.01)])
    assert row["latency_ms"] == 1.01


def test_new_passes_merge_with_the_row_on_disk():
    disk = combine(None, [_pass(1.0, n=5), _pass(1.2, n=6)])  # keeps 1.0
    assert done_passes(disk) == 2
    row = combine(disk, [_pass(1.1, n=7)])
    assert row["pass_medians_ms"] == [1.0, 1.2, 1.1]
    assert row["latency_ms"] == 1.1 and row["n_samples"] == 7 and row["passes"] == 3
    # the prior row's kept pass stays when it is the median
    row = combine(disk, [_pass(0.5, n=8)])
    assert row["latency_ms"] == 1.0 and row["n_samples"] == 5
    # the median is a pass of the earlier build whose statistics are gone: latency_ms is still
    # exact, the statistics come from the nearest pass at hand
    row = combine(disk, [_pass(1.5, n=9)])
    assert row["pass_medians_ms"] == [1.0, 1.2, 1.5]
    assert row["latency_ms"] == 1.2 and row["n_samples"] == 5


def test_a_row_without_pass_columns_counts_as_one_pass():
    old = _pass(2.0)  # a version-1 or imported row: passes and pass_medians_ms null
    assert done_passes(old) == 1
    row = combine(old, [_pass(3.0), _pass(2.5)])
    assert row["pass_medians_ms"] == [2.0, 3.0, 2.5] and row["latency_ms"] == 2.5
    assert done_passes(None) == 0 and done_passes(_pass(None, status="error")) == 0


def test_a_failed_pass_makes_an_error_row():
    row = combine(combine(None, [_pass(1.0)]), [_pass(None, status="error")])
    assert row["status"] == "error" and row["latency_ms"] is None
    assert row["passes"] is None and row["pass_medians_ms"] is None
    with pytest.raises(ValueError):
        combine(None, [])


def test_lower_median():
    assert lower_median([3, 1, 2]) == 2 and lower_median([4, 1, 3, 2]) == 2


def test_first_sweep_keeps_the_order_later_ones_are_shuffled_reproducibly():
    items = list(range(50))
    assert pass_order(items, 0, seed=1) == items
    second = pass_order(items, 1, seed=1)
    assert sorted(second) == items and second != items
    assert pass_order(items, 1, seed=1) == second
    assert pass_order(items, 2, seed=1) != second
