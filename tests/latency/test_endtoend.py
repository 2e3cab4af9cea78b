"""How whole networks are scheduled: the protocol a call's networks share."""

from hwprof.latency.endtoend import NETWORK_MIN_SPAN_S, NETWORK_SAMPLING_S, network_protocol


def test_a_calls_networks_share_the_sampling_time_with_a_floor_per_network():
    one, eight, forty = network_protocol(1), network_protocol(8), network_protocol(40)
    assert one["time_cap_s"] == NETWORK_SAMPLING_S
    assert eight["time_cap_s"] == NETWORK_SAMPLING_S / 8
    assert forty["time_cap_s"] == 5.0          # never under 5 s each
    assert one["min_span_s"] == eight["min_span_s"] == NETWORK_MIN_SPAN_S


def test_the_users_protocol_overrides_win():
    p = network_protocol(3, {"min_span_s": 30.0, "time_cap_s": 2.0})
    assert p["min_span_s"] == 30.0 and p["time_cap_s"] == 2.0 and p["max_samples"] == 5000
