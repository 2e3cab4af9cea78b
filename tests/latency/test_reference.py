"""A table's reference op: sessions measured against a table use the reference it was built with."""

import json

import pytest

from hwprof.errors import UserError
from hwprof.latency import reference
from hwprof.latency.backends.agent.reference_ops import PLANS


def _meta(plan):
    return json.loads(json.dumps({"reference": {"plan": plan, "levels": {}}}))  # as stored


def test_a_table_of_the_old_mbconv_reference_is_measured_against_it():
    assert reference.protocol_for(_meta(PLANS["mbconv"]), {"min_span_s": 1.0}) == {
        "min_span_s": 1.0, "reference": "mbconv"}
    assert reference.protocol_for(_meta(PLANS["basket"]), None) == {"reference": "basket"}


def test_an_explicit_reference_or_an_unknown_plan_leaves_the_protocol_alone():
    assert reference.protocol_for(_meta(PLANS["mbconv"]), {"reference": "basket"}) == {
        "reference": "basket"}
    assert reference.protocol_for(_meta({"kind": "fake"}), {"a": 1}) == {"a": 1}
    assert reference.protocol_for({}, None) == {}


def test_rows_of_another_reference_are_refused():
    with pytest.raises(UserError, match="t.parquet was measured against the 'mbconv' "
                       "reference; this agent uses the 'basket' reference"):
        reference.check_plan(_meta(PLANS["mbconv"]), PLANS["basket"], "t.parquet")
    with pytest.raises(UserError, match=r"the reference op \{'kind': 'fake'\}"):
        reference.check_plan(_meta({"kind": "fake"}), PLANS["basket"], "t.parquet")
    reference.check_plan(_meta(PLANS["mbconv"]), PLANS["mbconv"], "t.parquet")
