"""The predictor and whole-network verbs end to end, on real CPU measurements."""

import json

import pytest

from hwprof.cli import main
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table, write_table
from tests.conftest import FAST_PROTOCOL
from tests.latency.predictors.conftest import measure, small_specs

FAST = ["--time-cap", "0.2", "--min-samples", "5", "--min-span", "0"]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmd")
    train, held = d / "train.parquet", d / "held.parquet"
    measure(small_specs(24), train)
    measure(small_specs(8, offset=40), held)
    # calibrate and measure-arch need a table of this CPU: the tiny space is measured for real
    tiny = d / "tiny.parquet"
    build_table(get_space("tiny").table_specs(), [get_backend("cpu")], tiny,
                protocol=FAST_PROTOCOL, quiet=True, log=lambda m: None)
    return {"train": train, "held": held, "tiny": tiny, "dir": d}


@pytest.fixture(scope="module")
def predictor(tables):
    path = tables["dir"] / "cpu.predictor"
    assert main(["fit", "--table", str(tables["train"]), "--out", str(path), "--cv", "3",
                 "--min-rows", "10", "--models", "linear,rf", "--quiet"]) == 0
    return path


def test_fit_json_reports_the_chosen_model_per_kind(tmp_path, tables, capsys):
    rc, out, _ = run(capsys, "fit", "--table", tables["train"], "--out", tmp_path / "p",
                     "--cv", "3", "--min-rows", "10", "--models", "linear", "--json")
    assert rc == 0
    rep = json.loads(out)
    assert set(rep["kinds"]) == {"conv2d", "dwconv2d"}
    assert rep["kinds"]["conv2d"]["model"] == "linear" and rep["kinds"]["conv2d"]["rows"] == 24
    assert 0 <= rep["kinds"]["conv2d"]["cv"]["linear"]["within_10"] <= 1


def test_evaluate_json_contract_and_parity_plot(tmp_path, tables, predictor, capsys):
    png = tmp_path / "parity.png"
    rc, out, _ = run(capsys, "evaluate", "--predictor", predictor, "--table", tables["held"],
                     "--json", "--plot", png)
    assert rc == 0
    rep = json.loads(out)
    assert set(rep["kinds"]) == {"conv2d", "dwconv2d"}
    for block in [rep["overall"], *rep["kinds"].values()]:
        for key in ("n", "rmspe", "within_5", "within_10", "within_15"):
            assert key in block
        assert 0 <= block["within_5"] <= block["within_10"] <= block["within_15"] <= 1
        assert block["rmspe"] >= block["mape"]  # a root mean square is at least the mean
    assert rep["overall"]["n"] == rep["kinds"]["conv2d"]["n"] + rep["kinds"]["dwconv2d"]["n"] == 16
    # the overall figures pool the rows of every kind
    kinds = rep["kinds"].values()
    assert rep["overall"]["mape"] * 16 == pytest.approx(sum(k["mape"] * k["n"] for k in kinds))
    assert rep["overall"]["rmspe"] ** 2 * 16 == pytest.approx(
        sum(k["rmspe"] ** 2 * k["n"] for k in kinds))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, _ = run(capsys, "evaluate", "--predictor", predictor, "--table", tables["held"])
    assert rc == 0 and "overall" in out and "RMSPE" in out


def test_predict_says_table_or_predictor(tmp_path, tables, predictor, capsys):
    in_table = json.loads(read_table(tables["train"]).df["spec"].iloc[0])
    new = {"kind": "conv2d", "input": [1, 8, 9, 9], "out_channels": 16, "kernel": 3}
    ops = tmp_path / "ops.jsonl"
    ops.write_text(json.dumps(in_table) + "\n" + json.dumps(new) + "\n")
    rc, out, _ = run(capsys, "predict", "--predictor", predictor, "--ops", ops,
                     "--table", tables["train"], "--json")
    assert rc == 0
    rep = json.loads(out)
    rows = rep["ops"]
    assert [r["source"] for r in rows] == ["table", "predictor"] and rep["missing"] == []
    assert all(r["latency_ms"] > 0 for r in rows)
    assert rep["total_ms"] == pytest.approx(sum(r["latency_ms"] for r in rows))
    rc, out, _ = run(capsys, "predict", "--predictor", predictor, "--ops", ops)
    assert rc == 0 and "predictor" in out and "total of 2 op(s)" in out


