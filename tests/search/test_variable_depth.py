"""Variable depth (a stage's trailing layers may be skipped) in the latency term,
the derivation and the supernet, on a space file with SE, h-swish and plain convs."""

import nnabla as nn
import numpy as np
import pytest

from hwprof.latency.spaces import SKIP, Space
from hwprof.search.derive import derive
from hwprof.search.latency_loss import LatencyTable2D, expected_latency
from hwprof.search.supernet import SuperNet

DATA = {
    "input": [1, 3, 32, 32],
    "stem": [{"conv": {"out": 8, "stride": 2, "act": "hswish"}}],
    "stages": [{"out": 16, "stride": 2, "depth": [2, 4], "act": "relu"},
               {"out": 24, "stride": 2, "depth": [1, 3], "se": True, "act": "hswish"}],
    "candidates": [{"mbconv": {"expand": [3, 6], "kernel": [3, 5]}}, {"conv": {"kernel": 3}}],
    "head": [{"conv": {"out": 32, "kernel": 1}}, {"classifier": {"classes": 10}}],
}
MIN_DEPTH = [2, 1]


class MacsModel:
    """A latency model for unit tests: 1 ms per 10 M multiply-adds plus 0.01 ms an op."""

    def latencies(self, specs):
        return [(0.01 + s.features()["macs"] / 1e7, "table") for s in specs]


@pytest.fixture(scope="module")
def space():
    return Space("depth-test", DATA)


@pytest.fixture(scope="module")
def lut(space):
    return LatencyTable2D.from_model(space, MacsModel())


def test_only_layers_beyond_the_min_depth_can_be_skipped(space, lut):
    for s, lo in enumerate(MIN_DEPTH):
        layers = [lay for lay in space.layers if lay.stage == s]
        assert [SKIP in lay.candidates for lay in layers] == [i >= lo for i in range(len(layers))]
    # a skipped layer costs 0 ms; the fastest architecture keeps exactly the min depths
    for names, ms in zip(lut.names, lut.ms):
        assert all((v == 0) == (n == SKIP) for n, v in zip(names, ms))
    lo_ms, _ = lut.range_ms()
    fastest = [names[int(np.argmin(ms))] for names, ms in zip(lut.names, lut.ms)]
    assert space.depths(fastest) == MIN_DEPTH
    assert lo_ms == pytest.approx(lut.fixed_ms + sum(
        s.features()["macs"] / 1e7 + 0.01
        for s in space.arch_specs(fastest)[len(space.prefix):-len(space.suffix)]))


def test_expected_latency_prices_skip_at_zero(space, lut):
    # all probability on skip where it exists, else on the first candidate
    alphas = [np.where(np.array(n) == SKIP, 50.0, 0.0) if SKIP in n else
              np.r_[50.0, np.zeros(len(n) - 1)] for n in lut.names]
    e, _ = expected_latency(alphas, lut)
    kept = [lut.ms[i][0] for i, n in enumerate(lut.names) if SKIP not in n]
    assert e == pytest.approx(lut.fixed_ms + sum(kept), rel=1e-6)


def _probs(lut, prefer):
    """Probabilities that favour the candidate ``prefer(layer_index, names)`` names."""
    out = []
    for li, names in enumerate(lut.names):
        p = np.full(len(names), 1.0)
        p[names.index(prefer(li, names))] = 50.0
        out.append(p / p.sum())
    return out


def test_derivation_never_goes_below_the_min_depth(space, lut):
    lo, hi = lut.range_ms()
    for frac in (0.0, 0.2, 0.5, 0.9):
        budget = lo + frac * (hi - lo) + 1e-9
        probs = _probs(lut, lambda li, n: SKIP if SKIP in n else n[-1])
        got = derive(probs, lut, budget, min_fill=0.0)
        assert got["estimate_ms"] <= budget
        depths = space.depths(got["choices"])
        assert all(d >= m for d, m in zip(depths, MIN_DEPTH))
        assert got["sum_ms"] == pytest.approx(lut.arch_ms(got["indices"]))


def test_derivation_writes_skips_as_trailing_layers(space, lut):
    # stage 1's third layer prefers skip, its fourth a block: the derived net keeps the
    # block in the third layer and skips the fourth (the same ops, the same latency)
    third, fourth = 2, 3
    probs = _probs(lut, lambda li, n: SKIP if li == third else (
        "mbconv_e3_k3_relu" if li == fourth else n[0]))
    lo, hi = lut.range_ms()
    got = derive(probs, lut, hi, min_fill=0.0)
    assert got["choices"][third] == "mbconv_e3_k3_relu" and got["choices"][fourth] == SKIP
    swapped = list(got["choices"])
    swapped[third], swapped[fourth] = SKIP, "mbconv_e3_k3_relu"
    assert [s.signature for s in space.arch_specs(swapped)] == \
        [s.signature for s in space.arch_specs(got["choices"])]
    assert space.canonical(swapped) == got["choices"]


def test_supernet_holds_exactly_the_priced_ops(space):
    """A child network's nnabla parameters are the parameters of its op specs."""
    nn.clear_parameters()
    choices = ["mbconv_e6_k5_relu", "conv_k3_relu", "mbconv_e3_k3_relu", SKIP,
               "mbconv_e3_k5_se_hswish", "conv_k3_hswish", SKIP]
    net = SuperNet(space, np.random.RandomState(0), scope="child")
    x = nn.Variable.from_numpy_array(np.random.RandomState(1).randn(2, 3, 32, 32)
                                     .astype(np.float32))
    y = net.child(x, choices, train=False)
    y.forward()
    assert y.shape == (2, 10) and np.isfinite(y.d).all()
    n_params = sum(v.size for v in net.weights().values())
    assert n_params == sum(s.features()["params"] for s in space.arch_specs(choices))
    # the DARTS supernet over every candidate builds too (skip = identity)
    probs = [nn.Variable.from_numpy_array(np.full(len(lay.candidates), 1.0 / len(lay.candidates),
                                                  dtype=np.float32)) for lay in space.layers]
    z = SuperNet(space, np.random.RandomState(0), scope="super").mixed(x, probs, train=True)
    z.forward()
    assert z.shape == (2, 10)
