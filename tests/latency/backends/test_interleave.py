"""The interleaved, reference-paired schedule on a fake machine that switches speed states."""

import random
import statistics

import pytest

from hwprof.latency.backends.agent import interleave, protocol, refstats


class Machine:
    """A fake clock whose machine flips between a fast and a slow state.

    The state changes every ``period`` seconds of fake time; a call of an op
    with base time ``base`` and elasticity ``e`` costs ``base * state ** e``
    (times a little noise), so ops follow the state unequally, as on the VM.
    """

    def __init__(self, period=0.4, slow=1.5, noise=0.0, seed=0, start_slow=False, slow_share=0.5):
        self.now, self.period, self.slow, self.noise = 0.0, period, slow, noise
        self.rng = random.Random(seed)
        self.start_slow, self.slow_share = start_slow, slow_share

    def __call__(self):
        return self.now

    def state(self):
        phase = (self.now / (2 * self.period)) % 1.0
        is_slow = (phase >= 1.0 - self.slow_share) != self.start_slow
        return self.slow if is_slow else 1.0

    def op(self, base, e=1.0, fail_after=None):
        calls = [0]

        def run():
            calls[0] += 1
            if fail_after is not None and calls[0] > fail_after:
                raise RuntimeError("op broke")
            jitter = 1.0 + (self.rng.gauss(0, self.noise) if self.noise else 0.0)
            self.now += base * self.state() ** e * jitter
        return run


CFG = protocol.settings({"min_samples": 12, "min_span_s": 2.0, "time_cap_s": 30.0,
                         "max_samples": 2000})


def _group(m, ops, level_ms, cfg=CFG, sync=lambda: None):
    ref = interleave.Timer(m.op(0.3e-3, 1.0), m, sync)
    ref.warm_up(cfg)
    records = []
    for name, fn in ops:
        rec = interleave.OpRecord(name, interleave.Timer(fn, m, sync))
        rec.timer.warm_up(cfg)
        records.append(rec)
    timeline = interleave.run_group(records, ref, cfg, m, level_ms=level_ms)
    return records, timeline


def _at_level(rec, level_ms):
    return refstats.estimate(rec.samples_ms, rec.refs_ms, level_ms)["latency_ms"]


@pytest.mark.parametrize("period,start_slow", [(0.05, False), (0.4, False), (0.4, True),
                                               (1.3, True)])
def test_latency_at_the_level_is_the_same_whatever_states_the_machine_passes(period, start_slow):
    level = 0.3 * 1.5  # the reference's slow state (0.45 ms; fast: 0.3 ms)
    m = Machine(period=period, start_slow=start_slow)
    ops = [("conv", m.op(1e-3, 1.0)), ("bn", m.op(0.2e-3, 0.0)), ("tiny", m.op(0.02e-3, 1.6))]
    records, _ = _group(m, ops, level)
    want = {"conv": 1.0 * 1.5, "bn": 0.2, "tiny": 0.02 * 1.5 ** 1.6}
    for rec in records:
        assert _at_level(rec, level) == pytest.approx(want[rec.id], rel=1e-6)
        assert refstats.elasticity(rec.samples_ms, rec.refs_ms) == pytest.approx(
            {"conv": 1.0, "bn": 0.0, "tiny": 1.6}[rec.id], abs=1e-6)


