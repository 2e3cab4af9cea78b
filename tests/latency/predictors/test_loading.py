"""load_latency_model: table, predictor and the stored calibration, from files."""

import pytest

from hwprof.errors import UserError
from hwprof.latency.loading import load_latency_model
from hwprof.latency.predictors.calibration import fit_calibration, store_in_meta
from hwprof.latency.predictors.persist import save_predictor
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table, write_table
from tests.latency.predictors.conftest import measure


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "tiny.parquet"
    measure(get_space("tiny").table_specs(), out)
    return out


def test_table_and_predictor_and_stored_calibration(tmp_path, tiny_table, small_predictor):
    space = get_space("tiny")
    choices = [lay.candidates[0] for lay in space.layers]
    model = load_latency_model(tiny_table)
    assert model.calibration is None
    plain = model.estimate_arch(space, choices)
    assert plain["estimate_ms"] == plain["sum_ms"] > 0 and plain["from_predictor"] == 0

    table = read_table(tiny_table)
    cal = fit_calibration([1.0, 2.0, 4.0], [1.2, 2.2, 4.2], space="tiny",
                          stem_signature=space.arch_specs(choices)[0].signature)
    store_in_meta(table.meta, cal)
    calibrated = tmp_path / "cal.parquet"
    write_table(calibrated, table)
    model = load_latency_model(calibrated)
    est = model.estimate_arch(space, choices)
    assert est["calibrated"] and est["estimate_ms"] == pytest.approx(est["sum_ms"] + 0.2)
    assert load_latency_model(calibrated, calibrate=False).calibration is None
    from hwprof.latency.predictors.calibration import CalibrationSet
    model.calibration = CalibrationSet([fit_calibration([1.0], [2.0], space="other",
                                                        stem_signature="not-this-stem")])
    other = model.estimate_arch(space, choices)
    assert not other["calibrated"] and other["estimate_ms"] == other["sum_ms"]

    pred_path = tmp_path / "p.predictor"
    save_predictor(pred_path, small_predictor)
    both = load_latency_model(calibrated, pred_path)
    conv = {"kind": "conv2d", "input": [1, 8, 5, 5], "out_channels": 8, "kernel": 3}
    ms, src = both.latency(conv)
    assert src == "predictor" and ms > 0
    assert both.latency(space.arch_specs(choices)[0])[1] == "table"


def test_nothing_to_load_is_a_user_error():
    with pytest.raises(UserError, match="table"):
        load_latency_model()


def test_a_table_only_model_never_imports_sklearn(tiny_table):
    import subprocess
    import sys
    code = ("import sys; from hwprof.latency.loading import load_latency_model; "
            f"m = load_latency_model({str(tiny_table)!r}); "
            "print('sklearn' in sys.modules, 'skops' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
