import pandas as pd
import pytest

from hwprof.latency.predictors.evaluate import accuracy, evaluate_frame, format_report


def test_accuracy_counts_relative_errors():
    acc = accuracy([1.04, 0.92, 1.12, 2.0], [1.0, 1.0, 1.0, 1.0])
    assert acc["n"] == 4
    assert acc["within_5"] == 0.25
    assert acc["within_10"] == 0.5
    assert acc["within_15"] == 0.75
    assert acc["rmspe"] == pytest.approx((0.04 ** 2 + 0.08 ** 2 + 0.12 ** 2 + 1.0) ** 0.5 / 2)
    assert acc["rmse_ms"] == pytest.approx(acc["rmspe"])  # true values are all 1 ms


def test_report_has_overall_and_per_kind_blocks():
    frame = pd.DataFrame({"kind": ["a", "a", "b"], "pred_ms": [1.0, 2.2, 3.0],
                          "true_ms": [1.0, 2.0, 6.0]})
    rep = evaluate_frame(frame)
    assert rep["overall"]["n"] == 3 and set(rep["kinds"]) == {"a", "b"}
    assert rep["kinds"]["a"]["within_10"] == 1.0 and rep["kinds"]["b"]["within_15"] == 0.0
    text = format_report(rep)
    assert "overall" in text and "50.0%" in text
