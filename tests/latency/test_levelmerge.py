"""Tables of one device at different reference levels: merge refuses them, or carries the
later ones' rows to the first's level (--rescale), and keeps the levels in the merged table.

Synthetic rows whose samples follow the carrying law exactly: an op whose latency is T at
reference level 1 ms reads T * (x / 1) ** E beside a reference at x. Carried with E to a
level L, every sample reads T * L ** E, so a table at 1.25 ms carried to 1 ms must give back
T itself."""

import pandas as pd
import pytest

from hwprof.errors import UserError
from hwprof.latency import levelmerge, reference
from hwprof.latency.elasticity import row_passes
from hwprof.latency.fleet import read_fleet, write_fleet
from hwprof.latency.table import LatencyTable, normalise, read_table, write_table
from hwprof.latency.tableops import merge
from tests.synthetic import synthetic_table

E = 0.9
TRUTH = [0.2, 0.45, 1.3, 2.0, 3.7, 8.0]  # ms at level 1 (one per synthetic spec)
KEY = "fp-synth/env-synth"
PLAN = {"kind": "basket", "members": ["synthetic"]}


def _table(level: float, e: float = E, *, samples: bool = True, fp: str = "fp-synth",
           stamp: float = 1.0) -> LatencyTable:
    """A table at ``level`` whose rows are carried there with ``e`` (its samples' references
    sit around the level, 3 passes of 12 samples)."""
    t = synthetic_table(medians=[v * level ** E for v in TRUTH], fp=fp)
    df = t.df.copy().astype(object)
    sig_truth = dict(zip(df["signature"], TRUTH))
    for i in df.index:
        truth = sig_truth[df.at[i, "signature"]]
        refs = [[level * (1 + 0.02 * ((j + p) % 5 - 2)) for j in range(12)] for p in range(3)]
        ys = [[truth * x ** E for x in r] for r in refs]
        lat = truth * level ** e  # what carrying with e gives (exact when e == E)
        df.at[i, "latency_ms"] = lat
        df.at[i, "latency_ci_low_ms"], df.at[i, "latency_ci_high_ms"] = lat * 0.98, lat * 1.02
        df.at[i, "ref_level_ms"], df.at[i, "ref_elasticity"] = level, e
        df.at[i, "passes"], df.at[i, "pass_medians_ms"] = 3, [lat] * 3
        if samples:
            df.at[i, "pass_samples_ms"], df.at[i, "pass_sample_ref_ms"] = ys, refs
    t = LatencyTable(normalise(df), t.meta)
    t.meta["protocol"] = {"elasticity": 0.5, "target_ci": 0.02, "min_side": 3}
    t.meta["pass_rule"] = "lower-half geometric mean"
    t.meta["reference"] = {"plan": PLAN, "levels": {}}
    reference.adopt_level(t.meta, f"{fp}/env-synth", level, reference.FIRST_GROUP, e)
    t.meta["timelines"] = [{"key": f"{fp}/env-synth", "started_at": stamp, "points": [],
                            "movement": {"p5_ms": level, "p50_ms": level, "p95_ms": level * 1.1,
                                         "min_ms": level, "max_ms": level * 1.2}}]
    return t


def _lat(t):
    return dict(zip(t.df["signature"], t.df["latency_ms"].astype(float)))


def test_tables_at_different_levels_are_refused_with_one_line():
    a, b = _table(1.0), _table(1.25)
    with pytest.raises(UserError) as ei:
        merge([a, b], on_conflict="mean", sources=["mon.parquet", "fri.parquet"])
    msg = str(ei.value)
    assert "\n" not in msg and "1 ms (elasticity 0.9) and 1.25 ms (elasticity 0.9)" in msg
    assert "about 25 %" in msg and "--rescale" in msg and "fri.parquet's rows" in msg


def test_rescale_carries_the_later_rows_to_the_first_level_from_their_samples():
    a, b = _table(1.0), _table(1.25)
    assert all(lb / la == pytest.approx(1.25 ** E) for la, lb in zip(_lat(a).values(),
                                                                      _lat(b).values()))
    rep = merge([a, b], on_conflict="keep-last", rescale=True)
    assert rep.rescaled == len(b.df)
    got = rep.table.df
    assert set(got["ref_level_ms"]) == {1.0} and set(got["ref_elasticity"]) == {E}
    for sig, lat in _lat(rep.table).items():
        assert lat == pytest.approx(_lat(a)[sig], rel=1e-9)  # the truth at level 1
    row = got.iloc[0].to_dict()
    assert len(row_passes(row)) == 3 and list(row["pass_medians_ms"]) == pytest.approx(
        [row["latency_ms"]] * 3)
    assert row["latency_ci_low_ms"] == pytest.approx(row["latency_ms"] * 0.98)
    # b's samples sat around 1.25 ms: none brackets 1 ms
    assert not got["bracketed"].astype(bool).any()


