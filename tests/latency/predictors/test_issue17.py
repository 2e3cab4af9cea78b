"""Issue 17: budgeted adaptive rounds, real-CNN layers, intervals, transfer, skipped kinds.

Synthetic tables only (latencies from a made-up cost formula): these test the
logic, not this CPU's timings.
"""

import json
import time

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.predictors.adaptive import BudgetRounds, run_budget_rounds
from hwprof.latency.predictors.intervals import interval_from_residuals, sum_interval
from hwprof.latency.predictors.predictor import fit_predictor
from hwprof.latency.predictors.realnets import NETWORKS, check_expand, networks_of, real_layers
from hwprof.latency.predictors.transfer import transferred
from hwprof.latency.sampling import sample_specs
from hwprof.latency.table import LatencyTable, rows_frame
from tests.synthetic import synthetic_row


def cost_ms(spec, speed=1.0, pw_penalty=1.0):
    """A made-up device: compute at 2 GMAC/s plus traffic at 4 GB/s plus 20 us."""
    f = spec.features()
    pw = pw_penalty if spec.kind == "conv2d" and spec.get("kernel") in (1, [1, 1]) else 1.0
    return (f["macs"] / 2e9 * pw + (f["bytes_read"] + f["bytes_written"]) / 4e9) * 1e3 / speed \
        + 0.02


def table_of(specs, fp="fp-a", env="env-a", noise=0.0, seed=0, **device):
    rng = np.random.default_rng(seed)
    rows = []
    for s in specs:
        ms = cost_ms(s, **device) * float(np.exp(rng.normal(0, noise))) if noise else \
            cost_ms(s, **device)
        r = synthetic_row(s.to_dict(), ms, fp=fp, env=env)
        r["latency_ms"] = ms
        rows.append(r)
    t = LatencyTable.new()
    t.upsert(rows_frame(rows))
    return t.df


FAST = dict(candidates=("linear",), cv=3, min_rows=10)


@pytest.fixture(scope="module")
def base_predictor():
    specs = sample_specs(60, ["conv2d", "dwconv2d"], seed=3)
    return fit_predictor(table_of(specs, noise=0.03), **FAST)


# --------------------------------------------------------------------------- #
# real layers


def test_real_layers_cover_every_network_and_kind_with_papers_widths():
    layers = real_layers()
    sigs = [s.signature for _, s in layers]
    assert len(sigs) == len(set(sigs)) > 150
    assert {n for n, _ in layers} == set(NETWORKS)
    assert {s.kind for _, s in layers} == {"conv2d", "dwconv2d", "mbconv"}
    # MobileNetV3-Large's expanded widths (Table 1) come out of the expand ratios
    v3 = [s for _, s in real_layers(["mobilenet_v3_large"], kinds=["mbconv"])]
    mids = {round(s.input[1] * s["expand"]) for s in v3}
    assert {64, 72, 120, 240, 200, 184, 480, 672, 960} <= mids
    assert check_expand(80, 184 / 80, 184) and check_expand(24, 88 / 24, 88)
    # ResNet-50's widest layer: 1x1 1024 -> 2048 at 14x14, stride 2 (the shortcut)
    assert any(s.kind == "conv2d" and s.input[1] == 1024 and s["out_channels"] == 2048
               and s["stride"] in (2, [2, 2]) for _, s in layers)
    by_net = networks_of(sigs)
    assert set(by_net) == set(sigs)


def test_real_layers_filters_and_rejects_unknown_networks():
    only = real_layers(["mobilenet_v1"], kinds=["dwconv2d"])
    assert only and all(s.kind == "dwconv2d" for _, s in only)
    with pytest.raises(UserError, match="unknown network.*known: resnet18"):
        real_layers(["vgg16"])


# --------------------------------------------------------------------------- #
# budgeted adaptive rounds


def test_budget_rounds_first_round_is_the_prior_then_half_uncertain():
    r = BudgetRounds(n=90, kinds=["dwconv2d"], seed=1, batch=40)
    first = r.next_round({})
    assert [s.signature for s in first] == [s.signature for s in sample_specs(40, ["dwconv2d"], 1)]
    measured = {"dwconv2d": {s.signature: cost_ms(s) for s in first}}
    second = r.next_round(measured)
    prior = [s.signature for s in sample_specs(60, ["dwconv2d"], 1)]
    assert len(second) == 40 and not {s.signature for s in second} & set(measured["dwconv2d"])
    assert [s.signature for s in second[:20]] == prior[40:60]  # the explore half, in order
    third = r.next_round(measured)
    assert len(third) == 10  # n = 90 per kind reached
    assert r.next_round(measured) == []