def test_raw_medians_follow_the_state_mix_and_the_latency_does_not():
    level = 0.3  # the fast state
    got = []
    for slow_share in (0.15, 0.85):  # mostly fast, then mostly slow
        m = Machine(period=0.2, slow_share=slow_share)
        records, _ = _group(m, [("conv", m.op(1e-3, 1.0)), ("x", m.op(0.5e-3, 0.5))], level,
                            protocol.settings({"min_samples": 12, "min_span_s": 1.0}))
        got.append({r.id: (sorted(r.samples_ms)[len(r.samples_ms) // 2], _at_level(r, level))
                    for r in records})
    raw_a, raw_b = got[0]["conv"][0], got[1]["conv"][0]
    assert abs(raw_b / raw_a - 1) > 0.2  # one window caught fast, the other slow
    for k in ("conv", "x"):
        assert got[0][k][1] == pytest.approx(got[1][k][1], rel=1e-6)


def test_ops_leave_the_rounds_once_their_ci_is_tight_and_their_samples_span_enough():
    m = Machine(period=0.3, noise=0.03, seed=3)
    ops = [("quiet", m.op(1e-3, 1.0)), ("small", m.op(0.1e-3, 0.8))]
    records, timeline = _group(m, ops, level_ms=0.45)
    for rec in records:
        assert rec.stop_reason == "converged"
        n = len(rec.samples_ms)
        assert n >= CFG["min_samples"]
        assert rec.at_s[-1] - rec.at_s[0] >= CFG["min_span_s"]
        est = refstats.estimate(rec.samples_ms, rec.refs_ms, 0.45)
        assert est["converged"] and est["bracketed"] and est["ref_near"] >= 8
        assert (est["latency_ci_high_ms"] - est["latency_ci_low_ms"]) / 2 <= 0.015 * est["latency_ms"]
        assert est["latency_ms"] == pytest.approx({"quiet": 1.5, "small": 0.1 * 1.5 ** 0.8}[rec.id],
                                                  rel=0.02)
    # every op sample sits between two reference samples: one more reference sample than ops
    assert len(timeline) == 1 + sum(len(r.samples_ms) for r in records)


def test_time_cap_stops_a_hopeless_op_and_it_is_not_converged():
    m = Machine(period=0.3, noise=0.6, seed=1)
    cfg = protocol.settings({"min_samples": 5, "min_span_s": 0.0, "time_cap_s": 0.05,
                             "max_samples": 100000, "target_ci": 0.001})
    records, _ = _group(m, [("wild", m.op(1e-3, 1.0))], 0.375, cfg)
    rec = records[0]
    assert rec.stop_reason == "time_cap"
    assert 0.05 <= rec.sampled_s < 0.06
    assert not refstats.estimate(rec.samples_ms, rec.refs_ms, 0.375, 0.001)["converged"]


def test_an_op_that_breaks_mid_rounds_is_an_error_and_the_others_finish():
    m = Machine()
    records, _ = _group(m, [("ok", m.op(1e-3)), ("bad", m.op(1e-3, fail_after=30))], 0.45)
    by = {r.id: r for r in records}
    assert "op broke" in by["bad"].error
    assert by["ok"].error is None and by["ok"].stop_reason == "converged"


def test_sync_wraps_every_timed_block():
    events = []
    m = Machine()

    def op():
        events.append("o")
        m.op(2e-3)()
    cfg = protocol.settings({"min_samples": 3, "min_span_s": 0.0, "warmup_s": 0.0})
    _group(m, [("a", op)], 0.375, cfg, sync=lambda: events.append("s"))
    text = "".join(events)
    rounds = text[text.index("s"):]
    # after warm-up, each block of op calls is preceded and followed by a sync
    assert all(len(b) <= 2 for b in rounds.split("s"))
    assert rounds.count("o") > 3 and text.endswith("s")


def test_samples_in_one_state_do_not_bracket_a_level_outside_it():
    m = Machine(period=1e9)  # never leaves the fast state
    records, _ = _group(m, [("a", m.op(1e-3))], 0.5,
                        protocol.settings({"min_samples": 12, "min_span_s": 0.0,
                                           "time_cap_s": 0.2}))
    est = refstats.estimate(records[0].samples_ms, records[0].refs_ms, 0.5)
    assert not est["bracketed"] and not est["converged"]
    assert records[0].stop_reason == "time_cap"


def test_an_op_that_cannot_bracket_the_level_stops_at_max_span_not_at_its_caps():
    # the machine's fast state drifted above the table's level: the samples never reach it
    got = {}
    for max_span in (None, 1.0):
        m = Machine(period=0.2)
        cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.5, "time_cap_s": 3.0,
                                 "max_samples": 100000, "max_span_s": max_span})
        records, timeline = _group(m, [("net", m.op(1e-3))], 0.2, cfg)
        rec = records[0]
        got[max_span] = (rec.stop_reason, rec.at_s[-1] - rec.at_s[0])
        assert not refstats.estimate(rec.samples_ms, rec.refs_ms, 0.2)["bracketed"]
    assert got[None][0] == "time_cap" and got[None][1] > 3.0
    assert got[1.0][0] == "max_span" and 1.0 <= got[1.0][1] < 1.1


