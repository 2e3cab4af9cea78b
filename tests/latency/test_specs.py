import json

import pytest

from hwprof.errors import SpecError
from hwprof.latency.specs import kinds, load_specs, parse_spec, unique

CONV = {"kind": "conv2d", "input": [1, 16, 32, 32], "out_channels": 32, "kernel": 3, "stride": 1}


def test_key_order_and_defaults_do_not_change_the_signature():
    a = parse_spec(CONV)
    b = parse_spec(dict(reversed(list(CONV.items()))))
    c = parse_spec({**CONV, "padding": "same", "dilation": 1, "groups": 1, "bias": False,
                    "dtype": "float32", "layout": "NCHW"})
    d = parse_spec({**CONV, "padding": 1, "kernel": [3, 3]})
    assert a.signature == b.signature == c.signature == d.signature
    assert len(a.signature) == 16
    assert a == d and len({a, b, c, d}) == 1


def test_different_ops_hash_differently():
    sigs = {parse_spec({**CONV, "stride": s}).signature for s in (1, 2)}
    sigs |= {parse_spec({**CONV, "bias": True}).signature, parse_spec({**CONV, "groups": 2}).signature}
    assert len(sigs) == 4


def test_canonical_json_is_sorted_and_explicit():
    s = parse_spec(CONV)
    obj = json.loads(s.canonical_json())
    assert list(obj) == sorted(obj)
    assert obj["padding"] == 1 and obj["dilation"] == 1 and obj["groups"] == 1
    assert obj["bias"] is False and obj["dtype"] == "float32"
    assert parse_spec(obj).signature == s.signature


def test_conv_features_by_hand():
    s = parse_spec(CONV)
    f = s.features()
    assert s.output_shape == [1, 32, 32, 32]
    assert f["macs"] == 32 * 32 * 32 * 16 * 9
    assert f["params"] == 32 * 16 * 9
    assert f["bytes_read"] == 4 * (16 * 32 * 32 + 32 * 16 * 9)
    assert f["bytes_written"] == 4 * 32 * 32 * 32


def test_strided_dwconv_shape_and_macs():
    s = parse_spec({"kind": "dwconv2d", "input": [1, 32, 16, 16], "kernel": 5, "stride": 2})
    assert s.output_shape == [1, 32, 8, 8]
    assert s["padding"] == 2
    assert s.features()["macs"] == 32 * 8 * 8 * 25


def test_mbconv_decomposes_and_sums_its_parts():
    s = parse_spec({"kind": "mbconv", "input": [1, 16, 32, 32], "out_channels": 24, "expand": 6,
                    "kernel": 5, "stride": 2})
    parts = s.children()
    assert [p.kind for p in parts] == ["conv2d", "bn", "relu6", "dwconv2d", "bn", "relu6",
                                       "conv2d", "bn"]
    assert parts[0]["out_channels"] == 96 and parts[3]["stride"] == 2
    assert s.output_shape == [1, 24, 16, 16]
    assert s["residual"] is False
    total = sum(p.features()["macs"] for p in parts)
    assert s.features()["macs"] == total > 0


def test_mbconv_residual_when_shapes_allow_and_se():
    s = parse_spec({"kind": "mbconv", "input": [1, 24, 8, 8], "out_channels": 24, "expand": 3,
                    "kernel": 3, "se": True, "activation": "hswish"})
    assert s["residual"] is True
    kinds_ = [p.kind for p in s.children()]
    assert kinds_[-1] == "add" and "se" in kinds_ and "hswish" in kinds_
    plan = s.plan()
    assert plan["kind"] == "chain" and plan["residual"] is True
    assert all(op["kind"] != "add" for op in plan["ops"])
    with pytest.raises(SpecError, match="residual"):
        parse_spec({"kind": "mbconv", "input": [1, 24, 8, 8], "out_channels": 32,
                    "residual": True})


def test_expand_one_has_no_expansion_conv():
    s = parse_spec({"kind": "mbconv", "input": [1, 32, 8, 8], "out_channels": 16, "expand": 1})
    assert [p.kind for p in s.children()][:2] == ["dwconv2d", "bn"]


def test_sequence_checks_chaining():
    seq = parse_spec({"kind": "sequence", "input": [1, 3, 8, 8], "ops": [
        {"kind": "conv2d", "out_channels": 4, "kernel": 3},
        {"kind": "relu6"}, {"kind": "global_avgpool"}, {"kind": "fc", "out_features": 10}]})
    assert seq.output_shape == [1, 10]
    assert [c.kind for c in seq.children()] == ["conv2d", "relu6", "global_avgpool", "fc"]
    with pytest.raises(SpecError, match="previous op gives"):
        parse_spec({"kind": "sequence", "input": [1, 3, 8, 8], "ops": [
            {"kind": "conv2d", "out_channels": 4, "kernel": 3},
            {"kind": "relu", "input": [1, 5, 8, 8]}]})


