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
