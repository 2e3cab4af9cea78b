"""Which of a search loop's networks become calibration points (no device: report dicts)."""

from hwprof.latency.calibrate import loop_points


def _round(name, sum_ms, measured):
    return {"choices": [name], "sum_ms": sum_ms, "estimate_ms": sum_ms, "measured_ms": measured}


def test_the_measured_rounds_pair_with_the_results_in_order():
    rounds = [_round("a", 2.0, 1.8), _round("b", 3.0, 2.7), _round("c", 4.0, None)]
    results = [{"level_source": "table"}, {"level_source": "table"}]
    assert loop_points(rounds, results) == [
        {"choices": ["a"], "sum_ms": 2.0, "measured_ms": 1.8},
        {"choices": ["b"], "sum_ms": 3.0, "measured_ms": 2.7}]


def test_networks_at_their_sessions_own_level_are_left_out():
    rounds = [_round("a", 2.0, 1.8), _round("b", 3.0, 2.7)]
    results = [{"level_source": "session"}, {"level_source": "table"}]
    assert [p["choices"] for p in loop_points(rounds, results)] == [["b"]]


def test_rounds_and_results_that_do_not_pair_up_give_nothing():
    rounds = [_round("a", 2.0, 1.8), _round("b", 3.0, 2.7)]
    assert loop_points(rounds, [{"level_source": "table"}]) == []


def _model_with(agent_version):
    from types import SimpleNamespace

    from hwprof.latency.predictors.calibration import CalibrationSet, fit_calibration
    from hwprof.latency.spaces import get_space
    space = get_space("tiny")
    cal = fit_calibration([1.0, 2.0, 3.0], [1.1, 2.1, 3.2], space="tiny",
                          stem_signature=space.fixed_specs[0].signature,
                          agent_version=agent_version)
    return SimpleNamespace(calibration=CalibrationSet([cal])), space


def test_a_calibration_measured_before_agent_10_is_out_of_date():
    from hwprof.latency.calibrate import has_calibration, stale_calibration
    for old in (None, "9", "garbled"):
        model, space = _model_with(old)
        assert has_calibration(model, space)
        assert "timed the reference op cold" in stale_calibration(model, space)
    for current in ("10", "11"):
        model, space = _model_with(current)
        assert stale_calibration(model, space) is None


def test_no_calibration_is_not_stale_and_a_refit_keeps_the_agent_version():
    from types import SimpleNamespace

    from hwprof.latency.calibrate import stale_calibration
    from hwprof.latency.predictors.calibration import refit_with
    from hwprof.latency.spaces import get_space
    assert stale_calibration(SimpleNamespace(calibration=None), get_space("tiny")) is None
    model, space = _model_with("10")
    cal = model.calibration.for_specs(space.fixed_specs[:1])
    new = refit_with(cal, [{"choices": None, "sum_ms": 4.0, "measured_ms": 4.3}])
    assert new.agent_version == "10" and new.n == 4