def test_run_budget_rounds_stops_at_the_deadline_with_a_fake_clock():
    now = [0.0]
    r = BudgetRounds(n=1000, kinds=["conv2d"], seed=0, batch=25)
    got = {}

    def measure(specs):
        now[0] += 10.0  # every round takes 10 s
        got.update({s.signature: cost_ms(s) for s in specs})

    started = run_budget_rounds(r, measure, lambda: {"conv2d": dict(got)}, deadline=35.0,
                                clock=lambda: now[0])
    assert started == 3 and len(got) == 75  # a 4th round of 10 s would end at 40 s


# --------------------------------------------------------------------------- #
# fit: skipped kinds, intervals


def test_fit_skips_kinds_with_too_few_rows_with_a_note():
    specs = sample_specs(30, ["conv2d"], seed=5) + sample_specs(3, ["mbconv"], seed=5)
    notes = []
    pred = fit_predictor(table_of(specs), **FAST, log=notes.append)
    assert pred.kinds == ["conv2d"]
    assert any("skipping kinds with too few measured rows: mbconv (3 rows)" in n for n in notes)
    with pytest.raises(UserError, match=r"too few measured rows to fit: mbconv \(3 rows\)"):
        fit_predictor(table_of(specs), kinds=["conv2d", "mbconv"], **FAST)


def test_intervals_cover_held_out_rows_about_as_promised(base_predictor):
    iv = base_predictor.meta["intervals"]["conv2d"]
    assert iv["level"] == 0.9 and iv["low"] < 0 < iv["high"]
    test = sample_specs(200, ["conv2d", "dwconv2d"], seed=11)
    truth = np.array([cost_ms(s) for s in test]) * np.exp(
        np.random.default_rng(1).normal(0, 0.03, len(test)))
    p, lo, hi = base_predictor.predict_intervals(test)
    assert np.all(lo <= p) and np.all(p <= hi)
    covered = np.mean((truth >= lo) & (truth <= hi))
    assert 0.75 <= covered <= 1.0


def test_sum_interval_is_between_quadrature_and_sum_of_bounds():
    p = np.full(50, 1.0)
    lo, hi = p * 0.9, p * 1.1
    total, low, high = sum_interval(p, lo, hi)
    assert total == 50 and 50 - 5 < low < 50 - np.sqrt(50) * 0.1 and high - 50 == pytest.approx(50 - low)
    assert sum_interval([2.0], [1.5], [3.0]) == (2.0, 1.5, 3.0)  # one op: its own interval
    assert sum_interval([1.0, 2.0], [np.nan, 1.0], [np.nan, 3.0])[0] == 3.0  # NaN: exact
    assert interval_from_residuals([1.0, 2.0, 4.0], [1.0, 2.0, 4.0])["high"] == 0.0


# --------------------------------------------------------------------------- #
# transfer


def test_transfer_learns_the_new_devices_ratio_from_fifty_rows(base_predictor, tmp_path):
    few = sample_specs(25, ["conv2d", "dwconv2d"], seed=21)
    device_b = dict(speed=0.4, pw_penalty=0.5)  # 2.5x slower, 1x1 convs relatively faster
    pred = transferred(base_predictor, table_of(few, fp="fp-b", env="env-b", **device_b),
                       source="few.parquet", from_path="a.predictor")
    test = sample_specs(120, ["conv2d", "dwconv2d"], seed=22)
    truth = np.array([cost_ms(s, **device_b) for s in test])
    before = base_predictor.predict_specs(test)
    after = pred.predict_specs(test)
    assert np.median(np.abs(before / truth - 1)) > 0.5
    assert np.mean(np.abs(after / truth - 1) <= 0.10) >= 0.9
    t = pred.meta["transfer"]
    assert t["rows"] == 50 and pred.meta["device_fingerprint"] == "fp-b"
    # persisted and loaded back: the same predictions
    from hwprof.latency.predictors.persist import load_predictor, save_predictor
    save_predictor(tmp_path / "b.predictor", pred)
    again = load_predictor(tmp_path / "b.predictor")
    assert np.allclose(again.predict_specs(test), after)


