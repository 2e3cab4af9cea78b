"""Model files lowered to op specs: nnabla graphs written by hwprof's search and by hand."""

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.latency.endtoend import random_choices
from hwprof.latency.modelfile import lower_file
from hwprof.latency.modelfile.onnx import converter_available
from hwprof.latency.modelfile.zoo import deep_chain_nnp, save_graph, save_onnx
from hwprof.latency.spaces import get_space
from hwprof.latency.specs import parse_spec

needs_converter = pytest.mark.skipif(not converter_available(),
                                     reason="the 'onnx' extra (nnabla-converter) is not installed")


def sigs(specs):
    return [s.signature for s in specs]


@pytest.mark.parametrize("space_name", ["tiny", "mbv2-mini", "se"])
def test_search_exports_lower_to_exactly_the_arch_specs(tmp_path, export_arch, se_space_file,
                                                        space_name):
    space = get_space(str(se_space_file) if space_name == "se" else space_name)
    for i, choices in enumerate(random_choices(space, 3, seed=5)):
        path = export_arch(space, choices, tmp_path / f"{i}.nnp")
        low = lower_file(path)
        assert low.unsupported == []
        assert sigs(low.specs) == sigs(space.arch_specs(choices)), choices


def test_fused_fixed_layers_become_the_sequences_a_table_knows(tmp_path, export_arch):
    space = get_space("proxyless-mobile")
    choices = random_choices(space, 1, seed=1)[0]
    path = export_arch(space, choices, tmp_path / "p.nnp")
    want = space.arch_specs(choices)
    known = {s.signature for s in want}
    low = lower_file(path, known=lambda s: s.signature in known)
    assert sigs(low.specs) == sigs(want)
    assert [s.kind for s in low.specs][:2] == ["sequence", "mbconv"]
    assert [s.kind for s in lower_file(path).specs][:3] == ["conv2d", "bn", "relu6"]


def _handmade(path, with_softmax=False):
    """Every kind a hand-written nnabla graph may hold, in the spellings people use."""
    rng = np.random.RandomState(0)
    x = nn.Variable((1, 3, 32, 32))
    with nn.parameter_scope("handmade"):
        h = F.relu6(PF.batch_normalization(PF.convolution(x, 16, (3, 3), pad=(1, 1),
                                                          stride=(2, 2), with_bias=False,
                                                          rng=rng, name="c0"), name="b0", batch_stat=False))
        y0 = h  # MBConv e3 k3 with residual
        with nn.parameter_scope("mb"):
            m = PF.convolution(h, 48, (1, 1), with_bias=False, rng=rng, name="e")
            m = F.relu6(PF.batch_normalization(m, name="eb", batch_stat=False))
            m = F.relu6(PF.batch_normalization(PF.depthwise_convolution(
                m, (3, 3), pad=(1, 1), with_bias=False, rng=rng, name="d"), name="db", batch_stat=False))
            m = PF.batch_normalization(PF.convolution(m, 16, (1, 1), with_bias=False, rng=rng,
                                                      name="p"), name="pb", batch_stat=False)
        h = m + y0
        s = F.global_average_pooling(h)  # squeeze-and-excite, 1x1 convs with bias
        s = F.relu(PF.convolution(s, 4, (1, 1), rng=rng, name="se1"))
        s = F.sigmoid(PF.convolution(s, 16, (1, 1), rng=rng, name="se2"))
        h = h * s
        hs = h * (F.relu6(h + 3.0) / 6.0)  # h-swish
        h = F.concatenate(hs, h, axis=1)
        h = F.max_pooling(F.average_pooling(h, (2, 2)), (2, 2))
        y = PF.affine(F.global_average_pooling(h), 10, rng=rng, name="fc")
        if with_softmax:
            y = F.softmax(y)
        try:
            return save_graph(path, x, y)
        finally:
            nn.get_current_parameter_scope().clear()


