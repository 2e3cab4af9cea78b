import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import get_space
from hwprof.search.latency_loss import LOSS_FORMS, LatencyLoss, LatencyTable2D, expected_latency


def _lut(seed=0):
    rng = np.random.RandomState(seed)
    ms = [rng.uniform(0.1, 2.0, 6), np.r_[rng.uniform(0.1, 2.0, 6), 0.0], rng.uniform(0.1, 1.0, 3)]
    names = [[f"c{k}" for k in range(len(t))] for t in ms]
    return LatencyTable2D(names, ms, 0.7, {"table": 16})


def _alphas(seed=1):
    rng = np.random.RandomState(seed)
    return [rng.randn(6), rng.randn(7), rng.randn(3)]


def _numeric_grad(f, alphas, eps=1e-6):
    out = []
    for li, a in enumerate(alphas):
        g = np.zeros_like(a)
        for k in range(len(a)):
            up = [x.copy() for x in alphas]
            dn = [x.copy() for x in alphas]
            up[li][k] += eps
            dn[li][k] -= eps
            g[k] = (f(up) - f(dn)) / (2 * eps)
        out.append(g)
    return out


@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_expected_latency_gradient_matches_finite_differences(tau):
    lut, alphas = _lut(), _alphas()
    e, grads = expected_latency(alphas, lut, tau)
    num = _numeric_grad(lambda a: expected_latency(a, lut, tau, grad=False)[0], alphas)
    for g, n in zip(grads, num):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)
    # E is the fixed cost plus the probability-weighted candidate latencies
    p = [np.exp(a / tau) / np.exp(a / tau).sum() for a in alphas]
    assert e == pytest.approx(0.7 + sum(float(pi @ t) for pi, t in zip(p, lut.ms)))


@pytest.mark.parametrize("form", LOSS_FORMS)
def test_loss_gradient_matches_finite_differences(form):
    lut, alphas = _lut(), _alphas()
    e0, _ = expected_latency(alphas, lut)
    ce, ce_grads = 1.3, [np.full_like(a, 0.01) for a in alphas]
    # a budget below E so the hinge is active
    loss = LatencyLoss(lut, budget_ms=0.8 * e0, form=form)
    _, _, grads = loss(alphas, ce, ce_grads)

    def total(a):
        # ce depends on alpha linearly through ce_grads around the point
        ce_a = ce + sum(float(g @ (x - a0)) for g, x, a0 in zip(ce_grads, a, alphas))
        return loss(a, ce_a, None)[0]
    num = _numeric_grad(total, alphas)
    for g, n in zip(grads, num):
        np.testing.assert_allclose(g, n, rtol=1e-4, atol=1e-7)


def test_hinge_is_inactive_under_budget():
    lut, alphas = _lut(), _alphas()
    e0, _ = expected_latency(alphas, lut)
    total, e, grads = LatencyLoss(lut, 2 * e0)(alphas, 0.5, None)
    assert total == 0.5 and e == pytest.approx(e0)
    assert all(np.all(g == 0) for g in grads)


def test_loss_rejects_unknown_form_and_bad_budget():
    with pytest.raises(UserError, match="hinge"):
        LatencyLoss(_lut(), 1.0, form="square")
    with pytest.raises(UserError, match="positive"):
        LatencyLoss(_lut(), 0.0)


def test_table_from_real_model(tiny_model):
    sp = get_space("tiny")
    lut = LatencyTable2D.from_model(sp, tiny_model)
    assert lut.names == [list(lay.candidates) for lay in sp.layers]
    assert lut.fixed_ms == pytest.approx(tiny_model.sum_ms(sp.fixed_specs))
    for li, lay in enumerate(sp.layers):
        for k, name in enumerate(lay.candidates):
            spec = sp.candidate_spec(li, name)
            want = 0.0 if spec is None else tiny_model.latency(spec)[0]
            assert lut.ms[li][k] == pytest.approx(want)
    choices = [lay.candidates[0] for lay in sp.layers]
    assert lut.arch_ms([0] * len(sp.layers)) == pytest.approx(
        tiny_model.estimate_arch(sp, choices)["sum_ms"])
