"""The closed loop against fake devices whose latencies differ from the table's.

No timing here: a fake ``measure`` maps an architecture to a made-up end-to-end
latency (the table's sum times a factor, over or under), so every assertion is
exact.
"""

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.search.closedloop import (
    FILL,
    FIRST_LADDER,
    LATER_LADDER,
    MIN_FILL,
    Round,
    close_loop,
    fastest_measured,
    next_target,
    pick,
)
from hwprof.search.derive import derive
from hwprof.search.latency_loss import LatencyTable2D


def _lut(layers=5, cands=5, seed=4):
    rng = np.random.RandomState(seed)
    ms = [rng.uniform(0.05, 0.5, cands) for _ in range(layers)]
    return LatencyTable2D([[f"c{k}" for k in range(cands)] for _ in ms], ms, 0.2, {})


def _probs(lut, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.dirichlet(np.ones(len(t))) for t in lut.ms]


def _sum(lut, choices):
    return lut.arch_ms([names.index(c) for names, c in zip(lut.names, choices)])


class FakeDevice:
    """End to end = factor * table sum + offset; records what it measured, session by session."""

    def __init__(self, lut, factor=1.0, offset=0.0):
        self.lut, self.factor, self.offset = lut, factor, offset
        self.seen, self.sessions = [], 0

    def __call__(self, many):
        self.sessions += 1
        self.seen += [list(c) for c in many]
        return [self.factor * _sum(self.lut, c) + self.offset for c in many]


def _loop(lut, device, budget, **kw):
    probs = _probs(lut)
    logs = []
    res = close_loop(lambda t, fill, skip: derive(probs, lut, t, min_fill=fill, exclude=skip),
                     device, budget, log=logs.append, **kw)
    return res, logs


@pytest.mark.parametrize("factor", [1.35, 1.15, 0.8, 0.6])
def test_loop_ends_measured_within_and_filling_the_budget(factor):
    lut = _lut()
    lo, hi = lut.range_ms()
    budget = factor * (lo + 0.5 * (hi - lo))   # reachable: the device's networks span the band
    dev = FakeDevice(lut, factor)
    res, logs = _loop(lut, dev, budget, max_rounds=4)
    ans = res["answer"]
    assert res["status"] == "in_band" and ans.in_band()
    assert FILL * budget <= ans.measured_ms <= budget
    assert ans.measured_ms == pytest.approx(factor * _sum(lut, ans.choices))
    # round 1's ladder is derived against the table; a device off by more than ~10 % needs a
    # second round, derived from what the first one measured
    first = [r for r in res["rounds"] if r.round == 1]
    assert len(first) == len(FIRST_LADDER) and not any(r.in_band() for r in first)
    assert dev.sessions == max(r.round for r in res["rounds"]) >= 2
    again = next(line for line in logs if "re-deriving" in line)
    assert "tightened" in again if factor > 1 else "loosened" in again


@pytest.mark.parametrize("factor", [0.93, 0.955])
def test_an_estimate_that_runs_high_lands_in_the_band_in_one_session(factor):
    # a device a few per cent faster than the table: the plain derivation under-fills, a
    # rung above the target lands in the band in the same (single) measuring session
    lut = _lut()
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    dev = FakeDevice(lut, factor)
    res, _ = _loop(lut, dev, budget, max_rounds=4)
    assert dev.sessions == 1 and res["status"] == "in_band"
    plain = res["rounds"][0]
    assert plain.rung == 0 and not plain.in_band()
    assert FIRST_LADDER[res["answer"].rung][1] > 1.0


def test_every_round_measures_a_new_network_and_the_rounds_are_bounded():
    lut = _lut()
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    # nothing fits (the fastest network is measured just over the budget), yet every
    # tightened target stays above the fastest network's estimate: the rounds run out
    dev = FakeDevice(lut, offset=budget - lo + 0.01)
    res, logs = _loop(lut, dev, budget, max_rounds=3)
    assert dev.sessions == 3
    assert len(res["rounds"]) == len(dev.seen) == len(FIRST_LADDER) + 2 * len(LATER_LADDER)
    assert len({tuple(c) for c in dev.seen}) == len(dev.seen)
    assert res["status"] == "over" and res["answer"] is None
    assert all("over" in line for line in logs if line.startswith("round"))
    # the fastest measured network is what --allow-over-budget keeps
    assert fastest_measured(res["rounds"]).measured_ms == min(r.measured_ms for r in res["rounds"])


def test_targets_tighten_from_what_was_measured():
    lut = _lut()
    lo, hi = lut.range_ms()
    budget = lo + 0.6 * (hi - lo)
    res, _ = _loop(lut, FakeDevice(lut, offset=budget - lo + 0.01), budget, max_rounds=3)
    by_round = {}
    for r in res["rounds"]:
        by_round.setdefault(r.round, []).append(r)
    assert [r.target_ms for r in by_round[1]] == pytest.approx(
        [budget * hi for _, hi in FIRST_LADDER])
    for k in range(2, 4):
        prev, cur = by_round[k - 1], by_round[k]
        assert [r.target_ms for r in cur] == pytest.approx(
            [next_target(prev) * hi for _, hi in LATER_LADDER])
        assert next_target(prev) < (next_target(by_round[k - 2]) if k > 2 else budget)


