"""Real builds on the CPU with nnabla: exact row sets, resume after kill -9."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from hwprof.latency.backends.agent import reference_ops
from hwprof.latency.backends.agent.protocol import BUILD_PASSES, DEFAULTS, OP_ELASTICITY
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.elasticity import pass_latencies, row_passes
from hwprof.latency.passes import ROW_RULE
from hwprof.latency.spaces import get_space
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import KEY, read_table
from tests.conftest import FAST_PROTOCOL


def _build(specs, out, **kw):
    return build_table(specs, [get_backend("cpu")], out, protocol=FAST_PROTOCOL, quiet=True,
                       log=lambda m: None, **kw)


def test_tiny_space_table_is_exact_and_rerun_measures_nothing(tmp_path):
    out = tmp_path / "tiny.parquet"
    specs = get_space("tiny").table_specs()
    rep = _build(specs, out)
    assert rep.measured == len(specs) and rep.errors == 0 and rep.skipped == 0
    t = read_table(out)
    assert sorted(t.df["signature"]) == sorted(s.signature for s in specs)
    assert (t.df["status"] == "ok").all() and (t.df["median_ms"] > 0).all()
    assert not t.df.duplicated(list(KEY)).any()
    assert t.df["device_fingerprint"].nunique() == 1
    fp = t.df["device_fingerprint"].iloc[0]
    assert t.meta["devices"][fp]["cores_logical"] >= 1
    assert t.meta["protocol"]["time_cap_s"] == FAST_PROTOCOL["time_cap_s"]
    # every latency is at the table's one reference level, from samples paired with the reference
    (level,) = [lv["level_ms"] for lv in t.meta["reference"]["levels"].values()]
    assert (t.df["ref_level_ms"] == level).all() and (t.df["latency_ms"] > 0).all()
    assert all(len(a) == len(b) == n for a, b, n in
               zip(t.df["samples_ms"], t.df["sample_ref_ms"], t.df["n_samples"]))
    assert t.meta["timelines"] and t.meta["timelines"][0]["points"]
    assert (t.df["latency_ci_low_ms"] <= t.df["latency_ms"]).all()
    assert (t.df["latency_ms"] <= t.df["latency_ci_high_ms"]).all()
    # features of the spec are stored next to its statistics
    conv = t.df[t.df["kind"] == "conv2d"].iloc[0]
    assert conv["macs"] == parse_spec(json.loads(conv["spec"])).features()["macs"]
    assert conv["ci_low_ms"] <= conv["median_ms"] <= conv["ci_high_ms"]

    again = _build(specs, out)
    assert again.measured == 0 and again.skipped == len(specs)
    assert len(read_table(out).df) == len(specs)

    before = read_table(out).df.set_index("signature")["measured_at"]
    redo = _build(specs[:2], out, remeasure=True)
    assert redo.measured == 2
    after = read_table(out)
    assert len(after.df) == len(specs)
    changed = after.df.set_index("signature")["measured_at"][before.index] != before
    assert changed.sum() == 2


def test_failing_op_is_an_error_row_never_a_latency(tmp_path):
    out = tmp_path / "err.parquet"
    good = parse_spec({"kind": "relu", "input": [1, 8, 8, 8]})
    bad = parse_spec({"kind": "relu", "input": [1, 8, 8, 8], "dtype": "float16"})
    rep = _build([good, bad], out)
    assert rep.errors == 1
    df = read_table(out).df.set_index("signature")
    assert df.loc[bad.signature, "status"] == "error"
    assert pd.isna(df.loc[bad.signature, "median_ms"])
    assert "float32" in df.loc[bad.signature, "error"]
    assert df.loc[good.signature, "median_ms"] > 0
    # error rows are retried on the next run; ok rows are not
    rep2 = _build([good, bad], out)
    assert rep2.measured == 1 and rep2.skipped == 1


def test_passes_measure_every_op_k_times_and_more_passes_add_only_the_rest(tmp_path):
    out = tmp_path / "passes.parquet"
    specs = get_space("tiny").table_specs()[:4]
    rep = _build(specs, out, passes=2)
    assert rep.measured == 8 and rep.passes == 2 and rep.errors == 0
    df = read_table(out).df.set_index("signature")
    assert len(df) == 4 and (df["passes"] == 2).all()
    for _, r in df.iterrows():
        meds = list(r["pass_medians_ms"])
        assert len(meds) == 2 and r["latency_ms"] == pytest.approx(min(meds))  # lower half of 2
        assert r["latency_ci_low_ms"] <= r["latency_ms"] <= r["latency_ci_high_ms"]  # its own CI

    rep = _build(specs, out, passes=3)  # one more sweep, merged with the rows on disk
    assert rep.measured == 4 and rep.skipped == 0
    df3 = read_table(out).df.set_index("signature")
    assert len(df3) == 4 and (df3["passes"] == 3).all()
    for sig, r in df3.iterrows():
        meds = list(r["pass_medians_ms"])
        assert meds[:2] == list(df.loc[sig, "pass_medians_ms"])
        low2 = sorted(meds)[:2]  # the lower half of three: its two lowest passes
        assert r["latency_ms"] == pytest.approx(float(np.exp(np.mean(np.log(low2)))))
    summary = read_table(out).summary()["passes"]
    spreads = sorted(max(m) / min(m) - 1 for m in df3["pass_medians_ms"])
    assert summary["min"] == summary["max"] == 3 and summary["rule"] == ROW_RULE
    assert summary["spread_p50"] == pytest.approx(float(np.median(spreads)))
    assert _build(specs, out, passes=3).measured == 0
    assert _build(specs, out, passes=1).skipped == 4  # fewer passes than the table has: done


def test_a_table_measured_against_the_old_reference_is_extended_against_it(tmp_path):
    # a table of agents up to 11 (the one-MBConv reference): later builds ask for that
    # reference, so its rows stay comparable, and are not refused as another reference's
    out = tmp_path / "old-ref.parquet"
    specs = get_space("tiny").table_specs()
    build_table(specs[:2], [get_backend("cpu")], out, quiet=True, log=lambda m: None,
                protocol={**FAST_PROTOCOL, "reference": "mbconv"})
    assert read_table(out).meta["reference"]["plan"] == reference_ops.PLANS["mbconv"]
    rep = _build(specs[:3], out)  # no reference named
    t = read_table(out)
    assert rep.measured == 1 and rep.errors == 0 and len(t.df) == 3
    assert t.meta["protocol"]["reference"] == "mbconv"
    assert t.meta["reference"]["plan"] == reference_ops.PLANS["mbconv"]


def test_an_op_that_fails_in_its_first_pass_is_not_measured_again(tmp_path):
    out = tmp_path / "errpasses.parquet"
    good = parse_spec({"kind": "relu", "input": [1, 8, 8, 8]})
    bad = parse_spec({"kind": "relu", "input": [1, 8, 8, 8], "dtype": "float16"})
    rep = _build([good, bad], out, passes=3)
    assert rep.errors == 1 and rep.measured == 4  # 3 passes of good, 1 of bad
    df = read_table(out).df.set_index("signature")
    assert df.loc[bad.signature, "status"] == "error" and pd.isna(df.loc[bad.signature, "passes"])
    assert df.loc[good.signature, "passes"] == 3


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.append(int(d))
            except OSError:
                continue
    return kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_mid_build_then_resume_gives_the_exact_row_set(tmp_path, hwprof_cli):
    out = tmp_path / "mini.parquet"
    cmd = hwprof_cli + ["build-table", "--device", "cpu", "--space", "mbv2-mini", "--out", str(out),
                        "--time-cap", "0.2", "--min-samples", "5", "--min-span", "0", "--group-ops", "6",
                        "--extra-passes", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    rows = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if out.exists():
            try:
                rows = len(pd.read_parquet(out))
            except Exception:
                continue  # pragma: no cover - a reader never sees a partial file
            if rows >= 5:
                break
    assert proc.poll() is None, "the build finished before it could be interrupted"
    agents = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # whatever moment it died at, the file is a complete, readable table
    partial = read_table(out)
    n_partial = len(partial.df)
    assert 5 <= n_partial < len(get_space("mbv2-mini").table_specs())
    # the orphaned agent sees its input close and exits on its own
    for pid in agents:
        for _ in range(150):
            if not _alive(pid):
                break
            time.sleep(0.2)
        assert not _alive(pid), "the agent outlived its build"

    done = subprocess.run(cmd[:-1] + ["--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    t = read_table(out)
    want = {s.signature for s in get_space("mbv2-mini").table_specs()}
    assert set(t.df["signature"]) == want
    assert len(t.df) == len(want)
    assert not t.df.duplicated(list(KEY)).any()
    # every op got all its passes (each pass in a fresh agent process), and the passes measured
    # before the kill were kept, not measured again: their samples open each row's list of
    # passes, and so do their latencies, carried with the elasticity the whole build fitted
    kept = partial.df.set_index("signature")
    now = t.df.set_index("signature")
    assert (now["passes"] == BUILD_PASSES).all()
    (level,) = t.meta["reference"]["levels"].values()
    e = level.get("elasticity", OP_ELASTICITY)
    for sig, row in kept.iterrows():
        n = row["passes"]
        assert [list(p) for p in now.loc[sig, "pass_samples_ms"]][:n] == \
            [list(p) for p in row["pass_samples_ms"]]
        again = pass_latencies(row_passes(row.to_dict()), level["level_ms"], e, DEFAULTS)
        assert list(now.loc[sig, "pass_medians_ms"])[:n] == pytest.approx(again, rel=1e-12)
    rep = json.loads(done.stdout)
    assert rep["measured"] == len(want) * BUILD_PASSES - int(kept["passes"].sum())


@pytest.mark.parametrize("devices", [["cpu", "cpu"]])
def test_shared_queue_over_two_backends_has_no_duplicates(tmp_path, devices):
    out = tmp_path / "two.parquet"
    specs = get_space("tiny").table_specs()
    rep = build_table(specs, [get_backend(d) for d in devices], out, protocol=FAST_PROTOCOL,
                      quiet=True, log=lambda m: None)
    assert rep.measured == len(specs)
    df = read_table(out).df
    assert len(df) == len(specs) and not df.duplicated(list(KEY)).any()
