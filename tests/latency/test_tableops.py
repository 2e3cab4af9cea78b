"""merge / diff / filter / validate on synthetic tables of the tiny space's ops: two "runs"
of one device that agree on some ops and disagree on others, by construction."""

import json

import numpy as np
import pandas as pd
import pytest

from hwprof.errors import UserError
from hwprof.latency.adapters import proxylessnas
from hwprof.latency.spaces import get_space
from hwprof.latency.table import KEY, LatencyTable
from hwprof.latency.tableops import MergeConflict, diff, filter_table, merge, validate
from tests.synthetic import synthetic_table


@pytest.fixture(scope="module")
def runs():
    """Two runs of the same ops on the same device; every third op agrees exactly."""
    specs = get_space("tiny").table_specs()
    a = [0.05 * (i + 1) for i in range(len(specs))]
    b = [m if i % 3 == 0 else m * (1.25 if i % 2 else 0.8) for i, m in enumerate(a)]
    return synthetic_table(specs=specs, medians=a), synthetic_table(specs=specs, medians=b)


def _by_sig(t, col="latency_ms"):
    return dict(zip(t.df["signature"], t.df[col]))


def test_merge_conflicts_need_a_policy(runs):
    a, b = runs
    assert set(a.df["signature"]) == set(b.df["signature"])
    assert (a.df["device_fingerprint"].iloc[0], a.df["env_key"].iloc[0]) == \
        (b.df["device_fingerprint"].iloc[0], b.df["env_key"].iloc[0])
    differ = sum(_by_sig(a)[s] != _by_sig(b)[s] for s in _by_sig(a))
    assert 0 < differ < len(a.df)  # some ops agree (duplicates), the others conflict
    with pytest.raises(MergeConflict, match="--on-conflict"):
        merge([a, b])
    ma, mb = _by_sig(a), _by_sig(b)
    first = merge([a, b], on_conflict="keep-first").table
    last = merge([a, b], on_conflict="keep-last").table
    lo = merge([a, b], on_conflict="min").table
    hi = merge([a, b], on_conflict="max").table
    rep = merge([a, b], on_conflict="mean")
    mean = rep.table
    assert rep.conflicts == differ and rep.rows_in == len(a.df) + len(b.df)
    for t in (first, last, lo, hi, mean):
        assert len(t.df) == len(a.df) and not t.df.duplicated(list(KEY)).any()
    for s in ma:
        assert _by_sig(first)[s] == ma[s] and _by_sig(last)[s] == mb[s]
        assert _by_sig(lo)[s] == min(ma[s], mb[s]) and _by_sig(hi)[s] == max(ma[s], mb[s])
        if ma[s] != mb[s]:
            assert _by_sig(mean)[s] == pytest.approx((ma[s] + mb[s]) / 2)
            row = mean.df[mean.df["signature"] == s].iloc[0]
            assert pd.isna(row["p10_ms"]) and pd.isna(row["cv"])
            assert pd.isna(row["passes"]) and row["pass_medians_ms"] is None
            assert row["n_samples"] == _by_sig(a, "n_samples")[s] + _by_sig(b, "n_samples")[s]
    # the min table's full row (not just the median) comes from the faster run
    s = next(s for s in ma if ma[s] != mb[s])
    src = a if ma[s] < mb[s] else b
    assert _by_sig(lo, "p90_ms")[s] == _by_sig(src, "p90_ms")[s]


def test_identical_rows_are_duplicates_not_conflicts(runs):
    a, _ = runs
    rep = merge([a, a, a])
    assert rep.conflicts == 0 and rep.duplicates == 2 * len(a.df)
    assert len(rep.table.df) == len(a.df)
    assert rep.table.meta["devices"] == a.meta["devices"]


def test_an_ok_row_beats_an_error_row(runs):
    a, b = runs
    err = b.df.copy()
    for c in ("median_ms", "latency_ms", "mean_ms", "min_ms", "max_ms", "std_ms"):
        err[c] = None
    err["status"], err["error"] = "error", "out of memory"
    bad = LatencyTable(err, b.meta)
    for t in (merge([a, bad]).table, merge([bad, a]).table):
        assert (t.df["status"] == "ok").all() and _by_sig(t) == _by_sig(a)


def test_merge_refuses_other_devices_unless_allowed(runs, tmp_path):
    a, _ = runs
    key = "expanded_conv-input:16x16x8-output:8x8x16-expand:3-kernel:3-stride:2-idskip:0"
    path = tmp_path / "p.yaml"
    path.write_text(f"{key}:\n  count: 3\n  mean: 0.5\n  var: 0.0001\n")
    phone = proxylessnas.import_file(path, device_name="pixel1").table
    with pytest.raises(UserError, match="2 devices"):
        merge([a, phone])
    both = merge([a, phone], allow_mixed=True).table
    assert both.df["device_fingerprint"].nunique() == 2
    assert len(both.df) == len(a.df) + 1
    assert set(both.meta["devices"]) == set(both.df["device_fingerprint"])
    # the same op on two devices is two rows, not a conflict
    assert both.df["signature"].value_counts().max() == 2


