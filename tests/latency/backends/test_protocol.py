"""The timing loop and its statistics, driven by a fake clock."""

import random

import pytest

from hwprof.latency.backends.agent import protocol


class FakeClock:
    """Time advances only when the fake op runs (by the next scripted duration)."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = list(durations)
        self.i = 0
        self.calls = 0

    def __call__(self):
        return self.now

    def op(self):
        self.now += self.durations[self.i % len(self.durations)]
        self.i += 1
        self.calls += 1


def test_constant_op_is_measured_exactly_and_converges():
    clk = FakeClock([50e-6])  # 50 us per call
    st = protocol.measure(clk.op, {"min_samples": 10}, clock=clk)
    assert st["median_ms"] == pytest.approx(0.05)
    assert st["converged"] and not st["unstable"]
    assert st["n_samples"] == 10
    # blocks last at least min_sample_ms (1 ms) -> 20 calls per block
    assert st["block_size"] == 20
    assert st["first_call_ms"] == pytest.approx(0.05)
    assert st["sampled_s"] == pytest.approx(10 * 20 * 50e-6)


def test_noisy_op_takes_more_samples_until_ci_is_tight():
    rng = random.Random(1)
    durations = [1e-3 * (1 + abs(rng.gauss(0, 0.1))) for i in range(997)]
    clk = FakeClock(durations)
    st = protocol.measure(clk.op, {"min_samples": 10, "max_samples": 500, "time_cap_s": 100},
                          clock=clk)
    assert st["n_samples"] > 10
    assert st["converged"]
    assert (st["ci_high_ms"] - st["ci_low_ms"]) / 2 <= 0.02 * st["median_ms"]
    assert st["min_ms"] <= st["p10_ms"] <= st["median_ms"] <= st["p90_ms"] <= st["max_ms"]


def test_time_cap_stops_a_hopeless_op_and_flags_it():
    durations = [1e-3, 5e-3, 1e-3, 9e-3, 2e-3, 7e-3]  # wildly bimodal
    clk = FakeClock(durations)
    st = protocol.measure(clk.op, {"time_cap_s": 0.1, "min_samples": 5, "max_samples": 10_000},
                          clock=clk)
    assert not st["converged"] and st["unstable"]
    assert st["sampled_s"] >= 0.1
    assert st["sampled_s"] < 0.2


def test_zero_time_is_never_a_latency():
    clk = FakeClock([0.0])
    with pytest.raises(protocol.ZeroTime):
        protocol.measure(clk.op, {"warmup_s": 0, "min_samples": 3}, clock=clk)


def test_sync_wraps_every_timed_block():
    events = []
    clk = FakeClock([2e-3])

    def op():
        events.append("op")
        clk.op()

    def sync():
        events.append("sync")

    protocol.measure(op, {"min_samples": 3, "warmup_s": 0}, clock=clk, sync=sync)
    # after warm-up, every block of ops is preceded and followed by a sync
    text = "".join("s" if e == "sync" else "o" for e in events)
    blocks = text.split("s")
    assert all(len(b) <= 2 for b in blocks)  # never more than a warm-up pair unsynced
    assert text.endswith("os")


def test_median_ci_ranks():
    xs = list(range(1, 101))
    lo, hi = protocol.median_ci(xs)
    assert lo < 50.5 < hi
    assert (lo, hi) == (40, 61)  # n=100: 1-based ranks floor(40.2) and ceil(60.8)
    assert protocol.median_ci([3.0]) == (3.0, 3.0)


def test_summary_statistics():
    st = protocol.summarise([1e-3, 2e-3, 3e-3, 4e-3])
    assert st["median_ms"] == pytest.approx(2.5)
    assert st["mean_ms"] == pytest.approx(2.5)
    assert st["iqr_ms"] == pytest.approx(1.5)
    assert st["std_ms"] == pytest.approx(1.2909944, rel=1e-6)
    assert st["cv"] == pytest.approx(1.2909944 / 2.5, rel=1e-6)


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError, match="unknown protocol setting"):
        protocol.settings({"time_cap": 1})
