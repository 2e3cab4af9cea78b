"""The reference ops: the basket runs its members in turn; the old MBConv stays as it was."""

import json

from hwprof.latency.backends.agent import protocol, reference_ops

# The reference of agents 2-11 exactly as their tables stored it: a table measured against it
# is recognised by this plan (reference.protocol_for), so it must never change.
AGENT_11_PLAN = json.loads(
    '{"input": [1, 24, 16, 16], "kind": "chain", "ops": [{"bias": false, "dilation": 1, '
    '"dtype": "float32", "groups": 1, "input": [1, 24, 16, 16], "kernel": 1, "kind": "conv2d", '
    '"layout": "NCHW", "out_channels": 72, "padding": 0, "stride": 1}, {"dtype": "float32", '
    '"input": [1, 72, 16, 16], "kind": "bn", "layout": "NCHW"}, {"dtype": "float32", "input": '
    '[1, 72, 16, 16], "kind": "relu6", "layout": "NCHW"}, {"bias": false, "dilation": 1, '
    '"dtype": "float32", "input": [1, 72, 16, 16], "kernel": 5, "kind": "dwconv2d", "layout": '
    '"NCHW", "multiplier": 1, "padding": 2, "stride": 1}, {"dtype": "float32", "input": '
    '[1, 72, 16, 16], "kind": "bn", "layout": "NCHW"}, {"dtype": "float32", "input": '
    '[1, 72, 16, 16], "kind": "relu6", "layout": "NCHW"}, {"bias": false, "dilation": 1, '
    '"dtype": "float32", "groups": 1, "input": [1, 72, 16, 16], "kernel": 1, "kind": "conv2d", '
    '"layout": "NCHW", "out_channels": 24, "padding": 0, "stride": 1}, {"dtype": "float32", '
    '"input": [1, 24, 16, 16], "kind": "bn", "layout": "NCHW"}], "residual": true}')


class RecordingRuntime:
    """Builds a function per plan that notes the plan's input shape when called."""

    def __init__(self):
        self.calls = []

    def build(self, plan):
        return lambda: self.calls.append(tuple(plan["input"]))


def test_the_basket_runs_each_member_once_per_call_in_order():
    rt = RecordingRuntime()
    run = reference_ops.build(rt, reference_ops.PLANS["basket"])
    run()
    run()
    shapes = [tuple(m["input"]) for m in reference_ops.PLANS["basket"]["members"]]
    assert len(set(shapes)) == 3 and rt.calls == shapes + shapes


def test_a_single_op_reference_is_built_by_the_runtime_itself():
    rt = RecordingRuntime()
    reference_ops.build(rt, reference_ops.PLANS["mbconv"])()
    assert rt.calls == [(1, 24, 16, 16)]


def test_the_mbconv_plan_is_the_one_agent_11_tables_hold():
    assert reference_ops.PLANS["mbconv"] == AGENT_11_PLAN
    assert reference_ops.name_of(AGENT_11_PLAN) == "mbconv"
    assert reference_ops.name_of(json.loads(json.dumps(reference_ops.PLANS["basket"]))) == "basket"
    assert reference_ops.name_of({"kind": "fake"}) is None and reference_ops.name_of(None) is None


def test_every_reference_name_has_a_plan_and_the_default_is_the_basket():
    assert set(protocol.REFERENCES) == set(reference_ops.PLANS)
    assert protocol.settings()["reference"] == "basket"
