"""The learning curve of `fit --learning-curve`: nested subsets, slope, verdict, CLI.

Synthetic tables (latencies from made-up cost formulas), not this CPU's timings.
"""

import json

import numpy as np
import pytest

from hwprof.latency.predictors.learning import _slope, format_curve, learning_curve
from hwprof.latency.predictors.persist import load_predictor
from hwprof.latency.predictors.predictor import fit_predictor, training_rows
from hwprof.latency.sampling import sample_specs
from hwprof.latency.table import LatencyTable, rows_frame, write_table
from tests.synthetic import synthetic_row


def power_law_ms(spec) -> float:
    f = spec.features()
    return 1e-6 * f["macs"] ** 0.9 * (f["bytes_read"] + f["bytes_written"]) ** 0.05


def cliff_ms(spec) -> float:
    """A power law with a kernel cliff: output widths that are multiples of 32 run 1.6x
    slower (as nnabla's 1x1 convolutions at 224x224 do); learnt only from enough of them."""
    c = spec.output_shape[1]
    return power_law_ms(spec) * (1.6 if c % 32 == 0 else 1.0)


def frame(specs, cost, fp="fp-a", env="env-a"):
    rows = []
    for s in specs:
        r = synthetic_row(s.to_dict(), cost(s), fp=fp, env=env)
        r["latency_ms"] = cost(s)
        rows.append(r)
    t = LatencyTable.new()
    t.upsert(rows_frame(rows))
    return t


@pytest.fixture(scope="module")
def specs():
    return sample_specs(240, ["conv2d"], seed=11)


def test_curve_is_nested_and_ends_with_the_fits_own_figure(specs):
    df = frame(specs, cliff_ms).df
    pred = fit_predictor(df, candidates=("rf",), cv=3, min_rows=10)
    rows = training_rows(pred, df)
    assert len(rows) == 240
    curve = learning_curve(pred, rows, cv=3)["conv2d"]
    assert [p["rows"] for p in curve["points"]] == [60, 120, 180, 240]
    whole = pred.models["conv2d"].cv_scores_["rf"]
    assert curve["points"][-1]["within_10"] == pytest.approx(whole["within_10"])
    # a forest learns the cliff from more of its rows: the curve rises
    assert curve["points"][0]["within_10"] < curve["points"][-1]["within_10"]
    assert curve["verdict"] == "rising" and curve["points_per_doubling"] >= 1.5


def test_a_kind_already_learnt_is_flat(specs):
    df = frame(specs, power_law_ms).df
    pred = fit_predictor(df, candidates=("linear",), cv=3, min_rows=10)
    curve = learning_curve(pred, training_rows(pred, df), cv=3)["conv2d"]
    assert all(p["within_10"] == 1.0 for p in curve["points"])
    assert curve["points_per_doubling"] == pytest.approx(0.0, abs=1e-9)
    assert curve["verdict"] == "flat"
    lines = format_curve({"conv2d": curve})
    assert "240 rows 100.0 %" in lines[1] and "flat" in lines[1]


def test_subsets_too_small_to_cross_validate_are_left_out(specs):
    df = frame(specs[:40], power_law_ms).df
    pred = fit_predictor(df, candidates=("linear",), cv=3, min_rows=20)
    curve = learning_curve(pred, training_rows(pred, df), cv=3)["conv2d"]
    assert [p["rows"] for p in curve["points"]] == [20, 30, 40]  # 10 rows < min_rows


def test_slope_is_points_per_doubling():
    pts = [{"rows": n, "within_10": w} for n, w in ((100, 0.80), (200, 0.85), (400, 0.90))]
    assert _slope(pts) == pytest.approx(5.0)
    assert _slope(pts[:1]) is None


def test_training_rows_are_the_fitted_device_and_rows(specs):
    a = frame(specs[:60], power_law_ms).df
    b = frame(specs[:30], power_law_ms, fp="fp-b", env="env-b").df
    import pandas as pd
    both = pd.concat([a, b], ignore_index=True)
    pred = fit_predictor(both, candidates=("linear",), cv=3, min_rows=10,
                         device_fingerprint="fp-a", env_key="env-a")
    rows = training_rows(pred, both)
    assert len(rows) == 60 and set(rows["device_fingerprint"]) == {"fp-a"}


def test_cli_fit_learning_curve(tmp_path, capsys, specs):
    from hwprof.cli import main
    t = frame(specs, cliff_ms)
    t.meta["devices"] = {"fp-a": {"label": "cpu"}}
    path = tmp_path / "t.parquet"
    write_table(path, t)
    out = tmp_path / "p.predictor"
    args = ["fit", "--table", str(path), "--out", str(out), "--models", "rf", "--cv", "3",
            "--learning-curve"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "learning curve" in text and "conv2d    60 rows" in text
    assert "points per doubling" in text
    meta = load_predictor(out).meta["learning_curve"]["conv2d"]
    assert [p["rows"] for p in meta["points"]] == [60, 120, 180, 240]
    assert main(args + ["--json", "--force"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["learning_curve"]["conv2d"]["verdict"] in ("rising", "flat")
    assert np.isclose(rep["learning_curve"]["conv2d"]["points_per_doubling"],
                      meta["points_per_doubling"])
    png = tmp_path / "curve.png"
    assert main(args[:-1] + ["--learning-curve", str(png), "--force", "--quiet"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = out.stat().st_mtime_ns
    other = ["fit", "--table", str(path), "--out", str(tmp_path / "q.predictor"), "--models",
             "rf", "--cv", "3", "--learning-curve", str(png)]
    assert main(other) == 2  # the plot exists and there is no --force: nothing is fitted
    assert "curve.png exists" in capsys.readouterr().err
    assert not (tmp_path / "q.predictor").exists() and out.stat().st_mtime_ns == before
    # a transfer has no curve of its own: refused before anything is written
    few = tmp_path / "few.predictor"
    assert main(["fit", "--transfer-from", str(out), "--table", str(path), "--out", str(few),
                 "--learning-curve"]) == 2
    assert "--learning-curve goes with a fit" in capsys.readouterr().err
    assert not few.exists()