def test_transfer_keeps_a_forest_where_the_new_devices_ratio_is_not_smooth(base_predictor,
                                                                          tmp_path):
    """Device B runs 3x3 convs with another algorithm (0.4x): a step in the shape that no
    smooth ratio follows. The conv2d rows get a forest (its leave-one-out error is lower than
    the ridge's) and its predictions beat the ridge's."""
    from hwprof.latency.predictors import transfer as tr

    def device_b(s):
        ms = cost_ms(s, speed=0.5)
        if s.kind == "conv2d":
            ms *= 0.4 if s.get("kernel") in (3, [3, 3]) else 1.0
        return ms

    def table(specs):
        df = table_of(specs, fp="fp-b", env="env-b")
        df["latency_ms"] = [device_b(s) for s in specs]
        df["median_ms"] = df["latency_ms"]
        return df
    few = sample_specs(60, ["conv2d"], seed=31) + sample_specs(20, ["dwconv2d"], seed=31)
    pred = transferred(base_predictor, table(few))
    assert "conv2d" in pred.meta["transfer"]["forest_kinds"]
    assert set(pred.transfer_models) == set(pred.meta["transfer"]["forest_kinds"])
    test = sample_specs(150, ["conv2d"], seed=32)
    truth = np.array([device_b(s) for s in test])
    err_forest = np.abs(pred.predict_specs(test) / truth - 1)
    ridge_only = tr.correction(pred.meta["transfer"], test, base_predictor.predict_specs(test))
    err_ridge = np.abs(base_predictor.predict_specs(test) * ridge_only / truth - 1)
    assert np.median(err_forest) < 0.7 * np.median(err_ridge)
    from hwprof.latency.predictors.persist import load_predictor, save_predictor
    save_predictor(tmp_path / "b.predictor", pred)
    again = load_predictor(tmp_path / "b.predictor")
    assert np.allclose(again.predict_specs(test), pred.predict_specs(test))


def test_transfer_needs_rows_of_kinds_the_predictor_knows(base_predictor):
    mb = sample_specs(8, ["mbconv"], seed=2)  # its BN/activation parts have no model here
    conv = sample_specs(6, ["conv2d"], seed=2)
    with pytest.raises(UserError, match="only 3 measured row.*a transfer needs at least 5"):
        transferred(base_predictor, table_of(conv[:3] + mb, fp="fp-b", env="env-b"))
    t = transferred(base_predictor, table_of(conv + mb, fp="fp-b", env="env-b")).meta["transfer"]
    assert t["rows"] == 6 and t["skipped_kinds"] == ["mbconv"]


def test_sampling_prior_covers_stems_expanded_widths_and_rare_blocks():
    specs = sample_specs(400, ["conv2d", "dwconv2d", "mbconv"], seed=9)
    conv = [s for s in specs if s.kind == "conv2d"]
    dw = [s for s in specs if s.kind == "dwconv2d"]
    mb = [s for s in specs if s.kind == "mbconv"]
    assert any(s.input[1] == 3 for s in conv)  # stems
    assert max(s.input[1] for s in dw) > 1024 and max(max(s.input[1], s["out_channels"])
                                                      for s in conv) > 1024
    assert sum(s["expand"] == 1 for s in mb) > 40 and sum(s["se"] for s in mb) > 80
    assert {s["activation"] for s in mb} == {"relu", "relu6", "hswish"}
    assert any(s.input[1] % 8 for s in conv)
    assert json.dumps([s.signature for s in specs]) == json.dumps(
        [s.signature for s in sample_specs(400, ["conv2d", "dwconv2d", "mbconv"], seed=9)])


# --------------------------------------------------------------------------- #
# the time budget of a build (fake backend: no agent, made-up samples)


def test_build_deadline_stops_starting_groups_and_keeps_rows(tmp_path):
    from hwprof.latency.build import build_table
    from hwprof.latency.table import read_table
    from tests.latency.fakebackend import FakeBackend

    specs = sample_specs(12, ["dwconv2d"], seed=4)
    out = tmp_path / "t.parquet"
    spent = build_table(specs, [FakeBackend()], out, quiet=True, group_ops=4,
                        deadline=time.monotonic() - 1.0, log=lambda m: None)
    assert spent.measured == 0 and spent.not_started == 12
    full = build_table(specs, [FakeBackend()], out, quiet=True, group_ops=4,
                       deadline=time.monotonic() + 600.0, log=lambda m: None)
    assert full.measured == 12 and full.not_started == 0
    assert len(read_table(out).df) == 12


# --------------------------------------------------------------------------- #
# the CLI: fit skipping a kind, fit --transfer-from, predict --json intervals