def test_a_bracketed_op_still_converges_before_max_span():
    m = Machine(period=0.05)
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.5, "time_cap_s": 30.0,
                             "max_samples": 100000, "max_span_s": 5.0})
    records, _ = _group(m, [("net", m.op(1e-3))], 0.45, cfg)
    assert records[0].stop_reason == "converged"


def test_block_size_makes_a_sample_last_at_least_min_sample_ms():
    assert interleave.block_size(50e-6, 1.0) == 20
    assert interleave.block_size(2e-3, 0.5) == 1
    assert interleave.block_size(0.0, 0.5) == 1000


def test_the_latency_comes_from_the_samples_near_the_level():
    # an op whose far state does not follow one elasticity: near the level (1.0) it costs 2 ms
    # (and 2 * 1.05 at 1.05), in a far state (2.0) 3 ms instead of the 4 ms a line would give
    refs = [1.0, 1.05, 0.97] * 10 + [2.0] * 40
    ys = [2.0, 2.1, 1.94] * 10 + [3.0] * 40
    near = refstats.estimate(ys, refs, 1.0)
    assert near["ref_near"] == 30 and near["latency_ms"] == pytest.approx(2.0, rel=0.01)
    # without enough samples near the level, every sample is carried (and it is no bracket)
    far = refstats.estimate(ys[:5] + ys[30:], refs[:5] + refs[30:], 1.0)
    assert far["ref_near"] == 5 and not far["bracketed"]


def test_a_new_tables_level_is_the_centre_of_the_fastest_common_state():
    # fast (1.0 ms) 30 % of the time, slow (1.5) the rest: the level is the fast state's centre,
    # not the most visited state nor the overall median between the two
    fast, slow = [1.0, 1.01, 0.99, 1.03, 0.98, 1.02] * 10, [1.5, 1.52, 1.48, 1.51] * 35
    assert refstats.level_of(fast + slow) == pytest.approx(1.0, rel=0.01)
    assert refstats.level_of(slow + fast) == pytest.approx(1.0, rel=0.01)
    # a few fast outliers (under a quarter of the samples) do not make a state: the slow one is it
    assert refstats.level_of([0.7, 0.72] * 5 + slow) == pytest.approx(1.5, rel=0.01)
    # a jittery fast state: its centre, not its lowest samples
    jitter = [1.0 + 0.01 * k for k in range(-6, 7)] * 6
    assert refstats.level_of(jitter + slow) == pytest.approx(1.0, rel=0.015)
    assert refstats.level_of([2.0]) == 2.0
    with pytest.raises(ValueError):
        refstats.level_of([])


def test_a_sample_cap_does_not_cut_an_ops_span_short():
    """Fast ops in a small group would reach max_samples within the first seconds; paced,
    their samples still spread over min_span_s (and never exceed the cap)."""
    m = Machine(period=0.3, noise=0.03, seed=5)
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 3.0, "time_cap_s": 30.0,
                             "max_samples": 60, "target_ci": 1e-6})   # never converges
    ops = [(f"op{i}", m.op(0.05e-3 * (i + 1))) for i in range(3)]
    records, timeline = _group(m, ops, level_ms=0.45, cfg=cfg)
    for rec in records:
        assert rec.stop_reason == "max_samples" and len(rec.samples_ms) == cfg["max_samples"]
        assert rec.at_s[-1] - rec.at_s[0] >= 0.95 * cfg["min_span_s"]
        gaps = [b - a for a, b in zip(rec.at_s, rec.at_s[1:])]
        assert max(gaps) < 0.5 * cfg["min_span_s"]          # spread out, not one burst
    # rounds where every op sat out time the reference alone: the timeline has no gap
    times = [t for t, _ in timeline]
    assert max(b - a for a, b in zip(times, times[1:])) < 0.01


