"""The one-shot strategies' contract on the ``tiny`` space with a synthetic table:
the answer respects the budget (through the shared derivation), and the same seed
gives the same choices."""

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import get_space
from hwprof.search.registry import get_strategy
from hwprof.search.runner import run_search
from tests.synthetic import synthetic_table

ONE_SHOT = ["darts", "proxyless", "fbnet"]


@pytest.fixture(scope="module")
def synth_model():
    from hwprof.latency.model import LatencyModel
    specs = get_space("tiny").table_specs()
    # latencies grow with the op's index so candidates differ clearly in cost
    t = synthetic_table(specs=specs, medians=[0.02 + 0.013 * (i % 9) for i in range(len(specs))])
    return LatencyModel(t)


@pytest.fixture(scope="module")
def budget(synth_model):
    from hwprof.search.latency_loss import LatencyTable2D
    lo, hi = LatencyTable2D.from_model(get_space("tiny"), synth_model).range_ms()
    return lo + 0.4 * (hi - lo)


@pytest.fixture(scope="module")
def small(digits_tiny):
    """A few batches of the digits data: the contract, not the accuracy, is under test."""
    from dataclasses import replace
    d = digits_tiny
    return replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64],
                   y_val=d.y_val[:64], x_test=d.x_test[:64], y_test=d.y_test[:64])


def _run(model, data, budget, out, algo, seed=0, **kw):
    return run_search(get_space("tiny"), model, data, budget, out, algo=algo, epochs=2,
                      retrain_epochs=0, seed=seed, batch=32, log=lambda m: None, **kw)


@pytest.mark.parametrize("algo", ONE_SHOT)
def test_one_shot_strategy_respects_budget_and_is_deterministic(synth_model, small,
                                                                 budget, tmp_path, algo):
    a = _run(synth_model, small, budget, tmp_path / "a", algo,
             strategy_options={"warmup": "0"})
    b = _run(synth_model, small, budget, tmp_path / "b", algo,
             strategy_options={"warmup": "0"})
    assert a["result"] == "estimated_within_budget"
    assert a["predicted_ms"] <= budget
    assert a["choices"] == b["choices"]
    assert a["history"]["probs"] == b["history"]["probs"]
    assert a["algo"] == algo and a["strategy_kind"] == "one-shot"
    assert a["arch_steps"] > 0 and a["latency_term_share"] is not None
    assert (tmp_path / "a" / "arch.json").exists() and (tmp_path / "a" / "latency.png").exists()


def test_fbnet_anneals_from_its_own_temperature(synth_model, small, budget, tmp_path):
    rep = _run(synth_model, small, budget, tmp_path, "fbnet")
    assert rep["history"]["tau"][0] == pytest.approx(5.0)
    assert rep["history"]["tau"][-1] == pytest.approx(0.5)
    rep = _run(synth_model, small, budget, tmp_path, "fbnet",
               strategy_options={"tau0": "2", "tau_end": "1"})
    assert rep["history"]["tau"] == pytest.approx([2.0, 1.0])


def test_fbnet_latency_term_is_expected_latency_under_the_gumbel_weights(synth_model,
                                                                          digits_tiny, budget):
    """The logits handed to the latency loss are alpha + this step's Gumbel noise, and the
    mixing weights of the graph are softmax((alpha + g) / tau) of the same noise."""
    import nnabla as nn

    from hwprof.search.fbnet import FBNet
    from hwprof.search.latency_loss import LatencyLoss, LatencyTable2D, softmax
    nn.clear_parameters()
    sp = get_space("tiny")
    lut = LatencyTable2D.from_model(sp, synth_model)
    ln = FBNet(sp, lut, LatencyLoss(lut, budget), digits_tiny, np.random.RandomState(0), batch=8)
    ln.alphas[0][:] = [0.3, -0.2, 0.1][: len(ln.alphas[0])] + [0.0] * (len(ln.alphas[0]) - 3)
    ln.arch_step(digits_tiny.x_val[:8], digits_tiny.y_val[:8], 0.7)
    logits = ln.latency_logits()
    g = logits[0] - ln.alphas[0]
    assert np.any(g != 0) and np.allclose(g, ln.noise[0])
    # the graph mixed the candidates with exactly these weights ...
    mix = [np.array(m.d, dtype=np.float64) for m in ln.mix]
    for m, lg in zip(mix, logits):
        assert m == pytest.approx(softmax(lg, 0.7), rel=1e-5)
    # ... and the latency term is the latency expected under them
    e = LatencyLoss(lut, budget)(logits, 0.0, None, 0.7)[1]
    assert e == pytest.approx(lut.fixed_ms + sum(float(m @ t) for m, t in zip(mix, lut.ms)),
                              rel=1e-5)
    before = [x.copy() for x in ln.noise]
    ln.arch_step(digits_tiny.x_val[:8], digits_tiny.y_val[:8], 0.7)
    assert any(not np.allclose(x, y) for x, y in zip(before, ln.noise))   # fresh noise a step


def test_unknown_strategy_option_lists_the_valid_ones(synth_model, digits_tiny, budget, tmp_path):
    with pytest.raises(UserError, match="no option population.*tau0"):
        _run(synth_model, digits_tiny, budget, tmp_path, "darts",
             strategy_options={"population": "10"})
    with pytest.raises(UserError, match="tau0=hot: expected a number"):
        _run(synth_model, digits_tiny, budget, tmp_path, "darts", strategy_options={"tau0": "hot"})


def test_default_epochs_come_from_the_strategy():
    assert get_strategy("proxyless").default_epochs == 12
    assert get_strategy("darts").default_epochs == 5
    assert get_strategy("fbnet").default_epochs == 5
