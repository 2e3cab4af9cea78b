"""`hwprof table show` on the calibrations a table holds: each described, stale ones flagged."""

import json
from argparse import Namespace

from hwprof.commands import table_show
from hwprof.latency.passes import ROW_RULE
from hwprof.latency.predictors.calibration import fit_calibration, refit_with, store_in_meta
from hwprof.latency.table import write_table
from tests.synthetic import synthetic_table


def _table_with(tmp_path, *cals, raw=None):
    t = synthetic_table()
    for c in cals:
        store_in_meta(t.meta, c)
    if raw is not None:
        t.meta["calibrations"] = raw
    path = tmp_path / "t.parquet"
    write_table(path, t)
    return str(path)


def _cal(space, version):
    return fit_calibration([1.0, 2.0, 3.0], [1.1, 2.0, 2.9], space=space,
                           stem_signature=f"stem-{space}", agent_version=version)


def _show(path, capsys, as_json=False):
    assert table_show.run(Namespace(path=path, json=as_json)) == 0
    out = capsys.readouterr().out
    return json.loads(out) if as_json else out


def test_current_and_stale_calibrations_are_described(tmp_path, capsys):
    current = refit_with(_cal("mbv2-mini", "10"),
                         [{"choices": None, "sum_ms": 1.5, "measured_ms": 1.5}])
    path = _table_with(tmp_path, current, _cal("mbv2-cifar", None))
    s = _show(path, capsys, as_json=True)
    by = {c["space"]: c for c in s["calibrations"]}
    assert set(by) == {"mbv2-cifar", "mbv2-mini"}
    assert by["mbv2-mini"]["out_of_date"] is None and by["mbv2-mini"]["agent_version"] == "10"
    assert by["mbv2-mini"]["n"] == 4 and by["mbv2-mini"]["added_by_searches"] == 1
    assert "cold" in by["mbv2-cifar"]["out_of_date"]
    text = _show(path, capsys)
    lines = text.splitlines()
    mini = next(i for i, ln in enumerate(lines) if ln.startswith("calibration mbv2-mini"))
    cifar = next(i for i, ln in enumerate(lines) if ln.startswith("calibration mbv2-cifar"))
    assert "(+1 from searches)" in lines[mini] and "agent 10" in lines[mini]
    assert "OUT OF DATE" not in lines[mini + 1]
    assert "an agent before 10" in lines[cifar]
    assert lines[cifar + 1].lstrip().startswith("OUT OF DATE") and "hwprof calibrate" in lines[cifar + 1]


def test_no_calibration_no_line_and_unreadable_ones_said(tmp_path, capsys):
    path = _table_with(tmp_path)
    assert _show(path, capsys, as_json=True)["calibrations"] == []
    assert not any(ln.startswith("calibration") for ln in _show(path, capsys).splitlines())
    bad = _table_with(tmp_path, raw={"mbv2-mini": {"format_version": 99}})
    assert "format version 99" in _show(bad, capsys, as_json=True)["calibrations"]["error"]
    assert "calibration unreadable" in _show(bad, capsys)


def _multi_pass(tmp_path, rule):
    t = synthetic_table()
    t.df["passes"] = 3
    t.df["pass_medians_ms"] = [[x, 1.02 * x, 1.2 * x] for x in t.df["latency_ms"]]
    if rule is not None:
        t.meta["pass_rule"] = rule
    path = tmp_path / f"t-{rule is None}.parquet"
    write_table(path, t)
    return str(path)


def test_the_row_rule_of_a_multi_pass_table_is_shown_and_older_tables_say_it_is_not_recorded(
        tmp_path, capsys):
    new = _multi_pass(tmp_path, ROW_RULE)
    assert _show(new, capsys, as_json=True)["passes"]["rule"] == ROW_RULE
    assert f"a row's latency: the {ROW_RULE} of its passes" in _show(new, capsys)
    old = _multi_pass(tmp_path, None)
    assert _show(old, capsys, as_json=True)["passes"]["rule"] is None
    assert "a row's latency: not recorded (a table from before 2026-12-05" in _show(old, capsys)
