"""Planning, running and recording a build, with a fake backend (no device, no timing)."""

import pytest

from hwprof.latency.build import build_table
from hwprof.latency.buildplan import chunk, passes_needed, plan_groups, unsettled
from hwprof.latency.filelock import TableBusy, table_lock
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.latency.fakebackend import STATES, FakeBackend, latency_at


def _specs(n, c=8):
    return [parse_spec({"kind": "relu", "input": [1, c, 4 + i, 4]}) for i in range(n)]


def _build(specs, out, backend, **kw):
    return build_table(specs, [backend], out, quiet=True, log=lambda m: None, backoff=0.0, **kw)


def test_a_new_table_adopts_its_first_groups_densest_state_and_rows_are_at_that_level(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(5)
    rep = _build(specs, out, fb)
    t = read_table(out)
    level = STATES[0]  # two states visited alike: the first (fast) one's centre
    assert rep.reference_level_ms == pytest.approx(level)
    (entry,) = t.meta["reference"]["levels"].values()
    assert entry["level_ms"] == pytest.approx(level)
    df = t.df.set_index("signature")
    for s in specs:
        assert df.loc[s.signature, "latency_ms"] == pytest.approx(latency_at(s.signature, level))
        assert df.loc[s.signature, "ref_level_ms"] == pytest.approx(level)
    assert rep.machine["spread"] == pytest.approx(1.2 / 0.8)
    assert len(t.meta["timelines"]) == 1


def test_a_given_level_is_used_and_a_later_build_keeps_the_tables(tmp_path):
    out = tmp_path / "t.parquet"
    specs = _specs(6)
    _build(specs[:3], out, FakeBackend(), reference_level_ms=STATES[1])
    said = []
    build_table(specs, [FakeBackend()], out, quiet=True, log=said.append, backoff=0.0,
                reference_level_ms=5.0)  # the table's own level wins, and the build says so
    assert any(f"keeps its own reference level {STATES[1]:.4g} ms; the given 5 ms is not used"
               in m for m in said)
    df = read_table(out).df.set_index("signature")
    assert len(df) == 6
    for s in specs:
        assert df.loc[s.signature, "latency_ms"] == pytest.approx(latency_at(s.signature, STATES[1]))


def test_groups_respect_the_op_limit_and_every_op_is_measured_once(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(7)
    rep = _build(specs, out, fb, group_ops=3)
    assert [len(g) for g in fb.groups] == [3, 3, 1] and rep.groups == 3
    assert sorted(sum(fb.groups, [])) == sorted(s.signature for s in specs)
    assert rep.measured == 7 and len(read_table(out).df) == 7


def test_every_pass_runs_in_a_fresh_agent_process_and_rows_are_the_mean_of_the_passes(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(5)
    rep = _build(specs, out, fb, passes=3, group_ops=2)
    # 3 groups per pass; a new session (agent process) at each of the two pass boundaries only
    assert len(fb.groups) == 9 and fb.opened == 3 and fb.closed == 3
    df = read_table(out).df.set_index("signature")
    assert rep.measured == 15 and len(df) == 5 and (df["passes"] == 3).all()
    # the fake's sessions answer alike: the passes' mean is each op's latency at the level
    for s in specs:
        assert df.loc[s.signature, "latency_ms"] == pytest.approx(
            latency_at(s.signature, rep.reference_level_ms))


def test_an_op_that_kills_the_agent_while_warming_up_becomes_an_error_row(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(4)
    killer = specs[2].signature
    fb.kill_in_warmup[killer] = 99
    rep = _build(specs, out, fb)
    df = read_table(out).df.set_index("signature")
    assert df.loc[killer, "status"] == "error" and "lost 3 times" in df.loc[killer, "error"]
    assert pd_isnull(df.loc[killer, "latency_ms"])
    assert (df.drop(killer)["status"] == "ok").all() and len(df) == 4
    assert rep.reconnects == 3 and rep.errors == 1


def test_a_group_lost_in_its_rounds_is_retried_then_split_until_the_culprit_stands_alone(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(4)
    culprit = specs[1].signature
    fb.kill_in_rounds.add(culprit)
    rep = _build(specs, out, fb)
    df = read_table(out).df.set_index("signature")
    assert len(df) == 4
    assert df.loc[culprit, "status"] == "error"
    assert (df.drop(culprit)["status"] == "ok").all()
    assert rep.errors == 1


def test_a_dropped_link_is_reopened_and_gives_the_exact_row_set(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    fb.drops_in_rounds = 1
    specs = _specs(5)
    rep = _build(specs, out, fb)
    df = read_table(out).df
    assert sorted(df["signature"]) == sorted(s.signature for s in specs)
    assert (df["status"] == "ok").all() and rep.reconnects == 1 and fb.opened == 2


def test_a_second_writer_of_the_same_table_is_refused_and_loses_nothing(tmp_path):
    out = tmp_path / "t.parquet"
    _build(_specs(2), out, FakeBackend())
    with table_lock(out):
        with pytest.raises(TableBusy, match="another build"):
            _build(_specs(4), out, FakeBackend())
    assert len(read_table(out).df) == 2
    _build(_specs(4), out, FakeBackend())  # the lock is released: the build goes on
    assert len(read_table(out).df) == 4


def test_chunk_cuts_by_op_count_and_bytes():
    specs = _specs(5)
    assert [len(c) for c in chunk(specs, group_ops=2)] == [2, 2, 1]
    one = specs[0].features()["bytes_read"] + specs[0].features()["bytes_written"]
    assert all(len(c) == 1 for c in chunk(specs, group_ops=100, group_bytes=one))
    with pytest.raises(ValueError):
        chunk(specs, group_ops=0)


def test_plan_groups_sweeps_pass_after_pass_with_only_what_each_op_lacks():
    specs = _specs(4)
    need = {specs[0].signature: 3, specs[1].signature: 1, specs[3].signature: 2}
    groups = plan_groups(specs, need, seed=1, group_ops=10)
    per_pass = [sorted(s.signature for s in g.specs) for g in groups]
    assert [g.pass_index for g in groups] == [0, 1, 2]
    assert per_pass[0] == sorted(need)
    assert per_pass[1] == sorted([specs[0].signature, specs[3].signature])
    assert per_pass[2] == [specs[0].signature]
    prior = {(specs[0].signature, "fp", "env"): {"status": "ok", "passes": 2}}
    assert passes_needed(specs[:2], prior, [("fp", "env")], 3) == {specs[0].signature: 1,
                                                                  specs[1].signature: 3}


def pd_isnull(v):
    import pandas as pd
    return pd.isna(v)


def test_extra_passes_go_to_the_ops_whose_passes_disagree_up_to_the_cap(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(4)
    noisy = specs[1].signature
    fb.process_jitter[noisy] = [1.00, 1.06, 0.96, 1.03, 1.00, 0.99]  # +-3 % from one process to the next
    rep = _build(specs, out, fb, passes=3, extra_passes=2)
    df = read_table(out).df.set_index("signature")
    # passes 1.00, 1.06, 0.96 leave a standard error of ~2.9 % (> 1.25 %): two more passes,
    # each in a fresh process; the steady ops keep their three
    assert df.loc[noisy, "passes"] == 5 and rep.extra_ops == 2
    assert list(df.loc[noisy, "pass_medians_ms"]) == pytest.approx(
        [latency_at(noisy, STATES[0]) * f for f in (1.00, 1.06, 0.96, 1.03, 1.00)])
    assert (df.drop(index=noisy)["passes"] == 3).all()
    # every pass's paired samples are in the row, in the passes' order, each pass's own
    ys, xs = df.loc[noisy, "pass_samples_ms"], df.loc[noisy, "pass_sample_ref_ms"]
    assert len(ys) == len(xs) == 5 and all(len(y) == len(x) > 0 for y, x in zip(ys, xs))
    assert [sorted(y)[len(y) // 2] for y in ys][1] > [sorted(y)[len(y) // 2] for y in ys][2]
    assert rep.measured == 4 * 3 + 2 and fb.opened == 5
    assert fb.groups[-2:] == [[noisy], [noisy]]
    # ... each extra pass built every measured op, as a sweep does, in an order of its own
    assert [sorted(b) for b in fb.built[-2:]] == [sorted(s.signature for s in specs)] * 2
    assert fb.built[-1] != fb.built[-2]
    # at the cap: a rerun measures nothing more; a higher cap gives one more pass
    assert _build(specs, out, fb, passes=3, extra_passes=2).measured == 0
    assert _build(specs, out, fb, passes=3, extra_passes=3).measured == 1
    assert read_table(out).df.set_index("signature").loc[noisy, "passes"] == 6


def test_extra_passes_stop_once_the_passes_agree_and_default_to_none(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(3)
    noisy = specs[0].signature
    # 1.00, 1.05, 0.95: se 2.9 %; with a 4th pass of 1.00 it is still 2.0 %, with a 5th 1.6 %;
    # a looser threshold of 2.5 % is met after the 4th
    fb.process_jitter[noisy] = [1.00, 1.05, 0.95, 1.00, 1.00]
    rep = _build(specs, out, fb, passes=3, extra_passes=4, max_pass_se=0.025)
    assert rep.extra_ops == 1
    assert read_table(out).df.set_index("signature").loc[noisy, "passes"] == 4
    out2, fb2 = tmp_path / "t2.parquet", FakeBackend()
    fb2.process_jitter[noisy] = fb.process_jitter[noisy]
    rep = _build(specs, out2, fb2, passes=3)
    assert rep.extra_ops == 0 and (read_table(out2).df["passes"] == 3).all()


def test_unsettled_needs_every_key_measured_and_under_the_cap():
    s = _specs(3)
    keys = [("fp", "env")]

    def row(meds):
        return {"status": "ok", "passes": len(meds), "pass_medians_ms": meds,
                "latency_ms": meds[0]}
    rows = {(s[0].signature, "fp", "env"): row([1.0, 1.1, 0.9]),        # disagree: due
            (s[1].signature, "fp", "env"): row([1.0, 1.001, 0.999]),    # agree
            (s[2].signature, "fp", "env"): row([1.0, 1.2])}             # fewer than 3 passes
    assert unsettled(s, rows, keys, 3, 5, 0.0125) == {s[0].signature: 1}
    assert unsettled(s, rows, keys, 3, 3, 0.0125) == {}  # the cap is the passes asked for
    assert unsettled(s, rows, keys + [("fp2", "env")], 3, 5, 0.0125) == {}  # a key lacks it


def test_the_cause_of_an_agents_death_is_never_a_log_line():
    from hwprof.latency.backends.session import last_error_line
    err = ("2026-12-01 [nnabla][INFO]: Initializing CPU extension...\n"
           "MemoryError: cannot allocate 6.8 GB\n"
           "2026-12-01 [nnabla][INFO]: Saving <_io.StringIO object at 0x7f>\n")
    assert last_error_line(err) == "MemoryError: cannot allocate 6.8 GB"
    assert last_error_line("[nnabla][INFO]: only chatter\n") == ""


def test_an_interrupted_build_does_not_claim_to_reconnect(tmp_path):
    import threading

    from hwprof.latency.buildrun import reopen
    logged = []
    stop = threading.Event()
    stop.set()  # Ctrl-C: the build is stopping
    assert reopen(FakeBackend(), {}, RuntimeError("link gone"), 5, 0.0, logged.append, stop) is None
    assert logged == []


def test_extra_passes_without_context_build_the_unsettled_ops_alone(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(4)
    noisy = specs[2].signature
    fb.process_jitter[noisy] = [1.00, 1.06, 0.96, 1.03]
    rep = _build(specs, out, fb, passes=3, extra_passes=1, extra_context=False)
    assert rep.extra_ops == 1 and fb.built[-1] == fb.groups[-1] == [noisy]


def test_an_extra_pass_that_loses_the_agent_in_its_context_is_retried_without_it(tmp_path):
    out, fb = tmp_path / "t.parquet", FakeBackend()
    specs = _specs(3)
    noisy, other = specs[0].signature, specs[1].signature
    fb.process_jitter[noisy] = [1.00, 1.06, 0.96, 1.00]
    # the first three builds of the other op are the sweeps'; the 4th (an untimed context
    # op) kills the agent once
    real = fb.open

    def open_(config):
        if fb.opened == 3:
            fb.kill_in_warmup[other] = 1
        return real(config)
    fb.open = open_
    rep = _build(specs, out, fb, passes=3, extra_passes=1)
    df = read_table(out).df.set_index("signature")
    assert df.loc[noisy, "passes"] == 4 and df.loc[other, "passes"] == 3
    assert (df["status"] == "ok").all() and rep.reconnects == 1
    assert fb.built[-1] == fb.groups[-1] == [noisy]


def test_a_build_reports_its_own_groups_movement_when_the_table_keeps_fewer(tmp_path,
                                                                           monkeypatch):
    from hwprof.latency import machine
    monkeypatch.setattr(machine, "TIMELINES_KEPT", 3)
    out = tmp_path / "t.parquet"
    specs = _specs(9)
    first = _build(specs[:5], out, FakeBackend(), group_ops=1)
    assert first.machine["groups"] == 5
    # the table keeps the latest 3; a later build still sees all of its own groups
    again = _build(specs, out, FakeBackend(), group_ops=1)
    assert again.measured == 4 and again.machine is not None and again.machine["groups"] == 4
    assert len(read_table(out).meta["timelines"]) == 3


def test_rounds_movements_merge_into_one():
    from hwprof.latency.machine import merge_movements
    a = {"groups": 2, "min_ms": 0.9, "p5_ms": 1.0, "p50_ms": 1.1, "p95_ms": 1.2, "max_ms": 1.3,
         "spread": 1.2, "first": 1.0, "last": 2.0}
    b = {"groups": 3, "min_ms": 0.8, "p5_ms": 0.95, "p50_ms": 1.2, "p95_ms": 1.5, "max_ms": 1.6,
         "spread": 1.5 / 0.95, "first": 3.0, "last": 4.0}
    m = merge_movements([a, None, b])
    assert m["groups"] == 5 and m["min_ms"] == 0.8 and m["max_ms"] == 1.6
    assert m["spread"] == pytest.approx(1.5 / 0.95) and (m["first"], m["last"]) == (1.0, 4.0)
    assert merge_movements([None]) is None
