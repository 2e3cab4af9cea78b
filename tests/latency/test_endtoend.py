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


def test_networks_stop_at_twice_their_span_bracketed_or_not():
    assert network_protocol(4)["max_span_s"] == 2 * NETWORK_MIN_SPAN_S
    assert network_protocol(4, {"min_span_s": 30.0})["max_span_s"] == 60.0
    assert network_protocol(4, {"max_span_s": 45.0})["max_span_s"] == 45.0
    assert "max_span_s" not in network_protocol(4, {"min_span_s": 0.0})   # a valid protocol


def _meta_with_level(env_key, omp):
    return {"reference": {"levels": {f"fakefp000001/{env_key}": {"level_ms": 1.0}}},
            "environments": {env_key: {"runtime": "nnabla", "runtime_version": "0",
                                       "omp_num_threads": omp}}}


def test_a_table_of_this_device_in_another_environment_is_named_in_one_warning(caplog):
    """The table's level is per device and environment: measured with OMP_NUM_THREADS=4,
    it does not apply to a session with another setting. The networks are then at the session's own
    level, and one warning says which setting differs."""
    import logging

    from hwprof.latency import reference
    from hwprof.latency.endtoend import measure_specs
    from hwprof.latency.specs import parse_spec
    from tests.latency.fakebackend import FakeBackend

    backend = FakeBackend()
    hello = backend.open({}).hello
    here = reference.device_key(hello).split("/", 1)[1]
    net = parse_spec({"kind": "relu", "input": [1, 8, 4, 4]})
    with caplog.at_level(logging.WARNING, logger="hwprof"):
        res, _ = measure_specs([net], backend, table_meta=_meta_with_level("0123456789ab", "4"))
    assert res[0]["level_source"] == "session"
    msgs = [r.getMessage() for r in caplog.records if r.name == "hwprof"]
    assert len(msgs) == 1 and "omp_num_threads: table '4', here None" in msgs[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hwprof"):  # the same environment: no warning
        res, _ = measure_specs([net], backend, table_meta=_meta_with_level(here, None))
    assert res[0]["level_source"] == "table" and not caplog.records


def test_a_table_level_far_outside_the_sessions_states_is_named_in_one_warning(caplog):
    """A table measured on another day's machine state: its level (2.0 ms) lies far above
    anything the reference ran at in the session (0.8-1.2 ms). The networks are still at the
    table's level, and one warning says how far they were carried; a level the session visits
    (1.0 ms) warns of nothing."""
    import logging

    from hwprof.latency import reference
    from hwprof.latency.endtoend import measure_specs
    from hwprof.latency.specs import parse_spec
    from tests.latency.fakebackend import FakeBackend

    backend = FakeBackend()
    here = reference.device_key(backend.open({}).hello)
    net = parse_spec({"kind": "relu", "input": [1, 8, 4, 4]})
    for level, warned in ((2.0, True), (1.0, False), (1.25, False), (1.4, True), (0.5, True)):
        meta = {"reference": {"levels": {here: {"level_ms": level}}}}
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hwprof"):
            res, _ = measure_specs([net], backend, table_meta=meta)
        assert res[0]["level_source"] == "table"
        msgs = [r.getMessage() for r in caplog.records if r.name == "hwprof"]
        assert len(msgs) == int(warned), (level, msgs)
        if warned:
            assert f"({level:.3f} ms)" in msgs[0] and "0.800-1.200 ms" in msgs[0]


def test_networks_measured_against_a_table_use_the_tables_reference_op():
    """A table of the one-MBConv reference (agents up to 11) has its networks measured against
    that op, not the basket: else they would be carried to its level by another op."""
    from hwprof.latency.backends.agent.reference_ops import PLANS
    from hwprof.latency.endtoend import measure_specs
    from hwprof.latency.specs import parse_spec
    from tests.latency.fakebackend import FakeBackend

    backend = FakeBackend()
    net = parse_spec({"kind": "relu", "input": [1, 8, 4, 4]})
    for plan, name in ((PLANS["mbconv"], "mbconv"), (PLANS["basket"], "basket")):
        measure_specs([net], backend, table_meta={"reference": {"plan": plan, "levels": {}}})
        assert backend.configs[-1]["protocol"]["reference"] == name
    measure_specs([net], backend)  # no table: the agent's default
    assert "reference" not in backend.configs[-1]["protocol"]


def test_networks_are_carried_to_the_level_as_their_ratio_to_the_reference():
    assert network_protocol(3)["elasticity"] == 1.0
    assert network_protocol(3, {"elasticity": None})["elasticity"] is None   # overrides win
