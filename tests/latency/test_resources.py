"""Parameters and peak activation memory computed from op specs."""

import pytest

from hwprof.latency.resources import (
    arch_resources,
    params_of,
    peak_activation_bytes,
    peak_activation_elements,
)
from hwprof.latency.spaces import get_space


def test_primitive_peak_is_inputs_plus_output():
    conv = {"kind": "conv2d", "input": [2, 8, 16, 16], "out_channels": 16, "kernel": 3,
            "stride": 2}
    assert peak_activation_elements(conv) == 2 * 8 * 16 * 16 + 2 * 16 * 8 * 8
    assert peak_activation_bytes(conv) == 4 * peak_activation_elements(conv)
    add = {"kind": "add", "input": [1, 4, 8, 8], "n_inputs": 3}
    assert peak_activation_elements(add) == 4 * 256
    assert params_of(conv) == 16 * 8 * 9


def test_mbconv_keeps_its_input_alive_for_the_residual():
    x = 1 * 16 * 8 * 8
    block = {"kind": "mbconv", "input": [1, 16, 8, 8], "out_channels": 16, "expand": 6,
             "kernel": 3, "stride": 1, "residual": True}
    plain = dict(block, residual=False)
    mid = 96 * 8 * 8
    # the widest part: an activation or BN over the expanded tensor (in + out), plus the input
    assert peak_activation_elements(plain) == 2 * mid
    assert peak_activation_elements(block) == 2 * mid + x


def test_network_peak_is_the_largest_op_and_params_add_up():
    space = get_space("tiny")
    choices = [lay.candidates[0] for lay in space.layers]
    res = arch_resources(space, choices)
    specs = space.arch_specs(choices)
    assert res["params"] == sum(params_of(s) for s in specs) > 0
    assert res["peak_memory_bytes"] == max(peak_activation_bytes(s) for s in specs)
    assert res["peak_memory_bytes"] == peak_activation_bytes(space.arch_network(choices))


@pytest.mark.parametrize("text,want", [("2.5M", 2.5e6), ("800k", 8e5), ("120000", 1.2e5)])
def test_parameter_counts_parse(text, want):
    from hwprof.commands._common import count
    assert count(text) == want


@pytest.mark.parametrize("text,want", [("4MB", 4e6), ("512kB", 512e3), ("1GiB", 2.0 ** 30),
                                       ("2MiB", 2.0 ** 21), ("1000", 1000.0)])
def test_memory_sizes_parse(text, want):
    from hwprof.commands._common import size_bytes
    assert size_bytes(text) == want