@pytest.mark.parametrize("factor", [0.91, 0.93, 0.96, 1.0, 1.03, 1.06])
def test_a_device_6_to_9_percent_off_the_estimate_needs_one_session(factor):
    # the first ladder's rungs land about 3 % apart at 0.93-1.07 x the budget, so one of
    # them is in the band for measured / estimate from ~0.91 to ~1.06
    lut = _lut(layers=8, cands=6)
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    dev = FakeDevice(lut, factor)
    res, _ = _loop(lut, dev, budget, max_rounds=4)
    assert dev.sessions == 1 and res["status"] == "in_band"


def test_each_rung_is_derived_in_its_window():
    lut = _lut(layers=8, cands=6)
    lo, hi = lut.range_ms()
    budget = lo + 0.4 * (hi - lo)
    res, _ = _loop(lut, FakeDevice(lut, 0.8), budget, max_rounds=2)
    assert max(r.round for r in res["rounds"]) == 2
    by_round = {}
    for r in res["rounds"]:
        by_round.setdefault(r.round, []).append(r)
    targets = {1: budget, 2: next_target(by_round[1])}
    for k, ladder in ((1, FIRST_LADDER), (2, LATER_LADDER)):
        for r, (w_lo, w_hi) in zip(by_round[k], ladder):
            w_lo = MIN_FILL * w_hi if w_lo is None else w_lo
            assert w_lo * targets[k] <= r.estimate_ms <= w_hi * targets[k]
            assert r.min_fill == pytest.approx(w_lo / w_hi)


def test_next_target_scales_the_budget_by_the_median_estimate_over_measured():
    def r(est, measured):
        return Round(1, 1.0, 0.9, ["c"], est, est, 0.0, 2.0, measured)
    assert next_target([r(1.0, 1.25), r(1.0, 1.0), r(1.0, 2.0)], aim=1.0) == pytest.approx(1.6)
    assert next_target([r(1.0, 0.5), r(1.0, 1.0)], aim=0.99) == pytest.approx(0.99 * 2.0 * 1.5)


def test_loop_stops_when_nothing_more_can_be_derived():
    lut = _lut(layers=2, cands=2)
    lo, hi = lut.range_ms()
    res, logs = _loop(lut, FakeDevice(lut, offset=10 * hi), hi, max_rounds=10)
    # 4 networks in the space, each measured at most once
    nets = [tuple(r.choices) for r in res["rounds"]]
    assert len(nets) == len(set(nets)) <= 4 and res["status"] == "over"
    assert any("nothing more to derive" in line for line in logs)


def test_a_first_round_that_cannot_be_derived_is_the_users_error():
    lut = _lut()
    with pytest.raises(UserError, match="below the fastest"):
        _loop(lut, FakeDevice(lut), lut.range_ms()[0] * 0.5)


def test_without_a_device_the_derivation_is_the_answer_unmeasured():
    lut = _lut()
    lo, hi = lut.range_ms()
    res, logs = _loop(lut, None, lo + 0.5 * (hi - lo))
    assert res["status"] == "unmeasured" and len(res["rounds"]) == 1
    assert res["answer"] is res["rounds"][0] and res["answer"].measured_ms is None
    assert "not measured" in logs[0]


def test_a_device_lost_mid_loop_keeps_what_was_measured():
    lut = _lut()
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    calls = []

    def flaky(many):
        calls.append(many)
        return [0.5 * _sum(lut, c) for c in many] if len(calls) == 1 else None
    res, _ = _loop(lut, flaky, budget, max_rounds=4)
    assert len(calls) == 2 and len(res["rounds"]) == len(FIRST_LADDER) + len(LATER_LADDER)
    assert res["status"] == "within"
    # the fullest network of the first session, the only one measured
    first = res["rounds"][:len(FIRST_LADDER)]
    assert res["answer"] is max(first, key=lambda r: r.measured_ms)


def test_pick_prefers_the_band_then_the_fullest_within_budget():
    def r(i, measured, lp):
        return Round(i, 1.0, 0.9, [f"c{i}"], 1.0, 1.0, lp, 1.0, measured)
    assert pick([r(1, 0.97, -3.0), r(2, 0.99, -1.0), r(3, 0.5, 0.0)]).round == 2
    assert pick([r(1, 0.7, -1.0), r(2, 0.9, -5.0), r(3, 1.2, 0.0)]).round == 2
    assert pick([r(1, 1.1, 0.0)]) is None
    d = r(1, 0.97, -1.0).to_dict()
    assert d["ratio"] == pytest.approx(0.97) and d["in_band"] and d["within_budget"]


def test_max_rounds_must_be_positive():
    lut = _lut()
    with pytest.raises(UserError, match="--max-rounds"):
        _loop(lut, FakeDevice(lut), lut.range_ms()[1], max_rounds=0)
