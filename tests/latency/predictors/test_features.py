import math

import numpy as np
import pytest

from hwprof.latency.predictors.features import feature_matrix, spec_features
from hwprof.latency.sampling import sample_specs
from hwprof.latency.specs import parse_spec


def test_every_spec_of_a_kind_has_the_same_feature_names():
    specs = sample_specs(30, ["conv2d", "dwconv2d", "mbconv", "sepconv", "fc", "se", "bn"], 5)
    for kind in {s.kind for s in specs}:
        names = {tuple(spec_features(s)) for s in specs if s.kind == kind}
        assert len(names) == 1, kind


def test_features_follow_the_analytic_counts():
    small = parse_spec({"kind": "conv2d", "input": [1, 16, 8, 8], "out_channels": 16, "kernel": 3})
    big = parse_spec({"kind": "conv2d", "input": [1, 16, 16, 16], "out_channels": 16,
                      "kernel": 3})
    fs, fb = spec_features(small), spec_features(big)
    assert fs["log_macs"] == pytest.approx(math.log1p(small.features()["macs"]))
    assert fb["log_macs"] - fs["log_macs"] == pytest.approx(math.log(4), abs=1e-3)
    assert fs["kernel"] == 3 and fs["stride"] == 1 and fs["pointwise"] == 0


def test_mbconv_features_split_the_block_into_its_convolutions():
    spec = parse_spec({"kind": "mbconv", "input": [1, 16, 8, 8], "out_channels": 24,
                       "expand": 6, "kernel": 5, "stride": 2})
    f = spec_features(spec)
    expand = 1 * 96 * 8 * 8 * 16
    dw = 1 * 96 * 4 * 4 * 25
    project = 1 * 24 * 4 * 4 * 96
    assert math.expm1(f["log_expand_macs"]) == pytest.approx(expand)
    assert math.expm1(f["log_dw_macs"]) == pytest.approx(dw)
    assert math.expm1(f["log_project_macs"]) == pytest.approx(project)
    assert f["expand"] == 6 and f["residual"] == 0 and f["se"] == 0
    assert math.expm1(f["log_mid_channels"]) == pytest.approx(96)


def test_mbconv_part_bytes_are_the_traffic_of_each_kind_of_part():
    spec = parse_spec({"kind": "mbconv", "input": [1, 16, 8, 8], "out_channels": 16,
                       "expand": 3, "kernel": 3, "se": True, "activation": "hswish"})
    f = spec_features(spec)
    moved = {}
    for c in spec.children():
        cf = c.features()
        moved[c.kind] = moved.get(c.kind, 0) + cf["bytes_read"] + cf["bytes_written"]
    # two activations after the expansion and the depthwise conv, three batch norms
    assert [c.kind for c in spec.children()].count("bn") == 3
    for kind in ("conv2d", "dwconv2d", "bn", "hswish", "se", "add"):
        assert math.expm1(f[f"log_{kind}_part_bytes"]) == pytest.approx(moved[kind]), kind
    assert f["log_relu6_part_bytes"] == 0 and f["log_relu_part_bytes"] == 0


def test_feature_matrix_orders_columns_by_the_given_names():
    specs = sample_specs(5, ["dwconv2d"], 1)
    x, names = feature_matrix(specs)
    x2, _ = feature_matrix(specs, list(reversed(names)))
    assert x.shape == (5, len(names))
    assert np.allclose(x[:, ::-1], x2)
    with pytest.raises(ValueError, match="one kind"):
        feature_matrix(sample_specs(2, ["conv2d", "mbconv"], 1))


def test_conv_alignment_counts_the_powers_of_two_in_each_groups_channels():
    def conv(c_in, c_out, groups=1):
        return parse_spec({"kind": "conv2d", "input": [1, c_in, 8, 8], "out_channels": c_out,
                           "kernel": 3, "stride": 1, "padding": 1, "groups": groups})
    f = spec_features(conv(48, 20))
    assert (f["in_align"], f["out_align"]) == (4.0, 2.0)   # 48 = 16 * 3, 20 = 4 * 5
    f = spec_features(conv(3, 64))
    assert (f["in_align"], f["out_align"]) == (0.0, 5.0)   # capped at 32
    f = spec_features(conv(64, 96, groups=4))               # per group: 16 in, 24 out
    assert (f["in_align"], f["out_align"]) == (4.0, 3.0)


def test_aliasing_counts_the_powers_of_two_beyond_64_in_convs_depthwise_and_blocks():
    def conv(c_in, c_out):
        return parse_spec({"kind": "conv2d", "input": [1, c_in, 8, 8], "out_channels": c_out,
                           "kernel": 1, "stride": 1, "padding": 0})
    f = spec_features(conv(128, 512))
    assert (f["in_aliasing"], f["out_aliasing"]) == (1.0, 3.0)   # 128 = 2**7, 512 = 2**9
    f = spec_features(conv(136, 528))                             # 8 * 17, 16 * 33
    assert (f["in_aliasing"], f["out_aliasing"]) == (0.0, 0.0)
    assert f["out_align"] == 4.0                                  # the capped count is kept
    dw = parse_spec({"kind": "dwconv2d", "input": [1, 1024, 7, 7], "kernel": 3, "stride": 1,
                     "padding": 1})
    assert spec_features(dw)["aliasing"] == 4.0
    mb = parse_spec({"kind": "mbconv", "input": [1, 64, 8, 8], "out_channels": 96, "expand": 4,
                     "kernel": 3, "stride": 1})
    f = spec_features(mb)
    assert (f["in_aliasing"], f["mid_aliasing"], f["out_aliasing"]) == (0.0, 2.0, 0.0)


def test_a_predictor_fitted_before_the_aliasing_features_reads_its_own_columns():
    specs = sample_specs(4, ["conv2d"], 1)
    names = [n for n in spec_features(specs[0]) if "aliasing" not in n]
    x, got = feature_matrix(specs, names)
    assert got == names and x.shape == (4, len(names))
