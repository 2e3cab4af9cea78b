import itertools

import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import get_space
from hwprof.search.multitrial import BudgetSampler, Trials, mutate
from hwprof.search.registry import get_strategy
from tests.search.multitrial_fixtures import tiny_problem, within

MULTI = ("random", "evolution", "spos")


@pytest.fixture(scope="module")
def data():
    from hwprof.search.data import load_data
    sp = get_space("tiny")
    return load_data("digits", sp.input, sp.classes, seed=0, limit=240)


def _admitted(problem):
    return [list(a) for a in itertools.product(*problem.lut.names) if problem.within_budget(a)]


@pytest.mark.parametrize("name", MULTI)
def test_registered_as_multi_trial(name):
    s = get_strategy(name)
    assert s.kind == "multi-trial" and s.name == name and s.option_help


@pytest.mark.parametrize("name", MULTI)
def test_strategy_respects_the_budget_and_is_deterministic(name, data):
    opts = {"population": "2", "generations": "1"} if name != "random" else {}
    runs = [get_strategy(name).search(tiny_problem(data, epochs=3, options=opts))
            for _ in range(2)]
    a, b = runs
    p = tiny_problem(data)
    a.check(p, name)
    assert a.choices == b.choices and a.history["accuracy"] == b.history["accuracy"]
    assert within(p, a.choices)
    assert all(within(p, ch) for ch in a.history["choices"])
    # the best trial is the most preferred network of the distribution handed to derivation
    assert [names[int(q.argmax())] for names, q in zip(p.lut.names, a.probs)] == a.choices
    assert a.extras["trials"] == len(a.history["trial"])


def test_random_search_spends_the_epochs_on_distinct_trials(data):
    r = get_strategy("random").search(tiny_problem(data, epochs=3))
    assert r.extras["trials"] == 3 and r.extras["trial_epochs"] == 1
    assert len({tuple(c) for c in r.history["choices"]}) == 3
    best = max(r.history["accuracy"])
    assert r.extras["best_trial"]["accuracy"] == best
    r2 = get_strategy("random").search(tiny_problem(data, epochs=4,
                                                    options={"trial_epochs": "2"}))
    assert r2.extras["trials"] == 2 and r2.extras["trial_epochs"] == 2


def test_random_search_evaluates_all_when_the_budget_admits_fewer_than_the_trials(data):
    p = tiny_problem(data, epochs=8)
    r = get_strategy("random").search(p)
    assert sorted(map(tuple, r.history["choices"])) == sorted(map(tuple, _admitted(p)))


def test_seed_changes_the_draws(data):
    first = [BudgetSampler(tiny_problem(data, seed=s), tiny_problem(data, seed=s).rng(1))
             .sample_many(3) for s in range(6)]
    assert len({tuple(map(tuple, f)) for f in first}) > 1


def test_no_architecture_within_budget_is_one_line(data):
    p = tiny_problem(data, budget_ms=0.2)   # below the fastest (0.1 + 0.2 + 0)
    for name in ("random", "evolution"):
        with pytest.raises(UserError, match="none of .* random architectures") as e:
            get_strategy(name).search(p)
        assert "\n" not in str(e.value)


def test_sampler_prefers_the_fill_band(data):
    p = tiny_problem(data, options={"min_fill": "0.9"})   # band 0.558..0.62 ms: 1 architecture
    got = BudgetSampler(p, p.rng(1)).sample_many(4)
    assert p.estimate(got[0]) >= 0.9 * p.budget_ms
    assert len(got) == 4 and all(within(p, g) for g in got)


def test_mutate_changes_one_layer_within_budget(data):
    p = tiny_problem(data)
    import numpy as np
    rng = np.random.RandomState(0)
    for parent in _admitted(p):
        child = mutate(p, parent, rng)
        assert sum(a != b for a, b in zip(parent, child)) == 1 and within(p, child)


def test_trials_rank_by_accuracy_and_weight_preferences(data):
    p = tiny_problem(data)
    t = Trials(p)
    for acc, ch in ((0.5, ["mbconv_e3_k3", "skip"]), (0.9, ["mbconv_e6_k3", "skip"]),
                    (0.7, ["mbconv_e3_k3", "mbconv_e3_k3"])):
        t.add({"choices": ch, "accuracy": acc, "seconds": 1.0})
    assert t.best()["choices"] == ["mbconv_e6_k3", "skip"]
    assert t.history()["best_accuracy"] == [0.5, 0.9, 0.9]
    probs = t.probs(top_k=2)
    assert probs[0].argmax() == 1 and probs[1].argmax() == 2
    assert all(abs(q.sum() - 1) < 1e-12 and (q > 0).all() for q in probs)


def test_evolution_children_are_new_and_age_out(data):
    r = get_strategy("evolution").search(tiny_problem(
        data, epochs=4, options={"population": "2", "sample": "2", "step": "1"}))
    chs = [tuple(c) for c in r.history["choices"]]
    assert len(chs) == 4 and len(set(chs)) == 4
    assert r.extras["generations"] == 2


def test_evolution_with_worker_processes_matches_one_process(data):
    opts = {"population": "2", "step": "2"}
    one = get_strategy("evolution").search(tiny_problem(data, epochs=4, options=opts))
    two = get_strategy("evolution").search(tiny_problem(data, epochs=4,
                                                        options={**opts, "workers": "2"}))
    assert one.history["choices"] == two.history["choices"]
    assert one.history["accuracy"] == two.history["accuracy"]


def test_spos_trains_the_supernet_for_the_epochs_and_refuses_other_evaluators(data):
    r = get_strategy("spos").search(tiny_problem(data, epochs=2,
                                                 options={"population": "3", "generations": "1"}))
    assert r.history["epoch"] == [1, 2] and len(r.history["train_loss"]) == 2
    assert r.extras["supernet_seconds"] > 0 and r.extras["trials"] >= 3
    with pytest.raises(UserError, match="supernet"):
        get_strategy("spos").search(tiny_problem(data, evaluator="train"))


def test_supernet_evaluator_without_spos_is_refused(data):
    with pytest.raises(UserError, match="spos"):
        get_strategy("random").search(tiny_problem(data, evaluator="supernet"))