def test_cli_fit_transfer_and_predict_intervals(tmp_path, capsys):
    from hwprof.cli import main
    from hwprof.latency.table import LatencyTable, write_table

    def write(df, name):
        t = LatencyTable.new()
        t.upsert(df)
        t.meta["devices"] = {df["device_fingerprint"].iloc[0]: {"label": "cpu"}}
        write_table(tmp_path / name, t)
        return str(tmp_path / name)

    specs = sample_specs(40, ["conv2d", "dwconv2d"], seed=6) + sample_specs(3, ["mbconv"], seed=6)
    a = write(table_of(specs, noise=0.02), "a.parquet")
    assert main(["fit", "--table", a, "--out", str(tmp_path / "a.predictor"), "--models",
                 "linear", "--cv", "3", "--min-rows", "10"]) == 0
    err = capsys.readouterr().err
    assert "skipping kinds with too few measured rows: mbconv (3 rows)" in err
    few = write(table_of(sample_specs(25, ["conv2d", "dwconv2d"], seed=7), fp="fp-b",
                         env="env-b", speed=0.5), "few.parquet")
    assert main(["fit", "--transfer-from", str(tmp_path / "a.predictor"), "--table", few,
                 "--out", str(tmp_path / "b.predictor"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["rows"] == 50 and rep["loo_accuracy"]["within_10"] > 0.8
    ops = tmp_path / "ops.json"
    test = sample_specs(5, ["conv2d"], seed=8)
    ops.write_text(json.dumps([s.to_dict() for s in test]))
    assert main(["predict", "--predictor", str(tmp_path / "b.predictor"), "--ops", str(ops),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for op in out["ops"]:
        assert op["latency_low_ms"] <= op["latency_ms"] <= op["latency_high_ms"]
    assert out["total_low_ms"] <= out["total_ms"] <= out["total_high_ms"]


def test_build_table_arguments_for_real_layers_and_budgets(tmp_path):
    import argparse

    from hwprof.cli import main
    from hwprof.commands import build_table as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    specs, name = cmd._specs(p.parse_args(["--real-layers", "mobilenet_v1", "--kinds",
                                           "dwconv2d"]))
    # 13 depthwise layers in Table 1, 9 distinct (five 512x14x14 ones)
    assert name == "real" and len(specs) == 9 and {s.kind for s in specs} == {"dwconv2d"}
    specs, name = cmd._specs(p.parse_args(["--sample", "5", "--adaptive", "--minutes", "1"]))
    assert specs is None and name == "adaptive"  # chosen in rounds while measuring
    with pytest.raises(UserError, match="--adaptive needs --predictor FILE .* or --minutes"):
        cmd._specs(p.parse_args(["--sample", "5", "--adaptive"]))
    assert main(["build-table", "--sample", "3", "--minutes", "0", "--out",
                 str(tmp_path / "x.parquet")]) == 2


def test_estimate_interval_maps_through_the_calibration_and_adds_its_error():
    from hwprof.latency.predictors.calibration import Calibration
    from hwprof.latency.predictors.intervals import estimate_interval

    assert estimate_interval(10.0, None, 11.0) == (None, None)
    assert estimate_interval(10.0, 9.0, 11.0) == (9.0, 11.0)
    cal = Calibration(space="s", stem_signature="x", slope=2.0, intercept=1.0, n=5)
    assert estimate_interval(10.0, 9.0, 11.0, cal) == pytest.approx((19.0, 23.0))
    cal.calibrated_rmspe = 0.05
    low, high = estimate_interval(10.0, 9.0, 11.0, cal)
    assert low < 19.0 and high > 23.0


def test_rows_with_wide_latency_ci_are_not_training_data():
    specs = sample_specs(30, ["conv2d"], seed=12)
    df = table_of(specs)
    df["latency_ci_low_ms"] = df["latency_ms"] * 0.98
    df["latency_ci_high_ms"] = df["latency_ms"] * 1.02
    wide = df.index[:4]
    df.loc[wide, "latency_ci_high_ms"] = df.loc[wide, "latency_ms"] * 1.6
    notes = []
    pred = fit_predictor(df, **FAST, log=notes.append)
    assert pred.meta["rows"]["conv2d"] == 26
    assert any("left out 4 row(s) whose latency CI is wider than ±20 %" in n for n in notes)
    assert fit_predictor(df, **FAST, max_ci=None).meta["rows"]["conv2d"] == 30


def test_answers_interval_of_a_latency_model(base_predictor):
    from hwprof.latency.model import LatencyModel
    from hwprof.latency.predictors.intervals import answer_bounds, answers_interval

    specs = sample_specs(6, ["conv2d"], seed=30)
    model = LatencyModel(predictor=base_predictor)
    answers = model.answers(specs)
    bounds = answer_bounds(base_predictor, answers)
    assert all(lo < a.latency_ms < hi for a, (lo, hi) in zip(answers, bounds))
    low, high = answers_interval(base_predictor, answers)
    total = sum(a.latency_ms for a in answers)
    assert sum(b[0] for b in bounds) < low < total < high < sum(b[1] for b in bounds)
