import math
import statistics

import pytest

from hwprof.errors import UserError
from hwprof.latency.sampling import (
    DEFAULT_KINDS,
    MAX_MACS,
    SAMPLERS,
    parse_kinds,
    sample_specs,
)


def test_same_seed_same_configs_other_seed_other_configs():
    a = sample_specs(40, None, 7)
    b = sample_specs(40, ["conv2d", "dwconv2d", "mbconv"], 7)
    c = sample_specs(40, None, 8)
    assert [s.signature for s in a] == [s.signature for s in b]
    assert [s.signature for s in a] != [s.signature for s in c]
    # a kind's configurations do not depend on the other kinds asked for
    only = sample_specs(40, ["mbconv"], 7)
    assert [s.signature for s in only] == [s.signature for s in a if s.kind == "mbconv"]


def test_n_distinct_configs_per_kind_from_a_mobile_prior():
    specs = sample_specs(150, None, 1)
    for kind in DEFAULT_KINDS:
        mine = [s for s in specs if s.kind == kind]
        assert len(mine) == 150 == len({s.signature for s in mine})
    for s in specs:
        n, c, h, w = s.input
        # 3 channels: a stem convolution on the image (issue 17)
        assert n == 1 and 1 <= h == w <= 224 and (8 <= c <= 1024 * 6 or (c == 3 and s.kind ==
                                                                          "conv2d"))
        assert s.features()["macs"] <= MAX_MACS
        k = s["kernel"]
        assert k in (1, 3, 5, 7) and s["stride"] in (1, 2)
        if s.kind == "mbconv":
            assert 1 <= s["expand"] <= 6
    sides = [s.input[2] for s in specs]
    assert min(sides) <= 8 and max(sides) >= 112
    chans = [s.input[1] for s in specs]
    assert min(chans) <= 16 and max(chans) >= 512
    # wide maps are narrow: the prior follows mobile networks
    big = [s.input[1] for s in specs if s.input[2] >= 112 and s.kind == "conv2d"]
    small = [s.input[1] for s in specs if s.input[2] <= 14 and s.kind == "conv2d"]
    assert math.exp(sum(map(math.log, big)) / len(big)) < math.exp(
        sum(map(math.log, small)) / len(small))


def test_every_samplable_kind_gives_valid_specs():
    specs = sample_specs(5, list(SAMPLERS), 2)
    assert sorted({s.kind for s in specs}) == sorted(SAMPLERS)


def test_parse_kinds():
    assert parse_kinds(None) == list(DEFAULT_KINDS)
    assert parse_kinds(" conv2d, mbconv,conv2d") == ["conv2d", "mbconv"]
    with pytest.raises(UserError, match="cannot sample op kind.*'conv3d'.*samplable kinds"):
        parse_kinds("conv2d,conv3d")
    with pytest.raises(UserError, match="empty"):
        parse_kinds(",")
    with pytest.raises(UserError, match="positive"):
        sample_specs(0, None, 0)


def test_mbconv_blocks_are_drawn_at_bottleneck_widths():
    # an MBConv block's input is the narrow side of the block: at the same map size its
    # channels sit well below a plain convolution's (issue 17: real MobileNetV3 and
    # EfficientNet blocks were at the edge of the first prior)
    specs = sample_specs(400, ["conv2d", "mbconv"], 3)

    def geo_width(kind):
        return statistics.geometric_mean(
            s.input[1] / min(16 * 224 / s.input[2], 1024) for s in specs
            if s.kind == kind and s.input[1] != 3 and s.input[2] in (7, 14, 28))

    assert geo_width("mbconv") < 0.6 * geo_width("conv2d")


def test_some_widths_are_exact_powers_of_two_as_in_resnets():
    from hwprof.latency.sampling import POW2_SHARE
    specs = sample_specs(400, ["conv2d"], 3)
    wide = [s["out_channels"] for s in specs if s["out_channels"] >= 64]
    pow2 = [c for c in wide if c & (c - 1) == 0]
    # snapped ones, plus the few a rounded draw hits anyway
    assert len(pow2) >= 0.5 * POW2_SHARE * len(wide)
    assert {128, 256, 512} <= set(pow2)