def test_sample_is_reproducible_and_adaptive_adds_new_configs(tmp_path, predictor, capsys):
    a, b, c = (tmp_path / f"{n}.parquet" for n in "abc")
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        rc, _, err = run(capsys, "build-table", "--sample", 3, "--kinds", "relu", "--seed", seed,
                         "--out", out, "--quiet", *FAST)
        assert rc == 0, err
    sig = {p: set(read_table(p).df["signature"]) for p in (a, b, c)}
    assert len(sig[a]) == 3 and sig[a] == sig[b] and sig[a] != sig[c]
    ad = tmp_path / "adaptive.parquet"
    rc, _, err = run(capsys, "build-table", "--sample", 2, "--kinds", "dwconv2d", "--adaptive",
                     "--predictor", predictor, "--out", ad, "--quiet", *FAST)
    assert rc == 0, err
    df = read_table(ad).df
    assert len(df) == 2 and (df["kind"] == "dwconv2d").all() and (df["median_ms"] > 0).all()


def test_measure_arch_estimate_and_calibrate(tmp_path, tables, capsys):
    space = get_space("tiny")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": "tiny",
                                "choices": [lay.candidates[-1] for lay in space.layers]}))
    rc, out, err = run(capsys, "measure-arch", "--arch", arch, "--json", *FAST)
    assert rc == 0, err
    measured = json.loads(out)
    assert measured["latency_ms"] > 0 and measured["space"] == "tiny"
    assert measured["level_source"] == "session" and measured["ref_level_ms"] > 0
    assert measured["latency_ci_low_ms"] <= measured["latency_ms"] <= measured["latency_ci_high_ms"]
    assert measured["machine"]["spread"] >= 1.0

    table = tmp_path / "tiny.parquet"
    table.write_bytes(tables["tiny"].read_bytes())
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table, "--json")
    plain = json.loads(out)
    assert rc == 0 and plain["estimate_ms"] == plain["sum_ms"] > 0 and not plain["calibrated"]

    rc, out, err = run(capsys, "calibrate", "--table", table, "--space", "tiny", "--archs", 3,
                       "--json", *FAST)
    assert rc == 0, err
    cal = json.loads(out)
    assert cal["n"] == 3 and cal["stored_in"] == str(table) and cal["slope"] > 0
    assert len(cal["points"]) == 3 and all(p["measured_ms"] > 0 for p in cal["points"])
    assert "tiny" in read_table(table).meta["calibrations"]

    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table, "--json")
    est = json.loads(out)
    assert rc == 0 and est["calibrated"] and est["sum_ms"] == pytest.approx(plain["sum_ms"])
    assert est["estimate_ms"] == pytest.approx(cal["slope"] * est["sum_ms"] + cal["intercept"])
    assert est["calibration"]["out_of_date"] is None and est["calibration"]["agent_version"]
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table)
    assert rc == 0 and "out of date" not in out
    # the same calibration as an agent before 10 would have stored it: applied, and flagged
    t = read_table(table)
    t.meta["calibrations"]["tiny"]["agent_version"] = None
    write_table(table, t)
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table, "--json")
    stale = json.loads(out)
    assert stale["calibrated"] and stale["estimate_ms"] == pytest.approx(est["estimate_ms"])
    assert "cold" in stale["calibration"]["out_of_date"]
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table)
    assert rc == 0 and "calibration out of date" in out and "hwprof calibrate" in out
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table, "--no-calibration",
                     "--json")
    assert json.loads(out)["estimate_ms"] == pytest.approx(plain["sum_ms"])


@pytest.mark.parametrize("argv, message", [
    (["fit", "--table", "{train}", "--out", "{tmp}/p", "--min-rows", "30"], "too few measured rows"),
    (["evaluate", "--predictor", "{tmp}/none.predictor", "--table", "{train}"], "no predictor file"),
    (["estimate", "--arch", "{tmp}/arch.json"], "--table and/or --predictor"),
    (["build-table", "--sample", "2", "--kinds", "conv3d", "--out", "{tmp}/x.parquet"],
     "cannot sample op kind"),
    (["measure-arch", "--arch", "{tmp}/missing.json"], "cannot read architecture file"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, tables, capsys, argv, message):
    (tmp_path / "arch.json").write_text(json.dumps({"space": "tiny", "choices": ["skip"]}))
    argv = [a.format(train=tables["train"], tmp=tmp_path) for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert err.startswith("hwprof: error:") and message in err and "Traceback" not in err


def test_calibrate_refuses_another_device_before_measuring(tmp_path, tables, capsys):
    from hwprof.latency.table import write_table
    t = read_table(tables["tiny"])
    t.df["device_fingerprint"] = "someboard0000"
    other = tmp_path / "other.parquet"
    write_table(other, t)
    rc, _, err = run(capsys, "calibrate", "--table", other, "--space", "tiny", "--archs", 2, *FAST)
    assert rc == 2 and "is not the device the latencies were measured on (someboard0000)" in err
    assert "calibrations" not in read_table(other).meta
