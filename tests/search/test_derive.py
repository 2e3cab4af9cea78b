import itertools

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.search.derive import derive
from hwprof.search.latency_loss import LatencyTable2D


def _lut():
    rng = np.random.RandomState(3)
    ms = [rng.uniform(0.1, 1.0, 4), np.r_[rng.uniform(0.1, 1.0, 4), 0.0], rng.uniform(0.1, 1.0, 5)]
    return LatencyTable2D([[f"c{k}" for k in range(len(t))] for t in ms], ms, 0.2, {})


def _probs(seed):
    rng = np.random.RandomState(seed)
    return [rng.dirichlet(np.ones(len(t))) for t in _lut().ms]


def _brute(probs, lut, budget, lo_frac):
    best = None
    for idx in itertools.product(*[range(len(p)) for p in probs]):
        ms = lut.arch_ms(idx)
        if not (lo_frac * budget <= ms <= budget):
            continue
        lp = sum(np.log(p[i]) for p, i in zip(probs, idx))
        if best is None or lp > best[0]:
            best = (lp, list(idx))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derive_is_the_most_probable_arch_in_the_band(seed):
    lut, probs = _lut(), _probs(seed)
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    got = derive(probs, lut, budget, min_fill=0.9, buckets=20000)
    assert got["estimate_ms"] <= budget
    want = _brute(probs, lut, budget, 0.9)
    assert got["in_band"] and got["indices"] == want[1]


def test_derive_falls_back_under_budget_when_band_is_empty():
    lut, probs = _lut(), _probs(0)
    lo, _ = lut.range_ms()
    got = derive(probs, lut, lo * 1.001, min_fill=0.999999)
    assert got["estimate_ms"] <= lo * 1.001
    assert got["indices"] == [int(np.argmin(t)) for t in lut.ms]


def test_derive_uses_the_whole_network_estimate():
    lut, probs = _lut(), _probs(1)
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    idx_of = {n: k for k, n in enumerate(lut.names[0])}
    calls = []

    def est(choices):  # a calibration that adds 30 %
        calls.append(choices)
        idx = [lut.names[li].index(c) for li, c in enumerate(choices)]
        return 1.3 * lut.arch_ms(idx)
    got = derive(probs, lut, budget, est)
    assert calls and idx_of
    assert got["estimate_ms"] <= budget
    assert 1.3 * got["sum_ms"] == pytest.approx(got["estimate_ms"])


def test_budget_below_the_fastest_arch_is_a_user_error():
    lut = _lut()
    with pytest.raises(UserError, match="below the fastest"):
        derive(_probs(0), lut, lut.range_ms()[0] * 0.9)


def _limits(lut, param_budget=None, memory_budget=None, seed=5):
    from hwprof.search.constraints import Constraints
    rng = np.random.RandomState(seed)
    params = [rng.randint(1000, 9000, len(t)).astype(float) for t in lut.ms]
    memory = [rng.randint(10_000, 90_000, len(t)).astype(float) for t in lut.ms]
    return Constraints(params, 500.0, memory, 20_000.0, param_budget, memory_budget)


def _brute_limits(probs, lut, budget, limits):
    best = None
    for idx in itertools.product(*[range(len(p)) for p in probs]):
        if lut.arch_ms(idx) > budget or not limits.satisfied(idx):
            continue
        lp = sum(np.log(p[i]) for p, i in zip(probs, idx))
        if best is None or lp > best[0]:
            best = (lp, list(idx))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derive_respects_parameter_and_memory_budgets(seed):
    lut, probs = _lut(), _probs(seed)
    lo, hi = lut.range_ms()
    budget = lo + 0.7 * (hi - lo)
    allowed = _limits(lut, memory_budget=70_000)
    least, most = (allowed.fixed_params + sum(float(f(p[a])) for p, a in
                                              zip(allowed.params, allowed.allowed()))
                   for f in (np.min, np.max))
    mid_params = least + 0.5 * (most - least)   # binding among the networks memory allows
    limits = _limits(lut, param_budget=mid_params, memory_budget=70_000)
    got = derive(probs, lut, budget, min_fill=0.0, limits=limits, buckets=20000)
    assert limits.satisfied(got["indices"]) and got["estimate_ms"] <= budget
    assert got["indices"] == _brute_limits(probs, lut, budget, limits)[1]
    report = {c["name"]: c for c in limits.report(got["indices"])}
    assert report["params"]["slack"] == pytest.approx(mid_params - limits.arch_params(got["indices"]))
    assert report["peak_memory"]["ok"] and report["peak_memory"]["budget"] == 70_000