@pytest.mark.parametrize("bad, msg", [
    ({"kind": "conv3d", "input": [1, 3, 8, 8]}, "unknown op kind 'conv3d'; expected one of"),
    ({"kind": "conv2d", "input": [1, 3, 8, 8], "out_channels": 4, "kernal": 3}, "kernal"),
    ({"kind": "conv2d", "input": [1, 3, 8], "out_channels": 4, "kernel": 3}, "NCHW"),
    ({"kind": "conv2d", "input": [1, 3, 8, 8], "kernel": 3}, "out_channels"),
    ({"kind": "conv2d", "input": [1, 3, 8, 8], "out_channels": 4, "kernel": 0}, "kernel"),
    ({"kind": "conv2d", "input": [1, 3, 4, 4], "out_channels": 4, "kernel": 7, "padding": 0},
     "does not fit"),
    ({"kind": "conv2d", "input": [1, 3, 8, 8], "out_channels": 4, "kernel": 3, "groups": 2},
     "groups"),
    ({"kind": "relu", "input": [1, -3, 8, 8]}, "input"),
    ({"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 8, "activation": "gelu"},
     "activation"),
    ({"kind": "relu", "input": [1, 3, 8, 8], "dtype": "int8"}, "dtype"),
    ("conv2d", "JSON object"),
])
def test_validation_errors_say_what_was_expected(bad, msg):
    with pytest.raises(SpecError, match=msg):
        parse_spec(bad)


def test_load_specs_lines_and_array(tmp_path):
    lines = "\n".join(json.dumps(x) for x in (CONV, {"kind": "relu6", "input": [1, 32, 16, 16]}))
    a = load_specs(lines + "\n# comment\n")
    b = load_specs(json.dumps([CONV, {"kind": "relu6", "input": [1, 32, 16, 16]}]))
    assert [s.signature for s in a] == [s.signature for s in b]
    with pytest.raises(SpecError, match="line 2"):
        load_specs(json.dumps(CONV) + "\n{not json}\n", "ops.json")
    with pytest.raises(SpecError, match="item 2.*unknown op kind"):
        load_specs(json.dumps([CONV, {"kind": "nope", "input": [1]}]))
    with pytest.raises(SpecError, match="empty"):
        load_specs("  \n")


def test_unique_keeps_first_order():
    a, b = parse_spec(CONV), parse_spec({"kind": "relu", "input": [1, 3, 4, 4]})
    assert unique([a, b, a]) == [a, b]


def test_every_kind_is_described():
    ks = kinds()
    for k in ("conv2d", "dwconv2d", "bn", "relu", "relu6", "hswish", "avgpool", "maxpool",
              "global_avgpool", "fc", "add", "concat", "se", "mbconv", "sepconv"):
        assert k in ks and ks[k]


def test_ops_files_that_are_empty_arrays_or_not_utf8_are_refused(tmp_path):
    from hwprof.latency.specs import read_ops_file
    with pytest.raises(SpecError, match="holds no op specs"):
        load_specs("[]")
    with pytest.raises(SpecError, match="holds no op specs"):
        load_specs("# only a comment\n")
    bad = tmp_path / "ops.json"
    bad.write_bytes(json.dumps(CONV).encode() + b"\n\xff\xfe\n")
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte 0xff"):
        read_ops_file(bad)
    bad.write_text(json.dumps(CONV) + "\n")
    assert [s.kind for s in read_ops_file(bad)] == ["conv2d"]
    with pytest.raises(SpecError, match="cannot read ops file"):
        read_ops_file(tmp_path / "absent.json")


@pytest.mark.parametrize("spec, message", [
    ({"kind": "fc", "input": [1, 2**40], "out_features": 2**40}, "overflow 64-bit integers"),
    ({"kind": "mbconv", "input": [1, 10**9, 16, 16], "out_channels": 10**9, "expand": 6,
      "kernel": 3}, "mbconv: part conv2d: too large"),
    ({"kind": "relu", "input": [1, 1, 24000, 24000]}, "one op may take at most 2 GiB"),
])
def test_op_sizes_are_checked_before_anything_is_allocated(spec, message):
    from hwprof.errors import SpecError
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_the_per_op_memory_limit_is_overridable(monkeypatch):
    from hwprof.errors import SpecError
    from hwprof.latency.specs import MAX_OP_BYTES_ENV, max_op_bytes
    big = {"kind": "relu", "input": [1, 1, 24000, 24000]}
    monkeypatch.setenv(MAX_OP_BYTES_ENV, "8G")
    assert max_op_bytes() == 8 * 1024**3
    assert parse_spec(big).features()["bytes_written"] == 4 * 24000**2
    monkeypatch.setenv(MAX_OP_BYTES_ENV, "1048576")
    with pytest.raises(SpecError, match="take 4 MiB and one op may take at most 1 MiB"):
        parse_spec({"kind": "relu", "input": [1, 8, 256, 256]})
    monkeypatch.setenv(MAX_OP_BYTES_ENV, "lots")
    with pytest.raises(SpecError, match="not a size"):
        parse_spec(big)