def test_an_ops_instances_take_the_samples_in_turn_and_its_latency_is_between_them():
    """Two instances of one op (buffers of their own), one 6 % slower: the samples alternate,
    every instance is warmed up, and the latency lands between the two, not on either."""
    m = Machine(period=0.4, noise=0.0)
    fast, slow = m.op(1.00e-3), m.op(1.06e-3)
    calls = {"fast": 0, "slow": 0}

    def counted(name, fn):
        def run():
            calls[name] += 1
            fn()
        return run
    cfg = protocol.settings({"min_samples": 40, "min_span_s": 2.0, "time_cap_s": 30.0,
                             "max_samples": 40, "min_warmup_calls": 3, "warmup_s": 0.0})
    ref = interleave.Timer(m.op(0.3e-3), m, lambda: None)
    ref.warm_up(cfg)
    timer = interleave.Timer(counted("fast", fast), m, lambda: None, [counted("slow", slow)])
    timer.warm_up(cfg)
    assert calls["fast"] >= 3 and calls["slow"] >= 3  # each instance warmed up
    rec = interleave.OpRecord("op", timer)
    interleave.run_group([rec], ref, cfg, m, level_ms=0.3)
    ratios = [y / r for y, r in zip(rec.samples_ms, rec.refs_ms)]
    assert all(abs(a - b) > 0.03 * a for a, b in zip(ratios, ratios[1:]))  # alternating
    latency = _at_level(rec, 0.3)
    assert 1.01 < latency < 1.05


def test_the_instances_setting_is_a_protocol_setting():
    assert protocol.settings()["instances"] == 2
    assert protocol.settings({"instances": 1})["instances"] == 1
    with pytest.raises(ValueError, match="instances"):
        protocol.settings({"instances": 0})


def test_a_reference_gap_times_the_reference_less_often_and_pairs_every_op_sample():
    level = 0.45
    got = {}
    for gap in (0.0, 3.0):
        m = Machine(period=0.4)
        cfg = protocol.settings({**CFG, "ref_gap_ms": gap})
        ops = [("conv", m.op(1e-3, 1.0)), ("bn", m.op(0.2e-3, 0.0))] + [
            (f"conv{i}", m.op(1e-3, 1.0)) for i in range(5)]
        records, timeline = _group(m, ops, level, cfg)
        n_op = sum(len(r.samples_ms) for r in records)
        for rec in records:  # every op sample is paired, in the order it was taken
            assert len(rec.refs_ms) == len(rec.samples_ms) == len(rec.at_s)
            assert rec.at_s == sorted(rec.at_s)
        got[gap] = (len(timeline) - 1) / n_op, {r.id: _at_level(r, level) for r in records}
    assert got[0.0][0] == pytest.approx(1.0)      # a reference sample after every op sample
    assert got[3.0][0] < 0.5                      # one after ~3 ms of op samples (2-3 of them)
    for gap in got:  # the states last 0.4 s, so a few ms between reference samples lose nothing
        assert got[gap][1]["conv"] == pytest.approx(1.5, rel=0.02)
        assert got[gap][1]["bn"] == pytest.approx(0.2, rel=0.02)


def test_a_fixed_elasticity_carries_every_op_as_the_reference_moves():
    refs = [1.4, 1.45, 1.5] * 6
    bn = [0.2] * len(refs)  # an op that does not follow the reference (fitted elasticity 0)
    fitted = refstats.estimate(bn, refs, 1.5)
    assert fitted["ref_elasticity"] == 0.0 and fitted["latency_ms"] == pytest.approx(0.2)
    fixed = refstats.estimate(bn, refs, 1.5, fixed_elasticity=1.0)
    assert fixed["ref_elasticity"] == 1.0
    assert fixed["latency_ms"] == pytest.approx(0.2 * 1.5 / 1.45)  # carried 1:1 (the median)
    conv = [x * 2 for x in refs]
    assert refstats.estimate(conv, refs, 1.5, fixed_elasticity=1.0)["latency_ms"] == (
        pytest.approx(3.0))