def test_budgets_no_architecture_can_meet_are_user_errors():
    lut = _lut()
    with pytest.raises(UserError, match="parameter budget"):
        _limits(lut, param_budget=100.0).check_feasible()
    with pytest.raises(UserError, match="stem and head"):
        _limits(lut, memory_budget=1000.0).check_feasible()
    with pytest.raises(UserError, match="smallest peak"):
        _limits(lut, memory_budget=20_000.0).check_feasible()


def test_derive_never_returns_an_excluded_architecture():
    lut, probs = _lut(), _probs(0)
    lo, hi = lut.range_ms()
    budget = lo + 0.5 * (hi - lo)
    seen = []
    for _ in range(5):
        got = derive(probs, lut, budget, exclude=seen)
        assert got["choices"] not in seen
        seen.append(got["choices"])


def test_derive_fills_the_band_when_the_most_probable_archs_are_all_small():
    """A strong latency loss makes the small ops likely: the few hundred most probable DP cells
    all lie far under the budget. The derivation still returns an architecture in the band
    (the most probable there), not the small fallback."""
    rng = np.random.RandomState(5)
    ms = [np.sort(rng.uniform(0.1, 1.0, 6)) for _ in range(12)]
    lut = LatencyTable2D([[f"c{k}" for k in range(6)] for _ in ms], ms, 0.2, {})
    probs = [np.array([0.9, 0.06, 0.02, 0.01, 0.005, 0.005]) for _ in ms]
    lo, hi = lut.range_ms()
    budget = lo + 0.6 * (hi - lo)
    got = derive(probs, lut, budget, min_fill=0.95, max_checks=5)
    assert got["in_band"] and 0.95 * budget <= got["estimate_ms"] <= budget
    # with a calibration (estimate = 0.8 x sum + 0.5) the band is found the same way
    got = derive(probs, lut, budget, lambda ch: 0.8 * lut.arch_ms(
        [int(c[1:]) for c in ch]) + 0.5, min_fill=0.95, max_checks=5)
    assert got["in_band"] and 0.95 * budget <= got["estimate_ms"] <= budget


@pytest.mark.parametrize("seed", [0, 1])
def test_every_dp_cells_exact_parameters_are_traced_at_once(seed):
    from hwprof.search.derive import _cell_params, _costs, _dp, _log_probs, _order, _trace
    lut, probs = _lut(), _probs(seed)
    limits = _limits(lut, param_budget=14_000.0)
    lat, par, npb = _costs(lut, lut.range_ms()[1], 50, limits, 8)
    best, back = _dp(_log_probs(probs, limits), lat, par, 50, npb)
    got = _cell_params(back, best.shape, limits.params, limits.fixed_params)
    for cell in range(best.size):
        end = divmod(cell, npb + 1)
        if np.isfinite(best[end]):
            assert got[cell] == pytest.approx(limits.arch_params(_trace(back, end)))
        else:
            assert got[cell] == np.inf
    order = _order(best, back, limits)   # by probability, only cells within the budget
    assert order and all(got[c] <= 14_000.0 for c in order)
    assert [best.ravel()[c] for c in order] == sorted((best.ravel()[c] for c in order), reverse=True)
    assert len(order) == int(np.sum(np.isfinite(best.ravel()) & (got <= 14_000.0)))
