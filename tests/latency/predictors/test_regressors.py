"""KindRegressor follows the scikit-learn contract and picks its model by CV."""

import numpy as np
import pytest
from sklearn.base import clone

from hwprof.errors import UserError
from hwprof.latency.predictors.regressors import CANDIDATES, KindRegressor, TooFewRows


def _power_law(n=80, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 5, size=(n, 3))
    y = np.exp(0.8 * x[:, 0] + 0.3 * x[:, 1] - 2.0)  # exact power law in the raw quantities
    return x, y


def test_constructor_only_stores_parameters_and_clone_works():
    est = KindRegressor(candidates=("linear",), cv=3)
    assert est.get_params() == {"candidates": ("linear",), "cv": 3, "min_rows": 20,
                                "scoring": "mape", "random_state": 0}
    assert not [a for a in vars(est) if a.endswith("_")]
    assert clone(est).get_params() == est.get_params()


def test_fit_returns_self_sets_fitted_attributes_and_prefers_linear_on_a_power_law():
    x, y = _power_law()
    est = KindRegressor(candidates=("rf", "linear"), cv=4)
    assert est.fit(x, y) is est
    assert est.chosen_ == "linear"
    assert set(est.cv_scores_) == {"rf", "linear"}
    assert est.cv_scores_["linear"]["rmspe"] < est.cv_scores_["rf"]["rmspe"]
    assert est.n_features_in_ == 3 and est.oof_ms_.shape == y.shape
    pred = est.predict(x)
    assert np.allclose(pred, y, rtol=1e-3)
    with pytest.raises(ValueError, match="features"):
        est.predict(x[:, :2])


def test_every_candidate_fits_and_predicts_positive_latencies():
    x, y = _power_law(40)
    for name in CANDIDATES:
        est = KindRegressor(candidates=(name,), cv=2).fit(x, y)
        assert est.chosen_ == name
        assert (est.predict(x) > 0).all()


def test_too_few_rows_is_a_clear_error_not_a_silent_model():
    x, y = _power_law(12)
    with pytest.raises(TooFewRows, match="only 12 measured row"):
        KindRegressor().fit(x, y)


def test_bad_input_is_refused():
    x, y = _power_law(40)
    y[3] = 0.0
    with pytest.raises(UserError, match="positive"):
        KindRegressor(cv=2).fit(x, y)
    with pytest.raises(UserError, match="unknown model"):
        KindRegressor(candidates=("svm",)).fit(*_power_law(40))
    with pytest.raises(UserError, match="cv"):
        KindRegressor(cv=1).fit(*_power_law(40))


def test_unfitted_predict_raises():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        KindRegressor().predict(np.ones((2, 3)))


def test_the_squared_loss_candidate_is_the_deeper_l2_boosting_and_the_cli_offers_every_candidate():
    from hwprof.cli import build_parser
    from hwprof.latency.predictors.regressors import make_candidate
    sq, huber = make_candidate("linear+gbr-sq"), make_candidate("linear+gbr")
    assert sq.get_params()["loss"] == "squared_error" and huber.get_params()["loss"] == "huber"
    assert sq.get_params()["max_depth"] > huber.get_params()["max_depth"]
    args = build_parser().parse_args(["fit", "--table", "t.parquet", "--out", "p.predictor"])
    assert tuple(args.models.split(",")) == CANDIDATES