def test_the_default_carries_op_samples_half_way_along_the_reference():
    e = protocol.DEFAULTS["elasticity"]
    assert e == protocol.OP_ELASTICITY == 0.5
    refs = [1.55, 1.6, 1.65] * 6  # the reference a median 1.6 / 1.5 above the level, inside +-10 %
    half = [0.8 * (x / 1.5) ** 0.5 for x in refs]  # an op that follows it half-way: exact
    assert refstats.estimate(half, refs, 1.5, fixed_elasticity=e)["latency_ms"] == (
        pytest.approx(0.8))
    # an op that does not follow it at all, and one that follows one for one, are carried
    # wrong by the same (1.6/1.5)**0.5 either way: the window bounds it to (1.1)**0.5
    flat = refstats.estimate([0.8] * len(refs), refs, 1.5, fixed_elasticity=e)["latency_ms"]
    full = refstats.estimate([0.8 * x / 1.5 for x in refs], refs, 1.5,
                             fixed_elasticity=e)["latency_ms"]
    assert flat == pytest.approx(0.8 * (1.5 / 1.6) ** 0.5)
    assert full == pytest.approx(0.8 * (1.6 / 1.5) ** 0.5)
    assert protocol.QUICK["elasticity"] == 1.0  # --quick keeps ratios (a quick build may sit far)


@pytest.mark.parametrize("bad", [{"elasticity": 5.0}, {"elasticity": "one"}, {"ref_gap_ms": -1},
                                 {"max_span_s": 0}])
def test_bad_quick_settings_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        protocol.settings(bad)


def test_the_quick_protocol_is_valid_settings():
    s = protocol.settings(protocol.QUICK)
    assert s["elasticity"] == 1.0 and s["ref_gap_ms"] > 0 and s["max_samples"] <= 16


def test_far_from_the_level_samples_are_carried_as_a_ratio_not_along_a_fitted_slope():
    # a network whose time is twice the reference's whatever the regime, but within a session
    # its samples scatter independently of the reference's small moves (fitted slope ~0);
    # two sessions in two regimes, both 30-60 % above the table's level (1.0)
    rng = random.Random(5)
    sessions = []
    for centre in (1.3, 1.6):
        refs = [centre * (1 + rng.uniform(-0.03, 0.03)) for _ in range(60)]
        ys = [2.0 * centre * (1 + rng.uniform(-0.03, 0.03)) for _ in range(60)]
        sessions.append((ys, refs))
    est = [refstats.estimate(ys, refs, 1.0) for ys, refs in sessions]
    for e in est:
        assert e["ref_near"] == 0 and not e["bracketed"]
        assert e["ref_elasticity"] == refstats.FAR_ELASTICITY == 1.0
        assert e["latency_ms"] == pytest.approx(2.0, rel=0.03)
    fitted = [refstats.elasticity(ys, refs) for ys, refs in sessions]
    assert all(abs(f) < 0.6 for f in fitted)   # what the old fallback carried them with
    old = [refstats.estimate(ys, refs, 1.0, fixed_elasticity=f)["latency_ms"]
           for (ys, refs), f in zip(sessions, fitted)]
    assert max(old) / min(old) > 1.1 > max(e["latency_ms"] for e in est) / min(
        e["latency_ms"] for e in est)
    # near the level the fitted elasticity is kept: an op that does not follow the reference
    refs = [1.0, 1.05, 0.97, 1.3] * 10
    bn = [0.2] * len(refs)
    assert refstats.estimate(bn, refs, 1.0)["ref_elasticity"] == 0.0


class Cache:
    """A fake machine whose calls run ``cold`` times slower when another op ran last."""

    def __init__(self, cold=1.2):
        self.now, self.cold, self.last = 0.0, cold, None

    def __call__(self):
        return self.now

    def op(self, name, base):
        def run():
            self.now += base * (1.0 if self.last == name else self.cold)
            self.last = name
        return run


def _cache_group(n_others, prime_ms):
    m = Cache(cold=1.2)
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.0, "time_cap_s": 0.2,
                             "max_samples": 40, "instances": 1, "prime_ms": prime_ms})
    ref = interleave.Timer(m.op("ref", 0.3e-3), m, lambda: None)
    ref.warm_up(cfg)
    records = []
    for i in range(1 + n_others):
        name = f"net{i}"
        rec = interleave.OpRecord(name, interleave.Timer(m.op(name, 1e-3), m, lambda: None,
                                                         prime_ms=cfg["prime_ms"]))
        rec.timer.warm_up(cfg)
        records.append(rec)
    interleave.run_group(records, ref, cfg, m, level_ms=0.3)
    return statistics.median(records[0].samples_ms)