HANDMADE = [
    {"kind": "conv2d", "input": [1, 3, 32, 32], "out_channels": 16, "kernel": 3, "stride": 2},
    {"kind": "bn", "input": [1, 16, 16, 16]},
    {"kind": "relu6", "input": [1, 16, 16, 16]},
    {"kind": "mbconv", "input": [1, 16, 16, 16], "out_channels": 16, "expand": 3, "kernel": 3},
    {"kind": "se", "input": [1, 16, 16, 16], "reduction": 4, "gate": "sigmoid"},
    {"kind": "hswish", "input": [1, 16, 16, 16]},
    {"kind": "concat", "input": [1, 16, 16, 16], "n_inputs": 2},
    {"kind": "avgpool", "input": [1, 32, 16, 16], "kernel": 2},
    {"kind": "maxpool", "input": [1, 32, 8, 8], "kernel": 2},
    {"kind": "global_avgpool", "input": [1, 32, 4, 4]},
    {"kind": "fc", "input": [1, 32, 1, 1], "out_features": 10},
]


def test_handmade_graph_lowers_every_kind(tmp_path):
    low = lower_file(_handmade(tmp_path / "h.nnp"))
    assert low.unsupported == []
    assert sigs(low.specs) == sigs(parse_spec(s) for s in HANDMADE)
    mb = low.specs[3]
    assert mb["residual"] is True and mb["activation"] == "relu6" and not mb["se"]
    # the composite names the file's functions it stands for
    assert len(low.supported[3].names) == 9  # 3 x (conv, bn), 2 activations, the add


def test_functions_without_an_op_kind_are_listed_with_the_reason(tmp_path):
    low = lower_file(_handmade(tmp_path / "s.nnp", with_softmax=True))
    assert sigs(low.specs) == sigs(parse_spec(s) for s in HANDMADE)
    assert low.unsupported == [{"name": low.unsupported[0]["name"], "op": "Softmax",
                                "reason": "no hwprof op kind for nnabla function Softmax"}]


@needs_converter
def test_onnx_lowers_to_the_same_specs_as_the_nnp(tmp_path):
    nnp = _handmade(tmp_path / "h.nnp")
    onnx = save_onnx(nnp, tmp_path / "h.onnx")
    low = lower_file(onnx)
    # the converter writes ReLU6 as Relu + Min, h-swish as Add/Relu/Min/Mul, the affine as
    # a batched matmul plus a bias, the depthwise conv as a grouped conv: same specs
    assert low.unsupported == []
    assert sigs(low.specs) == sigs(parse_spec(s) for s in HANDMADE)
    assert len(low.views) >= 2  # the reshapes around the matmul compute nothing


def test_deep_chain_lowers_layer_by_layer(tmp_path):
    low = lower_file(deep_chain_nnp(tmp_path / "deep.nnp", blocks=10))
    assert [s.kind for s in low.specs] == ["conv2d", "bn", "relu6"] * 10 + ["global_avgpool",
                                                                            "fc"]


@pytest.mark.parametrize("name, content, message", [
    ("net.pb", b"x", "unknown model file type '.pb'"),
    ("net.nnp", b"not a zip", "nnabla cannot read it as a network file"),
    ("missing.nnp", None, "no model file at"),
])
def test_bad_model_files_are_user_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        lower_file(path)


def test_onnx_without_the_converter_says_which_extra(tmp_path, monkeypatch):
    from hwprof.latency.modelfile import onnx
    monkeypatch.setattr(onnx, "converter_available", lambda: False)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(UserError, match=r"pip install 'hwprof\[onnx\]'"):
        lower_file(path)


@pytest.mark.parametrize("write", [
    lambda x: x * (F.relu6(x + 3.0) / 6.0),          # x * hsigmoid(x)
    lambda x: (x * F.relu6(x + 3.0)) / 6.0,          # (x * relu6(x + 3)) / 6
    lambda x: (F.relu6(x + 3.0) * (1 / 6.0)) * x,    # hsigmoid(x) * x
])
def test_h_swish_in_every_spelling(tmp_path, write):
    x = nn.Variable((1, 8, 4, 4))
    low = lower_file(save_graph(tmp_path / "h.nnp", x, write(x)))
    assert [s.kind for s in low.specs] == ["hswish"] and low.unsupported == []


def test_a_lone_sigmoid_is_unsupported_not_dropped(tmp_path):
    x = nn.Variable((1, 8, 4, 4))
    low = lower_file(save_graph(tmp_path / "s.nnp", x, F.relu(F.sigmoid(x))))
    assert [s.kind for s in low.specs] == ["relu"]
    assert low.unsupported[0]["op"] == "Sigmoid" and "squeeze-and-excite" in low.unsupported[0][
        "reason"]
