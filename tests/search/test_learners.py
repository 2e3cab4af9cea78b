import nnabla as nn
import numpy as np
import pytest

from hwprof.latency.spaces import get_space
from hwprof.search.darts import Darts
from hwprof.search.latency_loss import LatencyLoss, LatencyTable2D
from hwprof.search.proxyless import ProxylessNAS
from hwprof.search.supernet import SuperNet


@pytest.fixture
def setup(tiny_model, digits_tiny):
    nn.clear_parameters()
    sp = get_space("tiny")
    lut = LatencyTable2D.from_model(sp, tiny_model)
    lo, hi = lut.range_ms()
    return sp, lut, LatencyLoss(lut, lo + 0.5 * (hi - lo)), digits_tiny


def test_one_rng_for_all_layers_gives_layers_different_weights():
    nn.clear_parameters()
    sp = get_space("tiny")
    net = SuperNet(sp, np.random.RandomState(0))
    x = nn.Variable((2,) + tuple(sp.input[1:]))
    net.mixed(x, [nn.Variable((len(lay.candidates),)) for lay in sp.layers], train=True)
    w = net.weights()
    # the same candidate in two layers: with a generator re-seeded per layer the
    # second layer's weights would start with the first layer's draws (rescaled)
    a = w["stage1.1/mbconv_e3_k3/dw/depthwise_conv/W"].d.ravel()
    b = w["stage1.2/mbconv_e3_k3/dw/depthwise_conv/W"].d.ravel()[: a.size]
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5


def test_proxyless_layers_sample_independently(tiny_model, digits_tiny):
    nn.clear_parameters()
    sp = get_space("tiny")
    lut = LatencyTable2D.from_model(sp, tiny_model)
    ln = ProxylessNAS(sp, lut, LatencyLoss(lut, 1.0), digits_tiny, np.random.RandomState(0), batch=4)
    firsts = []
    for _ in range(12):
        ln.arch_step(digits_tiny.x_val[:4], digits_tiny.y_val[:4], 1.0)
        firsts.append(tuple(p[0] for p in ln._pairs))
    # the layers' first sampled candidate is not the same index in every step
    assert any(f[0] != f[1] for f in firsts)


@pytest.mark.parametrize("cls", [Darts, ProxylessNAS])
def test_learner_moves_alphas_and_records_history(setup, cls):
    sp, lut, loss, data = setup
    ln = cls(sp, lut, loss, data, np.random.RandomState(0), batch=32, warmup=0)
    before = [a.copy() for a in ln.alphas]
    h = ln.fit(1)
    assert h["epoch"] == [1] and len(h["probs"][0]) == len(sp.layers)
    assert ln.arch_steps > 0
    assert any(not np.allclose(a, b) for a, b in zip(ln.alphas, before))
    lo, hi = lut.range_ms()
    assert lo <= h["expected_ms"][0] <= hi


def test_learner_times_the_latency_term_apart_from_the_rest_of_the_arch_step(setup,
                                                                           monkeypatch):
    """A fake clock that only the latency term (1 s a call) and the architecture step
    (10 s a call) advance: the learner's timers must add up exactly to those."""
    from types import SimpleNamespace

    import hwprof.search.learner as learner_mod
    sp, lut, loss, data = setup
    now = [0.0]
    monkeypatch.setattr(learner_mod, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    ln = Darts(sp, lut, loss, data, np.random.RandomState(0), batch=32, warmup=0)

    class Ticking:  # calls fn after advancing the clock; other attributes are fn's
        def __init__(self, fn, seconds):
            self.fn, self.seconds = fn, seconds

        def __call__(self, *args, **kw):
            now[0] += self.seconds
            return self.fn(*args, **kw)

        def __getattr__(self, name):
            return getattr(self.fn, name)
    ln.loss = Ticking(ln.loss, 1.0)
    ln.arch_step = Ticking(ln.arch_step, 10.0)
    ln.fit(1)
    assert ln.arch_steps > 0
    assert ln.latency_seconds == pytest.approx(1.0 * ln.arch_steps)
    assert ln.arch_seconds == pytest.approx(11.0 * ln.arch_steps)
    assert ln.weight_seconds == 0


def test_proxyless_builds_only_two_paths_per_layer(setup):
    sp, lut, loss, data = setup
    ln = ProxylessNAS(sp, lut, loss, data, np.random.RandomState(0), batch=16)
    ce, acc, grads = ln.arch_step(data.x_val[:16], data.y_val[:16], 1.0)
    for g, pair in zip(grads, ln._pairs):
        assert len(pair) == 2
        untouched = [k for k in range(len(g)) if k not in pair]
        assert all(g[k] == 0 for k in untouched)
        # the estimator's gradient over a pair sums to zero (softmax over two)
        assert g[list(pair)].sum() == pytest.approx(0, abs=1e-9)


def test_proxyless_gate_gradients_and_estimator(setup):
    """dL/dg matches finite differences of the gated network; alpha grads follow the paper."""
    from hwprof.search.train import cross_entropy
    sp, lut, loss, data = setup
    ln = ProxylessNAS(sp, lut, loss, data, np.random.RandomState(1), batch=16)
    ln.alphas[0][:] = [0.3, -0.2]
    ln.alphas[1][:] = [0.5, 0.1, -0.4]
    tau = 0.7
    xb, yb = data.x_val[:16], data.y_val[:16]
    _, _, grads = ln.arch_step(xb, yb, tau)
    pairs, active = ln._pairs, ln._active

    def ce_at(layer, gate_values):
        gates = []
        for li in range(len(pairs)):
            g = nn.Variable((2,))
            g.d = gate_values if li == layer else np.eye(2)[active[li]]
            gates.append(g)
        x = nn.Variable((16,) + xb.shape[1:])
        t = nn.Variable((16, 1))
        ce = cross_entropy(ln.net.gated(x, pairs, gates, train=True), t)
        x.d, t.d = xb, yb[:, None]
        ce.forward()
        return float(ce.d)

    def central(li, base, j, eps):
        e = np.eye(2)[j] * eps
        return (ce_at(li, base + e) - ce_at(li, base - e)) / (2 * eps)

    for li, pair in enumerate(pairs):
        base = np.eye(2)[active[li]]
        for j in range(2):
            # ReLU6 kinks make the loss piecewise smooth in the gates: a loose tolerance
            num = central(li, base, j, 1e-3)
            assert ln._gate_grads[li][j] == pytest.approx(num, rel=0.3, abs=5e-4)
        q = np.exp(ln.alphas[li][list(pair)] / tau)
        # alphas were not updated by arch_step itself, so q is the sampling distribution
        q = q / q.sum()
        dg = ln._gate_grads[li]
        want = [sum(dg[j] * q[j] * ((m == j) - q[m]) for j in range(2)) / tau for m in range(2)]
        np.testing.assert_allclose(grads[li][list(pair)], want, rtol=1e-9)