def test_a_primed_sample_is_the_warm_call_whatever_else_the_group_holds():
    # unprimed, every sample of a 1-ms network follows another op and runs cold
    assert _cache_group(0, prime_ms=0.0) == pytest.approx(1.2)
    assert _cache_group(5, prime_ms=0.0) == pytest.approx(1.2)
    # primed, it is the warm call, alone or among others
    assert _cache_group(0, prime_ms=2.0) == pytest.approx(1.0)
    assert _cache_group(5, prime_ms=2.0) == pytest.approx(1.0)


def test_priming_calls_fit_in_prime_ms_and_slow_ops_are_not_primed():
    m = Cache()
    cfg = protocol.settings({"min_sample_ms": 0.5})
    for base, expect in ((1e-3, 2), (0.3e-3, 6), (0.7e-3, 2), (30e-3, 0)):
        t = interleave.Timer(m.op(f"op{base}", base), m, lambda: None, prime_ms=2.0)
        t.warm_up(cfg)
        assert t.prime == expect
    unprimed = interleave.Timer(m.op("x", 1e-3), m, lambda: None)
    unprimed.warm_up(cfg)
    assert unprimed.prime == 0


def test_prime_ms_is_a_protocol_setting_and_networks_are_primed():
    from hwprof.latency.endtoend import network_protocol
    assert protocol.settings()["prime_ms"] == 0          # table ops: as before
    assert network_protocol(3)["prime_ms"] == protocol.NETWORK_PRIME_MS > 0
    with pytest.raises(ValueError, match="prime_ms"):
        protocol.settings({"prime_ms": -1})


def _carried(ref_prime_calls):
    """A warm-timed 1-ms network carried to the reference's warm level (0.3 ms) by a reference
    that runs 1.2x slower right after another op (the network evicted its data)."""
    m = Cache(cold=1.2)
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.0, "time_cap_s": 0.2,
                             "max_samples": 40, "instances": 1, "prime_ms": 2.0,
                             "min_sample_ms": 0.1, "ref_prime_calls": ref_prime_calls})
    ref = interleave.Timer(m.op("ref", 0.3e-3), m, lambda: None,
                           prime_calls=cfg["ref_prime_calls"])
    ref.warm_up(cfg)
    rec = interleave.OpRecord("net", interleave.Timer(m.op("net", 1e-3), m, lambda: None,
                                                      prime_ms=cfg["prime_ms"]))
    rec.timer.warm_up(cfg)
    timeline = interleave.run_group([rec], ref, cfg, m, level_ms=0.3)
    ratio = statistics.median(y / r for y, r in zip(rec.samples_ms, rec.refs_ms))
    return 0.3 * ratio, statistics.median(v for _, v in timeline)


def test_a_primed_reference_carries_a_network_at_its_warm_state():
    # unprimed, the reference after the network reads 1.2x slow, and the network reads low
    lat, ref_ms = _carried(0)
    assert ref_ms == pytest.approx(0.36) and lat == pytest.approx(1.0 / 1.2)
    # one untimed call is enough on this machine; the network is carried at its own time
    for calls in (1, 2):
        lat, ref_ms = _carried(calls)
        assert ref_ms == pytest.approx(0.3) and lat == pytest.approx(1.0)


def test_ref_prime_calls_is_a_protocol_setting_and_network_sessions_prime_the_reference():
    from hwprof.latency.endtoend import network_protocol
    assert protocol.settings()["ref_prime_calls"] == 0   # table builds: as before
    assert network_protocol(3)["ref_prime_calls"] == protocol.NETWORK_REF_PRIME_CALLS > 0
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match="ref_prime_calls"):
            protocol.settings({"ref_prime_calls": bad})
    m = Cache()
    t = interleave.Timer(m.op("x", 30e-3), m, lambda: None, prime_ms=2.0, prime_calls=2)
    t.warm_up(protocol.settings())
    assert t.prime == 2     # a fixed count, however slow the op


