"""Planning an extra pass built like a sweep (buildplan.plan_extra)."""

from hwprof.latency.buildplan import plan_extra, plan_groups
from hwprof.latency.specs import parse_spec


def _specs(n):
    return [parse_spec({"kind": "relu", "input": [1, 8, 4 + i, 4]}) for i in range(n)]


def test_an_extra_pass_builds_the_measured_ops_in_sweep_groups_and_times_only_the_unsettled():
    specs = _specs(7)
    need = {specs[1].signature: 1, specs[5].signature: 1}
    measured = [s.signature for s in specs if s is not specs[3]]  # specs[3]: an error row
    groups = plan_extra(specs, need, measured, pass_index=4, seed=2, group_ops=3)
    # the sweep a 5th pass would run over the measured ops, cut alike; groups that time
    # nothing are dropped
    sweep = plan_groups([s for s in specs if s.signature in measured],
                        {sig: 1 for sig in measured}, seed=2, group_ops=3, first_pass=4)
    kept = [g for g in sweep if any(s.signature in need for s in g.specs)]
    assert [[s.signature for s in g.context] for g in groups] == \
        [[s.signature for s in g.specs] for g in kept]
    assert sorted(s.signature for g in groups for s in g.specs) == sorted(need)
    for g in groups:
        assert g.pass_index == 4 and g.build_list() is g.context
        assert [s for s in g.context if s.signature in need] == g.specs
    assert specs[3] not in [s for g in groups for s in g.context]


def test_a_sweep_group_builds_only_what_it_times():
    (g,) = plan_groups(_specs(2), {s.signature: 1 for s in _specs(2)})
    assert g.context is None and g.build_list() is g.specs


def test_a_groups_memory_counts_each_convolutions_unfolded_input():
    from hwprof.latency.buildplan import GROUP_BYTES, chunk
    from hwprof.latency.specs import workspace_bytes
    dw = parse_spec({"kind": "dwconv2d", "input": [1, 384, 112, 112], "kernel": 7})
    # 384 channels x 49 taps x 112 x 112 output pixels x 4 bytes: nnabla held 938 MB for it
    assert workspace_bytes(dw) == 384 * 49 * 112 * 112 * 4
    conv = parse_spec({"kind": "conv2d", "input": [2, 64, 56, 56], "out_channels": 32,
                       "kernel": [3, 1], "stride": 2, "groups": 4})
    # grouped or not, the whole input is unfolded (nnabla: 58 MB for a 3x3 conv of 512 channels
    # at 56x56 with 1 group and with 8)
    assert workspace_bytes(conv) == 2 * 64 * 3 * 28 * 28 * 4
    assert workspace_bytes(parse_spec({"kind": "relu", "input": [1, 8, 4, 4]})) == 0
    mb = parse_spec({"kind": "mbconv", "input": [1, 32, 56, 56], "out_channels": 32,
                     "expand": 6, "kernel": 7})
    assert workspace_bytes(mb) == sum(workspace_bytes(p) for p in mb.children()) > \
        192 * 49 * 56 * 56 * 4
    # their tensors alone (37 MB each) would put 28 of them in one group; their memory, one
    big = [parse_spec({"kind": "dwconv2d", "input": [1, 384, 112, 112 - i], "kernel": 7})
           for i in range(3)]
    assert sum(s.features()["bytes_read"] + s.features()["bytes_written"] for s in big) \
        < GROUP_BYTES
    assert [len(c) for c in chunk(big)] == [1, 1, 1]
