import pytest

from hwprof.errors import UserError
from hwprof.latency.spaces import SKIP, get_space, space_names


def test_builtin_spaces():
    assert {"mbv2-cifar", "mbv2-mini", "tiny"} <= set(space_names())
    with pytest.raises(UserError, match="unknown space 'nope'; available: mbv2-cifar"):
        get_space("nope")


def test_mbv2_cifar_layout():
    sp = get_space("mbv2-cifar")
    assert sp.input == [1, 3, 32, 32]
    assert len(sp.layers) == 16
    for lay in sp.layers:
        mb = [c for c in lay.candidates if c != SKIP]
        assert len(mb) == 6
        can_skip = lay.stride == 1 and lay.input[1] == lay.out_channels
        assert (SKIP in lay.candidates) == can_skip
    assert sp.layers[0].input == (1, 16, 32, 32)
    assert [lay.stride for lay in sp.layers].count(2) == 3


def test_table_specs_are_exactly_what_the_lut_needs():
    sp = get_space("mbv2-cifar")
    specs = sp.table_specs()
    sigs = [s.signature for s in specs]
    assert len(sigs) == len(set(sigs))
    needed = {s.signature for s in sp.fixed_specs}
    for i, lay in enumerate(sp.layers):
        for name in lay.candidates:
            s = sp.candidate_spec(i, name)
            if s is not None:
                needed.add(s.signature)
    assert set(sigs) == needed
    # layers 2..n of a stage share their input shape, so their candidates share rows
    assert len(specs) < len(sp.fixed_specs) + 6 * len(sp.layers)


def test_arch_specs_and_network():
    sp = get_space("tiny")
    choices = [lay.candidates[0] for lay in sp.layers]
    choices[-1] = SKIP
    specs = sp.arch_specs(choices)
    assert len(specs) == len(sp.prefix) + 1 + len(sp.suffix)
    net = sp.arch_network(choices)
    assert net.kind == "sequence" and net.output_shape == [1, 10]
    assert net.features()["macs"] == sum(s.features()["macs"] for s in specs)


def test_bad_choices_are_explained():
    sp = get_space("tiny")
    with pytest.raises(UserError, match="2 searchable layers"):
        sp.arch_specs(["skip"])
    with pytest.raises(UserError, match="has no candidate 'skip'; expected one of"):
        sp.arch_specs(["skip", "skip"])  # the first layer changes shape: no skip there


def test_describe_lists_candidates_in_order():
    d = get_space("mbv2-mini").describe()
    assert d["input"] == [1, 3, 32, 32]
    assert [lay["name"] for lay in d["layers"]][:2] == ["stage1.1", "stage1.2"]
    assert d["n_table_ops"] == len(get_space("mbv2-mini").table_specs())


def test_batch_override():
    sp = get_space("tiny", batch=8)
    assert all(s.input[0] == 8 for s in sp.table_specs())
