"""A predictor fitted on real CPU measurements."""

import json

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.predictors.evaluate import prediction_frame
from hwprof.latency.predictors.predictor import fit_predictor
from hwprof.latency.predictors.regressors import TooFewRows
from hwprof.latency.specs import parse_spec


def test_fit_on_a_measured_table_predicts_its_rows(small_table, small_predictor):
    assert small_predictor.kinds == ["conv2d", "dwconv2d"]
    frame, skipped = prediction_frame(small_predictor, small_table.df)
    assert skipped == [] and len(frame) == len(small_table.df)
    assert (frame["pred_ms"] > 0).all()
    # in-sample predictions of the chosen models follow the measurements (rank order)
    corr = np.corrcoef(np.log(frame["pred_ms"]), np.log(frame["true_ms"]))[0, 1]
    assert corr > 0.8
    d = small_predictor.describe()
    assert set(d["kinds"]) == {"conv2d", "dwconv2d"}
    assert d["kinds"]["conv2d"]["model"] in ("linear", "rf")
    assert d["device_fingerprint"] == small_table.df["device_fingerprint"].iloc[0]
    assert len(small_predictor.meta["training_signatures"]) == len(small_table.df)


def test_unknown_primitive_kind_is_an_error_and_composites_sum_their_parts(small_predictor):
    with pytest.raises(UserError, match="no model for op kind 'bn'"):
        small_predictor.predict_specs([{"kind": "bn", "input": [1, 8, 8, 8]}])
    seq = parse_spec({"kind": "sequence", "input": [1, 16, 8, 8], "ops": [
        {"kind": "conv2d", "out_channels": 32, "kernel": 1},
        {"kind": "dwconv2d", "kernel": 3}]})
    parts = small_predictor.predict_specs(seq.children())
    assert small_predictor.predict_specs([seq])[0] == pytest.approx(parts.sum())


def test_too_few_rows_names_the_kind(small_table):
    with pytest.raises(TooFewRows, match=r"conv2d \(24 rows\)"):
        fit_predictor(small_table.df, kinds=["conv2d"], min_rows=30)
    with pytest.raises(TooFewRows, match=r"mbconv \(0 rows\)"):
        fit_predictor(small_table.df, kinds=["mbconv"], min_rows=10, cv=3)


def test_error_rows_are_never_training_data(small_table):
    df = small_table.df.copy()
    df.loc[df.index[:5], "status"] = "error"
    df.loc[df.index[:5], ["median_ms", "latency_ms"]] = None
    pred = fit_predictor(df, cv=3, min_rows=10, candidates=("linear",))
    assert pred.meta["rows"]["conv2d"] == 24 - 5
    assert not set(df["signature"].iloc[:5]) & set(pred.meta["training_signatures"])


def test_a_table_of_two_devices_must_be_narrowed(small_table):
    df = small_table.df.copy()
    other = df.copy()
    other["device_fingerprint"] = "otherdevice"
    both = __import__("pandas").concat([df, other], ignore_index=True)
    with pytest.raises(UserError, match="2 devices"):
        fit_predictor(both, cv=3, min_rows=10)
    pred = fit_predictor(both, cv=3, min_rows=10, candidates=("linear",),
                         device_fingerprint="otherdevice")
    assert pred.meta["device_fingerprint"] == "otherdevice"
    json.dumps(pred.meta)  # metadata stays plain JSON


def test_mbconv_model_stacks_on_its_convolutions(tmp_path, small_table):
    import pandas as pd

    from hwprof.latency.predictors.persist import load_predictor, save_predictor
    from tests.latency.predictors.conftest import measure
    blocks = [parse_spec({"kind": "mbconv", "input": [1, c, s, s], "out_channels": c,
                          "expand": e, "kernel": 3})
              for c in (8, 16) for s in (4, 8) for e in (1, 3, 6)]
    blocks += [parse_spec({"kind": "mbconv", "input": [1, 8, s, s], "out_channels": 16,
                           "expand": e, "kernel": 5, "stride": 2}) for s in (6, 8) for e in (2, 4)]
    mb = measure(blocks, tmp_path / "mb.parquet")
    df = pd.concat([small_table.df, mb.df], ignore_index=True)
    pred = fit_predictor(df, cv=3, min_rows=10, candidates=("linear",))
    assert pred.stacked == {"mbconv": ["conv2d", "dwconv2d"]}
    # effective bandwidth of the table's depthwise convs: median bytes moved per second
    dw = small_table.df[small_table.df["kind"] == "dwconv2d"]
    rates = [(f["bytes_read"] + f["bytes_written"]) / (ms * 1e-3) for f, ms in
             zip((parse_spec(json.loads(sp)).features() for sp in dw["spec"]), dw["latency_ms"])]
    bw = pred.meta["stack_bandwidth"]["mbconv"]
    assert bw == pytest.approx(np.median(rates))
    x = pred._features("mbconv", blocks[:2])
    assert x.shape[1] == len(pred.feature_names["mbconv"]) + 2
    parts = [c for c in blocks[0].children() if c.kind in ("conv2d", "dwconv2d")]
    conv_ms = pred.predict_specs(parts).sum()
    assert np.expm1(x[0, -2]) / 1e3 == pytest.approx(conv_ms)
    # the roofline column adds the other parts' (bn, relu6, add...) bytes at that bandwidth
    rest = sum(c.features()["bytes_read"] + c.features()["bytes_written"]
               for c in blocks[0].children() if c.kind not in ("conv2d", "dwconv2d"))
    assert rest > 0
    assert np.expm1(x[0, -1]) / 1e3 == pytest.approx(conv_ms + rest / bw * 1e3)
    path = tmp_path / "p.predictor"
    save_predictor(path, pred)
    again = load_predictor(path)
    assert again.stacked == pred.stacked
    assert np.allclose(again.predict_specs(blocks), pred.predict_specs(blocks))
    plain = fit_predictor(df, cv=3, min_rows=10, candidates=("linear",), stack=False)
    assert plain.stacked == {} and plain.meta["stack_bandwidth"] == {}


def test_a_predictor_stacked_without_bandwidth_keeps_one_column(tmp_path, small_table):
    """Files fitted before the roofline column have no ``stack_bandwidth``: their
    MBConv model was fitted on one stacked column and must be given one."""
    import pandas as pd

    from hwprof.latency.predictors.persist import load_predictor, save_predictor
    from hwprof.latency.predictors.regressors import KindRegressor
    from tests.latency.predictors.conftest import measure
    blocks = [parse_spec({"kind": "mbconv", "input": [1, c, s, s], "out_channels": c,
                          "expand": e, "kernel": 3})
              for c in (8, 16) for s in (4, 6, 8) for e in (1, 2, 4)]
    mb = measure(blocks, tmp_path / "mb.parquet")
    pred = fit_predictor(pd.concat([small_table.df, mb.df], ignore_index=True), cv=3,
                         min_rows=10, candidates=("linear",))
    del pred.meta["stack_bandwidth"]
    x = pred._features("mbconv", blocks)
    assert x.shape[1] == len(pred.feature_names["mbconv"]) + 1
    y = mb.df.set_index("signature").loc[[b.signature for b in blocks], "latency_ms"].to_numpy()
    pred.models["mbconv"] = KindRegressor(candidates=("linear",), cv=3, min_rows=10).fit(x, y)
    path = tmp_path / "old.predictor"
    save_predictor(path, pred)
    again = load_predictor(path)
    assert "stack_bandwidth" not in again.meta
    assert np.allclose(again.predict_specs(blocks), pred.predict_specs(blocks))
