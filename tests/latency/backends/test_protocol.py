"""The protocol settings and the statistics of raw samples (the schedule: test_interleave)."""

import pytest

from hwprof.latency.backends.agent import protocol


def test_zero_time_is_never_a_latency():
    with pytest.raises(protocol.ZeroTime):
        protocol.check_positive(0.0)
    with pytest.raises(protocol.ZeroTime):
        protocol.check_positive(float("nan"))
    assert protocol.check_positive(0.25) == 0.25


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


def test_reference_setting_names_a_known_reference():
    assert protocol.settings({"reference": "mbconv"})["reference"] == "mbconv"
    with pytest.raises(ValueError, match="reference must be one of basket, mbconv"):
        protocol.settings({"reference": "resnet"})