def test_rescale_rederives_rows_carried_with_another_elasticity():
    a, b = _table(1.0), _table(1.0, e=0.5)  # same level, b carried half-way
    with pytest.raises(UserError, match="carried differently"):
        merge([a, b], on_conflict="keep-last")
    rep = merge([a, b], on_conflict="keep-last", rescale=True)
    assert set(rep.table.df["ref_elasticity"]) == {E}
    assert _lat(rep.table) == pytest.approx(_lat(a))


def test_rows_without_samples_are_scaled_by_the_level_ratio():
    a, b = _table(1.0), _table(2.0, samples=False)
    rep = merge([a, b], on_conflict="keep-last", rescale=True)
    for sig, lat in _lat(rep.table).items():
        assert lat == pytest.approx(_lat(b)[sig] * 0.5 ** E)
    row = rep.table.df.iloc[0]
    assert list(row["pass_medians_ms"]) == pytest.approx([row["latency_ms"]] * 3)


def test_the_merged_table_keeps_its_levels_timelines_and_pass_rule():
    a, b = _table(1.0, stamp=5.0), _table(1.0, fp="fp-other", stamp=3.0)
    rep = merge([a, b], allow_mixed=True)
    meta = rep.table.meta
    assert reference.table_level(meta, KEY) == 1.0
    assert reference.table_level(meta, "fp-other/env-synth") == 1.0
    assert reference.table_elasticity(meta, KEY) == E
    assert meta["reference"]["plan"] == PLAN and meta["pass_rule"] == a.meta["pass_rule"]
    assert [tl["started_at"] for tl in meta["timelines"]] == [3.0, 5.0]
    # tables that never had levels (imports, old agents) merge as before, with none
    plain = merge([synthetic_table(), synthetic_table()]).table
    assert "reference" not in plain.meta


def test_a_level_lost_from_the_metadata_is_read_from_the_rows():
    a, b = _table(1.0), _table(1.25)
    del b.meta["reference"]
    levels = levelmerge.key_levels(b.df, b.meta)
    assert levels[KEY].level_ms == 1.25 and levels[KEY].entry is None
    with pytest.raises(UserError, match="1.25 ms"):
        merge([a, b], on_conflict="keep-last")


def test_other_reference_ops_are_refused_even_with_rescale():
    a, b = _table(1.0), _table(1.0)
    b.meta["reference"]["plan"] = {"kind": "mbconv"}
    with pytest.raises(UserError, match="different reference ops"):
        merge([a, b], on_conflict="keep-last", rescale=True, sources=["a", "b"])


def test_a_fleet_keeps_each_device_level_and_refuses_an_upsert_at_another(tmp_path):
    root = tmp_path / "fleet"
    write_fleet(root, _table(1.0))
    write_fleet(root, _table(1.5, fp="fp-other"))
    back = read_fleet(root)
    assert reference.table_level(back.meta, KEY) == 1.0
    assert reference.table_level(back.meta, "fp-other/env-synth") == 1.5
    before = read_fleet(root).df
    with pytest.raises(UserError, match="table merge --rescale"):
        write_fleet(root, _table(1.25), mode="upsert")
    pd.testing.assert_frame_equal(read_fleet(root).df, before)  # nothing written
    assert write_fleet(root, _table(1.0), mode="upsert") == {"fp-synth": len(TRUTH)}


