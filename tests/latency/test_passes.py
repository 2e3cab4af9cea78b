"""Which pass a multi-pass row keeps, and in what order sweeps run."""

import math

import pytest

from hwprof.latency.passes import combine, done_passes, lower_median, pass_order, pass_se, row_latency


def _pass(median, n=10, status="ok"):
    ok = status == "ok"
    return {"signature": "s", "status": status, "latency_ms": median if ok else None,
            "latency_ci_low_ms": 0.95 * median if ok else None,
            "latency_ci_high_ms": 1.05 * median if ok else None, "n_samples": n,
            "error": None if ok else "boom",
            "passes": None, "pass_medians_ms": None}


def _gmean(*xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def test_one_pass_keeps_its_statistics_and_lists_its_median():
    row = combine(None, [_pass(2.0, n=17)])
    assert row["latency_ms"] == 2.0 and row["n_samples"] == 17
    assert row["passes"] == 1 and row["pass_medians_ms"] == [2.0]
    assert (row["latency_ci_low_ms"], row["latency_ci_high_ms"]) == (1.9, 2.1)


def test_the_latency_is_the_lower_half_with_the_nearest_pass_statistics():
    row = combine(None, [_pass(3.0, n=1), _pass(1.0, n=2), _pass(2.0, n=3)])
    assert row["latency_ms"] == pytest.approx(_gmean(1.0, 2.0))  # the 2 lowest of 3: 1.414
    assert row["n_samples"] == 2  # stats of the pass nearest it (1.0), not a mix
    assert row["passes"] == 3 and row["pass_medians_ms"] == [3.0, 1.0, 2.0]
    # that pass's CI (+-5 %) as the same relative width around the row's latency
    assert row["latency_ci_low_ms"] == pytest.approx(0.95 * row["latency_ms"])
    assert row["latency_ci_high_ms"] == pytest.approx(1.05 * row["latency_ms"])
    row = combine(None, [_pass(4.0), _pass(1.0), _pass(2.0), _pass(3.0)])
    assert row["latency_ms"] == pytest.approx(_gmean(1.0, 2.0)) and row["passes"] == 4
    assert combine(None, [_pass(2.0), _pass(1.5)])["latency_ms"] == pytest.approx(1.5)  # the lower


@pytest.mark.parametrize("passes, expect", [
    ([2.0], [2.0]), ([2.0, 1.0], [1.0]), ([3.0, 1.0, 2.0], [1.0, 2.0]),
    ([5.0, 1.0, 4.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
    ([7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0])])
def test_row_latency_takes_the_ceil_half_lowest(passes, expect):
    assert row_latency(passes) == pytest.approx(_gmean(*expect))


def test_a_slow_pass_of_a_two_level_op_does_not_move_its_row():
    # an op whose passes land at 0.54 or 0.61 ms by where each process put its buffers: one
    # build with a slow pass among three, one without, agree exactly; the mean of all three
    # passes would put them 4 % apart
    a = combine(None, [_pass(0.54), _pass(0.61), _pass(0.541)])
    b = combine(None, [_pass(0.541), _pass(0.54), _pass(0.54)])
    assert abs(a["latency_ms"] / b["latency_ms"] - 1) < 0.002
    assert _gmean(0.54, 0.61, 0.541) / _gmean(0.541, 0.54, 0.54) > 1.04


def test_passes_that_merely_scatter_still_average():
    # two builds of one op whose passes scatter by a few per cent each: their medians of three
    # are 5 % apart (1.05 vs 1.00), their lower halves 3 % (the mean of two, not one)
    a = combine(None, [_pass(1.00), _pass(1.06), _pass(1.05)])
    b = combine(None, [_pass(1.00), _pass(0.99), _pass(1.07)])
    assert abs(a["latency_ms"] / b["latency_ms"] - 1) < 0.031
    assert lower_median([1.00, 1.06, 1.05]) / lower_median([1.00, 0.99, 1.07]) == pytest.approx(1.05)


def test_new_passes_merge_with_the_row_on_disk():
    disk = combine(None, [_pass(1.0, n=5), _pass(1.2, n=6)])
    assert done_passes(disk) == 2 and disk["n_samples"] == 5 and disk["latency_ms"] == pytest.approx(1.0)
    row = combine(disk, [_pass(1.1, n=7)])
    assert row["pass_medians_ms"] == [1.0, 1.2, 1.1]
    assert row["latency_ms"] == pytest.approx(_gmean(1.0, 1.1)) and row["passes"] == 3
    # the statistics: of the row on disk or of a new pass, whichever latency is nearer the
    # new one (1.049: the disk row's 1.0 here, the new pass's 1.1 being 0.051 away)
    assert row["n_samples"] == 5
    row = combine(disk, [_pass(0.9, n=9)])
    assert row["latency_ms"] == pytest.approx(_gmean(0.9, 1.0)) and row["n_samples"] == 9
    row = combine(disk, [_pass(1.6, n=8), _pass(1.7, n=9), _pass(1.65, n=10)])
    assert row["latency_ms"] == pytest.approx(_gmean(1.0, 1.2, 1.6))  # 3 lowest of 5
    assert row["n_samples"] == 5 and row["passes"] == 5


def test_a_row_without_pass_columns_counts_as_one_pass():
    old = _pass(2.0)  # a version-1 or imported row: passes and pass_medians_ms null
    assert done_passes(old) == 1
    row = combine(old, [_pass(3.0), _pass(2.5)])
    assert row["pass_medians_ms"] == [2.0, 3.0, 2.5]
    assert row["latency_ms"] == pytest.approx(_gmean(2.0, 2.5))
    assert done_passes(None) == 0 and done_passes(_pass(None, status="error")) == 0


def _paired(median, ys, xs):
    return {**_pass(median), "samples_ms": ys, "sample_ref_ms": xs}


def test_every_pass_keeps_its_samples_in_order_and_a_merge_appends_them():
    row = combine(None, [_paired(1.0, [1.0, 1.1], [0.5, 0.6]), _paired(2.0, [2.0], [0.7])])
    assert row["pass_samples_ms"] == [[1.0, 1.1], [2.0]]
    assert row["pass_sample_ref_ms"] == [[0.5, 0.6], [0.7]]
    more = combine(row, [_paired(1.5, [1.5, 1.4, 1.6], [0.8, 0.8, 0.9])])
    assert more["pass_samples_ms"] == [[1.0, 1.1], [2.0], [1.5, 1.4, 1.6]]
    assert more["pass_sample_ref_ms"][2] == [0.8, 0.8, 0.9]
    assert len(more["pass_samples_ms"]) == more["passes"] == len(more["pass_medians_ms"])


def test_passes_measured_without_their_samples_are_empty_lists():
    # a one-pass row of an older table: its own samples are that pass's
    old = _paired(1.0, [1.0, 1.2], [0.5, 0.5])
    row = combine(old, [_paired(1.1, [1.1], [0.6])])
    assert row["pass_samples_ms"] == [[1.0, 1.2], [1.1]]
    # a two-pass row of an older table kept one pass's samples, which of the two unknown
    two = {**old, "passes": 2, "pass_medians_ms": [1.0, 1.3]}
    row = combine(two, [_paired(1.1, [1.1], [0.6])])
    assert row["pass_samples_ms"] == [[], [], [1.1]] and row["pass_sample_ref_ms"][2] == [0.6]
    # a version-1 row: no samples at all
    assert combine(_pass(2.0), [_paired(2.1, [2.1], [0.6])])["pass_samples_ms"] == [[], [2.1]]


def test_a_failed_pass_makes_an_error_row():
    row = combine(combine(None, [_pass(1.0)]), [_pass(None, status="error")])
    assert row["status"] == "error" and row["latency_ms"] is None
    assert row["passes"] is None and row["pass_medians_ms"] is None
    assert row["pass_samples_ms"] is None
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


def test_pass_se_is_the_standard_error_of_the_mean_log_latency():
    assert pass_se(None) == 0.0
    assert pass_se({"latency_ms": 2.0, "pass_medians_ms": None}) == 0.0  # one measurement
    assert pass_se({"latency_ms": 2.0, "pass_medians_ms": [2.0, 2.0, 2.0]}) == 0.0
    # logs 0 and 0.1: sample sd 0.0707, over sqrt(2): 0.05
    assert pass_se({"pass_medians_ms": [1.0, math.exp(0.1)]}) == pytest.approx(0.05)
    # scale-free: the same ratios at another latency
    assert pass_se({"pass_medians_ms": [3.0, 3.0 * math.exp(0.1)]}) == pytest.approx(0.05)