def _mostly_slow_machine(seed=3, n=600, slow=1.12, op=0.5):
    """Paired samples of an op of latency ``op`` at level 1.0 on a machine that sits at
    ``slow`` 70 % of the time, in runs of 20 samples, with 3 % noise on each reference."""
    rng = random.Random(seed)
    ys, xs = [], []
    for _run in range(n // 20):
        state = slow if rng.random() < 0.7 else 1.0
        for _ in range(20):
            xs.append(state * (1 + rng.gauss(0, 0.03)))
            ys.append(op * state * (1 + rng.gauss(0, 0.005)))
    return ys, xs


def test_neighbour_refs_leave_out_each_samples_own_reference():
    assert refstats.neighbour_refs([1.0, 5.0, 2.0, 3.0], k=1) == [5.0, 1.5, 4.0, 2.0]
    assert refstats.neighbour_refs([7.0], k=2) == [7.0]


def test_choosing_near_samples_by_their_neighbours_removes_the_bias_of_own_reference_noise():
    ys, xs = _mostly_slow_machine()
    own = refstats.estimate(ys, xs, 1.0, fixed_elasticity=1.0)["latency_ms"]
    by_neighbours = refstats.estimate(ys, xs, 1.0, fixed_elasticity=1.0,
                                      select_refs_ms=refstats.neighbour_refs(xs, 2))["latency_ms"]
    # the slow state's samples that pass by their own reference read too fast by chance,
    # so their ratios lean high; judged by their neighbours they stay out
    assert own > 0.5 * 1.015
    assert abs(by_neighbours / 0.5 - 1) < 0.01


class Evicting:
    """A fake machine where an op runs ``cold`` times slower when another op (not the
    reference) ran since its last call: its data was evicted."""

    def __init__(self, cold=1.2):
        self.now, self.cold, self.last = 0.0, cold, None

    def __call__(self):
        return self.now

    def op(self, name, base, ref=False):
        def run():
            slow = not ref and self.last not in (None, name)
            self.now += base * (self.cold if slow else 1.0)
            if not ref:
                self.last = name
        return run


def _cached_group(c, timed, spacers, cfg):
    ref = interleave.Timer(c.op("ref", 0.3e-3, ref=True), c, lambda: None)
    ref.warm_up(cfg)

    def recs(names):
        out = []
        for name in names:
            rec = interleave.OpRecord(name, interleave.Timer(c.op(name, 1e-3), c, lambda: None))
            rec.timer.warm_up(cfg)
            out.append(rec)
        return out
    records, extra = recs(timed), recs(spacers)
    timeline = interleave.run_group(records, ref, cfg, c, level_ms=0.3, spacers=extra)
    return records, extra, timeline


def test_spacers_are_sampled_in_the_rounds_and_the_rounds_end_with_the_timed_ops():
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.5, "max_samples": 200})
    records, extra, timeline = _cached_group(Evicting(), ["x"], ["a", "b", "c"], cfg)
    assert records[0].stop_reason == "converged"
    assert all(len(s.samples_ms) > 0 for s in extra)
    # every sample, the spacers' too, sits beside the reference; the spacers stop with the
    # round in which the timed op was done (a round here lasts ~5 ms of fake time)
    assert len(timeline) == 1 + sum(len(r.samples_ms) for r in records + extra)
    assert max(r.at_s[-1] for r in extra) <= records[0].at_s[-1] + 0.01
    assert all(len(s.samples_ms) <= len(records[0].samples_ms) for s in extra)


def test_an_extra_pass_with_spacers_reads_an_op_as_its_sweep_did():
    cfg = protocol.settings({"min_samples": 12, "min_span_s": 0.5, "max_samples": 200})
    group = ["x", "a", "b", "c"]
    sweep, _, _ = _cached_group(Evicting(), group, [], cfg)
    alone, _, _ = _cached_group(Evicting(), ["x"], [], cfg)
    spaced, _, _ = _cached_group(Evicting(), ["x"], group[1:], cfg)
    at = {name: _at_level(recs[0], 0.3) for name, recs in
          (("sweep", sweep), ("alone", alone), ("spaced", spaced))}
    assert at["sweep"] == pytest.approx(1.2, rel=0.02)   # evicted by its neighbours
    assert at["alone"] == pytest.approx(1.0, rel=0.02)   # beside the reference only: warm
    assert at["spaced"] == pytest.approx(at["sweep"], rel=0.02)


def test_sample_context_is_a_protocol_setting_on_by_default():
    assert protocol.settings()["sample_context"] is True
    assert protocol.settings({"sample_context": False})["sample_context"] is False
    with pytest.raises(ValueError, match="sample_context"):
        protocol.settings({"sample_context": 1})
