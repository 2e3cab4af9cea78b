"""SearchProblem helpers and SearchResult checks, on the ``tiny`` space with a synthetic table."""

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import get_space
from hwprof.search.runner import make_problem, run_strategy
from hwprof.search.strategy import SearchResult, Strategy, one_hot
from tests.synthetic import synthetic_table


class Pick(Strategy):
    name, kind, description = "pick", "one-shot", "returns what it is told"

    def __init__(self, result=None):
        self.result = result

    def search(self, problem):
        return self.result


@pytest.fixture(scope="module")
def model():
    from hwprof.latency.model import LatencyModel
    specs = get_space("tiny").table_specs()
    return LatencyModel(synthetic_table(specs=specs,
                                        medians=[0.02 + 0.013 * (i % 9) for i in range(len(specs))]))


def _problem(model, budget, **kw):
    return make_problem(get_space("tiny"), model, None, budget, Pick(), epochs=1, **kw)


def test_within_budget_follows_the_estimate_and_the_limits(model):
    p = _problem(model, 10.0)
    lo, hi = p.lut.range_ms()
    fastest = p.choices_of([int(np.argmin(t)) for t in p.lut.ms])
    slowest = p.choices_of([int(np.argmax(t)) for t in p.lut.ms])
    p = _problem(model, (lo + hi) / 2)
    assert p.estimate(fastest) == pytest.approx(lo) and p.estimate(slowest) == pytest.approx(hi)
    assert p.within_budget(fastest) and not p.within_budget(slowest)
    # a parameter budget that only the fewest-parameter architecture meets
    few = [int(np.argmin(x)) for x in p.limits.params]
    tight = _problem(model, hi, param_budget=p.limits.arch_params(few))
    assert tight.within_budget(tight.choices_of(few))
    many = [int(np.argmax(x)) for x in p.limits.params]
    assert not tight.within_budget(tight.choices_of(many))
    assert p.indices(fastest) == [int(np.argmin(t)) for t in p.lut.ms]
    assert p.model is model and p.lut.names == [list(lay.candidates) for lay in p.space.layers]


def test_option_converts_to_the_default_type(model):
    p = _problem(model, 1.0, options={"n": "12", "lr": "0.5", "flag": "yes", "name": "x"})
    assert p.option("n", 3) == 12 and p.option("lr", 0.1) == 0.5
    assert p.option("flag", False) is True and p.option("name", "y") == "x"
    assert p.option("absent", 7) == 7
    with pytest.raises(UserError, match="n=12.*true or false"):
        p.option("n", False)
    p.options["n"] = "many"
    with pytest.raises(UserError, match="n=many: expected an integer"):
        p.option("n", 3)


def test_rng_is_seeded(model):
    a, b = _problem(model, 1.0, seed=3), _problem(model, 1.0, seed=3)
    assert a.rng().rand() == b.rng().rand() and a.rng(1).rand() != a.rng(2).rand()


@pytest.mark.parametrize("result,match", [
    ("not a result", "not a SearchResult"),
    (SearchResult(probs=[np.ones(2)]), "1 distributions for 2"),
    (SearchResult(probs=[-np.ones(3), np.ones(2)]), "non-negative"),
    (SearchResult(probs=[np.ones(3), np.ones(2)], choices=["nope", "skip"]), "not the space"),
])
def test_bad_results_are_user_errors_naming_the_strategy(model, result, match):
    p = _problem(model, 10.0)
    if isinstance(result, SearchResult) and len(result.probs) == 2:
        result.probs = [np.resize(q, len(n)) for q, n in zip(result.probs, p.lut.names)]
    with pytest.raises(UserError, match=match):
        run_strategy(Pick(result), p)


def test_a_result_is_normalised(model):
    p = _problem(model, 10.0)
    probs = [np.arange(1, len(n) + 1, dtype=float) for n in p.lut.names]
    res, seconds = run_strategy(Pick(SearchResult(probs=probs)), p)
    assert all(q.sum() == pytest.approx(1.0) for q in res.probs) and seconds >= 0
    assert list(one_hot(1, 3)) == [0, 1, 0]