def test_cli_refuses_then_rescales(tmp_path, capsys):
    from hwprof.cli import main

    a, b, out = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "ab.parquet"
    write_table(a, _table(1.0))
    write_table(b, _table(1.25))
    assert main(["table", "merge", str(a), str(b), "--on-conflict", "mean",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rescale" in err and not out.exists()
    assert main(["table", "merge", str(a), str(b), "--on-conflict", "mean", "--rescale",
                 "--out", str(out)]) == 0
    assert f"{len(TRUTH)} rows carried" in capsys.readouterr().out
    back = read_table(out)
    assert reference.table_level(back.meta, KEY) == 1.0
    assert _lat(back) == pytest.approx(_lat(read_table(a)))
    assert main(["table", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"merged    from 2 tables: {a}, {b}" in shown and "reference 1.0000 ms" in shown


def test_diff_names_one_device_at_two_levels(tmp_path, capsys):
    from hwprof.cli import main
    from hwprof.latency.tableops import diff

    lv = diff(_table(1.0), _table(1.25)).summary["levels"]
    assert lv == {"a_ms": 1.0, "a_elasticity": E, "b_ms": 1.25, "b_elasticity": E,
                  "same_device": True, "same_level": False}
    assert diff(_table(1.0), _table(1.0)).summary["levels"]["same_level"]
    assert diff(synthetic_table(), synthetic_table()).summary["levels"] is None
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_table(a, _table(1.0))
    write_table(b, _table(1.25))
    assert main(["table", "diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "levels     A 1 ms (elasticity 0.9), B 1.25 ms (elasticity 0.9): one device" in out
    assert "--rescale" in out


def test_table_rescale_carries_one_table_to_another_level(tmp_path, capsys):
    from hwprof.cli import main

    src, ref, out = tmp_path / "old.parquet", tmp_path / "new.parquet", tmp_path / "o.parquet"
    write_table(src, _table(1.25, e=0.5))
    write_table(ref, _table(1.0))
    assert main(["table", "rescale", str(src), "--reference-from", str(ref),
                 "--out", str(out)]) == 0
    assert (f"{len(TRUTH)} of {len(TRUTH)} rows carried from 1.25 ms (elasticity 0.5) to 1 ms "
            f"(elasticity 0.9)") in capsys.readouterr().out
    back = read_table(out)
    assert _lat(back) == pytest.approx(_lat(read_table(ref)))
    assert reference.table_level(back.meta, KEY) == 1.0
    assert reference.table_elasticity(back.meta, KEY) == E
    assert "carried from 1.25 ms" in back.meta["reference"]["levels"][KEY]["chosen"]
    # the output exists now: refused without --force, and a table of two devices is refused
    assert main(["table", "rescale", str(src), "--reference-from", str(ref),
                 "--out", str(out)]) == 2
    both = tmp_path / "both.parquet"
    write_table(both, merge([_table(1.0), _table(1.0, fp="fp-other")], allow_mixed=True).table)
    capsys.readouterr()
    assert main(["table", "rescale", str(both), "--reference-from", str(ref),
                 "--out", str(tmp_path / "x.parquet")]) == 2
    assert "holds 2 reference levels" in capsys.readouterr().err
    other = tmp_path / "other.parquet"
    write_table(other, _table(1.0, fp="fp-other"))
    assert main(["table", "rescale", str(src), "--reference-from", str(other),
                 "--out", str(tmp_path / "y.parquet")]) == 2
    assert "carried only between tables of the same one" in capsys.readouterr().err
    assert not (tmp_path / "y.parquet").exists()


def test_tables_of_per_op_elasticities_carry_each_row_with_its_own():
    """Agents before 11 fitted each op's elasticity (protocol "elasticity": null): a row is
    carried with the one it was recorded with."""
    a, b = _table(1.0), _table(1.25)
    for t in (a, b):
        t.meta["protocol"]["elasticity"] = None
        del t.meta["reference"]["levels"][KEY]["elasticity"]
    assert levelmerge.key_levels(b.df, b.meta)[KEY].elasticity is None
    rep = merge([a, b], on_conflict="keep-last", rescale=True)
    assert set(rep.table.df["ref_elasticity"]) == {E}
    assert _lat(rep.table) == pytest.approx(_lat(a))


def _conv_table(level: float, path):
    """24 conv2d rows at ``level`` (latency = truth * level ** E), no samples: enough to fit."""
    specs = [{"kind": "conv2d", "input": [1, c, 16, 16], "out_channels": o, "kernel": 1}
             for c in (8, 16, 24, 32) for o in (8, 16, 24, 32, 40, 48)]
    truth = [0.01 + 1e-6 * 256 * s["input"][1] * s["out_channels"] for s in specs]
    t = synthetic_table(specs=specs, medians=[v * level ** E for v in truth])
    df = t.df.copy()
    df["latency_ms"] = df["median_ms"]
    df["ref_level_ms"], df["ref_elasticity"] = level, E
    t = LatencyTable(normalise(df), t.meta)
    t.meta["reference"] = {"plan": PLAN, "levels": {}}
    reference.adopt_level(t.meta, KEY, level, reference.FIRST_GROUP, E)
    write_table(path, t)
    return path


def test_fit_refuses_tables_at_two_levels_and_evaluate_names_another_level(tmp_path, capsys):
    import json

    from hwprof.cli import main
    from hwprof.latency.predictors.persist import load_predictor

    a, b = _conv_table(1.0, tmp_path / "a.parquet"), _conv_table(1.25, tmp_path / "b.parquet")
    fit = ["fit", "--cv", "3", "--min-rows", "10", "--models", "linear", "--quiet"]
    pred = tmp_path / "p.predictor"
    assert main(fit + ["--table", str(a), "--table", str(b), "--out", str(pred)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "put them at one level first" in err and not pred.exists()
    assert main(fit + ["--table", str(a), "--out", str(pred)]) == 0
    assert load_predictor(pred).meta["reference_levels"] == {
        KEY: {"level_ms": 1.0, "elasticity": E}}
    capsys.readouterr()
    assert main(["evaluate", "--predictor", str(pred), "--table", str(a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["level_note"] is None
    assert main(["evaluate", "--predictor", str(pred), "--table", str(b)]) == 0
    err = capsys.readouterr().err
    assert f"{b} is at reference level 1.25 ms (elasticity 0.9), the predictor was fitted at " \
           f"1 ms (elasticity 0.9): its latencies hold a common factor of about 1.222" in err
    assert f"table rescale {b} --reference-from {a}" in err
    # a table and a predictor answering together (predict, estimate, calibrate, search) say it too
    ops = tmp_path / "ops.json"
    ops.write_text('{"kind": "conv2d", "input": [1, 8, 16, 16], "out_channels": 64, "kernel": 1}\n')
    assert main(["predict", "--predictor", str(pred), "--table", str(b), "--ops", str(ops)]) == 0
    assert "hwprof: note: " in capsys.readouterr().err
    assert main(["predict", "--predictor", str(pred), "--table", str(a), "--ops", str(ops)]) == 0
    assert "note" not in capsys.readouterr().err