def test_diff_summary_and_worst_ops(runs):
    a, b = runs
    result = diff(a, b, top=3)
    res = result.summary
    assert res["common"] == len(a.df) and res["only_a"] == res["only_b"] == 0
    ratios = np.array([_by_sig(b)[s] / _by_sig(a)[s] for s in _by_sig(a)])
    assert res["median_ratio"] == pytest.approx(float(np.median(ratios)))
    assert res["geomean_ratio"] == pytest.approx(float(np.exp(np.log(ratios).mean())))
    assert res["spread"]["min"] == pytest.approx(ratios.min())
    assert len(res["worst"]) == 3
    assert len(result.pairs) == res["common"] and "_pairs" not in res
    assert result.pairs["ratio"].tolist() == pytest.approx(
        (result.pairs["latency_ms_b"] / result.pairs["latency_ms_a"]).tolist())
    dev = sorted(abs(np.log(ratios) - np.log(np.median(ratios))), reverse=True)
    assert abs(np.log(res["worst"][0]["ratio"] / res["median_ratio"])) == pytest.approx(dev[0])
    # a uniformly 3x slower device: every ratio is 3
    slow = b.df.copy()
    slow["latency_ms"] = a.df.set_index("signature").loc[slow["signature"], "latency_ms"].to_numpy() * 3
    res3 = diff(a, LatencyTable(slow, b.meta)).summary
    assert res3["median_ratio"] == pytest.approx(3)
    assert res3["spread"]["log_std"] == pytest.approx(0, abs=1e-12)
    # ops only one side holds are counted, not compared
    part = filter_table(b, kinds=["mbconv"])
    res_p = diff(a, part).summary
    assert res_p["common"] == (a.df["kind"] == "mbconv").sum()
    assert res_p["only_a"] == len(a.df) - res_p["common"]


def test_filter(runs):
    a, _ = runs
    mb = filter_table(a, kinds=["mbconv", "fc"])
    assert set(mb.df["kind"]) == {"mbconv", "fc"}
    assert len(mb.df) == a.df["kind"].isin(["mbconv", "fc"]).sum()
    fp = a.df["device_fingerprint"].iloc[0]
    assert len(filter_table(a, devices=[fp]).df) == len(a.df)
    assert len(filter_table(a, devices=["cpu"]).df) == len(a.df)  # by device label
    none = filter_table(a, devices=["pixel1"])
    assert none.df.empty and none.meta["devices"] == {}
    cv = filter_table(a, max_cv=float(a.df["cv"].median()))
    assert (cv.df["cv"] <= a.df["cv"].median()).all() and 0 < len(cv.df) <= len(a.df)
    space = get_space("tiny")
    one = space.candidate_spec(0, "mbconv_e3_k3")
    extra = LatencyTable(pd.concat([a.df, filter_table(a, kinds=["fc"]).df.assign(
        signature="0" * 16)], ignore_index=True), a.meta)
    assert set(filter_table(extra, space=space).df["signature"]) == set(a.df["signature"])
    assert one.signature in set(a.df["signature"])


def test_validate(runs):
    a, _ = runs
    res = validate(a, space=get_space("tiny"))
    assert res["errors"] == [] and res["space"]["missing"] == 0
    df = a.df.copy()
    df.loc[0, "signature"] = "f" * 16
    df.loc[1, ["median_ms", "latency_ms"]] = 0.0
    df.loc[2, "spec"] = json.dumps({"kind": "conv2d", "input": [1, 3]})
    bad = validate(LatencyTable(pd.concat([df, df.iloc[[3]]], ignore_index=True), a.meta),
                   space=get_space("tiny"))
    text = " | ".join(bad["errors"])
    assert "share a key" in text and "signature" in text
    assert "positive median_ms" in text and "positive latency_ms" in text
    assert "does not parse" in text
    assert bad["space"]["missing"] >= 2


def test_merge_counts_each_conflicting_key_once_and_reports_duplicates(runs):
    a, b = runs
    differ = sum(x != y for x, y in zip(a.df["latency_ms"], b.df["latency_ms"]))
    rep = merge([a, b, b], on_conflict="max")
    # three inputs, two distinct values per conflicting key: still one conflict per key
    assert rep.conflicts == differ
    assert rep.duplicates == 2 * (len(a.df) - differ)
    assert rep.rows_in == 3 * len(a.df) and len(rep.table.df) == len(a.df)


def test_every_policy_the_cli_offers_is_one_merge_understands():
    from hwprof.cli import build_parser
    from hwprof.latency.conflicts import POLICIES
    merge_parser = build_parser()._subparsers._group_actions[0].choices["table"]
    sub = merge_parser._subparsers._group_actions[0].choices["merge"]
    action = next(a for a in sub._actions if a.dest == "on_conflict")
    assert tuple(action.choices) == tuple(POLICIES)
    for name in POLICIES:
        assert name in action.help
