"""Space files: parsing, validation (each mistake names its field), built-ins as files."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from hwprof.errors import UserError
from hwprof.latency import spacefile
from hwprof.latency.spaces import SKIP, Space, get_space, register_space, space_names

DATA = Path(__file__).parent / "data"
PUBLISHED = Path(__file__).parents[2] / "tables" / "published"

GOOD = {
    "description": "a small elastic space for tests",
    "input": [1, 3, 32, 32],
    "stem": [{"conv": {"out": 16, "kernel": 3, "stride": 2, "act": "hswish"}}],
    "stages": [{"out": 24, "stride": 2, "depth": [1, 3], "act": "relu"},
               {"out": 24, "stride": 1, "depth": [0, 2], "se": True, "act": "hswish",
                "candidates": [{"mbconv": {"expand": [3], "kernel": [3, 5]}},
                               {"conv": {"kernel": [3]}}]}],
    "candidates": [{"mbconv": {"expand": [3, 6], "kernel": [3, 5, 7]}}],
    "head": [{"conv": {"out": 64, "kernel": 1}}, "pool",
             {"conv": {"out": 80, "kernel": 1, "bn": False, "act": "hswish"}},
             {"classifier": {"classes": 10}}],
}


def test_builtin_files_give_exactly_the_old_op_sets():
    """Each dict-based built-in re-expressed as a file: same ops, fixed ops and layers."""
    old = json.loads((DATA / "builtin_spaces_before_files.json").read_text())
    assert set(old) <= set(space_names())
    for name, want in old.items():
        sp = get_space(name)
        assert sorted(s.signature for s in sp.table_specs()) == want["table_signatures"], name
        assert [s.signature for s in sp.fixed_specs] == want["fixed_signatures"], name
        got = [{"name": lay.name, "input": list(lay.input), "out_channels": lay.out_channels,
                "stride": lay.stride, "candidates": list(lay.candidates)} for lay in sp.layers]
        assert got == want["layers"], name


def test_yaml_and_json_files_are_the_same_space(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "s.json").write_text(json.dumps(GOOD))
    a, b = get_space(str(tmp_path / "s.yaml")), get_space(str(tmp_path / "s.json"))
    assert [s.signature for s in a.table_specs()] == [s.signature for s in b.table_specs()]
    assert a.ref == str((tmp_path / "s.yaml").resolve())
    # validation is idempotent: the normalised data builds the same space
    c = Space("again", a.data)
    assert [s.signature for s in c.table_specs()] == [s.signature for s in a.table_specs()]


def test_what_a_file_describes(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(GOOD))
    sp = get_space(str(tmp_path / "s.yaml"))
    st1 = [lay for lay in sp.layers if lay.stage == 0]
    st2 = [lay for lay in sp.layers if lay.stage == 1]
    assert [lay.optional for lay in st1] == [False, True, True]
    assert [lay.optional for lay in st2] == [True, True]      # min depth 0 keeps the shape
    assert st1[0].candidates == ("mbconv_e3_k3_relu", "mbconv_e3_k5_relu", "mbconv_e3_k7_relu",
                                 "mbconv_e6_k3_relu", "mbconv_e6_k5_relu", "mbconv_e6_k7_relu")
    assert st2[0].candidates == ("mbconv_e3_k3_se_hswish", "mbconv_e3_k5_se_hswish",
                                 "conv_k3_hswish", SKIP)
    mb = sp.candidate_spec(st2[0], "mbconv_e3_k5_se_hswish")
    assert (mb.kind, mb["se"], mb["activation"], mb["residual"]) == ("mbconv", True, "hswish", True)
    conv = sp.candidate_spec(st2[0], "conv_k3_hswish")
    assert conv.kind == "sequence" and [o["kind"] for o in conv["ops"]] == ["conv2d", "bn",
                                                                             "hswish"]
    # stem conv+bn+hswish; head conv+bn+relu6, pool, conv+hswish (no bn), fc on 1x1
    assert [s.kind for s in sp.prefix] == ["conv2d", "bn", "hswish"]
    assert [s.kind for s in sp.suffix] == ["conv2d", "bn", "relu6", "global_avgpool", "conv2d",
                                           "hswish", "fc"]
    assert sp.suffix[-1].input == [1, 80, 1, 1] and sp.classes == 10


def test_fused_fixed_layers_are_one_op_each(tmp_path):
    data = {**GOOD, "fused_fixed": True}
    sp = Space("fused", data)
    assert [s.kind for s in sp.prefix] == ["sequence"]
    # conv+bn+relu6 | pool | conv+hswish | fc alone (a one-op layer is the op itself)
    assert [s.kind for s in sp.suffix] == ["sequence", "global_avgpool", "sequence", "fc"]


def _bad(mutate):
    d = copy.deepcopy(GOOD)
    mutate(d)
    return d


BAD = [
    (lambda d: d["stages"][0].update(stride=3), "stages[0].stride: expected 1 or 2, got 3"),
    (lambda d: d["stages"][1].update(depth=[3, 2]), "stages[1].depth: min 3 is above max 2"),
    (lambda d: d["stages"][0].update(depth=[0, 2]), "stages[0].depth: min 0 needs a stage that "
                                                    "keeps the shape"),
    (lambda d: d["stages"][0].update(act="gelu"), "stages[0].act: expected one of relu, relu6, "
                                                  "hswish, got 'gelu'"),
    (lambda d: d["stages"][0].update(width=3), "stages[0]: unknown field(s) width"),
    (lambda d: d["stages"][0].pop("out"), "stages[0]: 'out' is required"),
    (lambda d: d["candidates"][0]["mbconv"].update(kernel=[3, 3]), "candidates[0].mbconv.kernel:"
                                                                   " lists a value twice"),
    (lambda d: d["candidates"][0]["mbconv"].update(expand=[0.5]),
     "candidates[0].mbconv.expand[0]: expected a number >= 1, got 0.5"),
    (lambda d: d.update(candidates=[{"dwconv": {}}]), "candidates[0]: expected a candidate group"),
    (lambda d: d.pop("candidates"), "'candidates' is required: stages[0] lists none"),
    (lambda d: d["head"].pop(), "head: the head must end with a classifier"),
    (lambda d: d["stem"][0]["conv"].update(act="tanh"), "stem[0].conv.act: expected one of"),
    (lambda d: d["stem"].append({"pool": {"type": "max"}}), "stem[1].pool: only global average"),
    (lambda d: d.update(input=[1, 3, 32]), "input: expected [N, C, H, W]"),
    (lambda d: d.update(params={"width_mult": 0}), "params.width_mult: expected a number > 0"),
    (lambda d: d.update(params={"depth_mult": 2}), "params: unknown field(s) depth_mult"),
    (lambda d: d.update(format="hwprof-space/9"), "format: expected 'hwprof-space/1'"),
    (lambda d: d.update(stages=[]), "stages: expected a non-empty list of stages"),
]


@pytest.mark.parametrize("mutate,message", BAD)
def test_bad_files_name_the_field(tmp_path, mutate, message):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(_bad(mutate)))
    with pytest.raises(UserError) as e:
        get_space(str(path))
    text = str(e.value)
    assert text.startswith("my.yaml: ") and message in text and "\n" not in text


def test_unreadable_files(tmp_path):
    (tmp_path / "broken.yaml").write_text("stages: [1, 2\n")
    with pytest.raises(UserError, match=r"broken.yaml is not valid YAML"):
        get_space(str(tmp_path / "broken.yaml"))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match=r"broken.json is not valid JSON"):
        get_space(str(tmp_path / "broken.json"))
    with pytest.raises(UserError, match="no space file at"):
        get_space(str(tmp_path / "none.yaml"))
    with pytest.raises(UserError, match="unknown space 'nope'; available: mbv2-cifar"):
        get_space("nope")


def test_make_divisible_and_width_multiplier():
    assert [spacefile.make_divisible(v * 1.2) for v in (16, 24, 40, 80, 112, 160, 960, 1280)] == \
        [24, 32, 48, 96, 136, 192, 1152, 1536]
    sp = get_space("ofa-mbv3")            # width_mult 1.2 by default: OFA's published network
    assert [lay.out_channels for lay in sp.layers][::4] == [32, 48, 96, 136, 192]
    assert sp.prefix[0]["ops"][0]["out_channels"] == 24
    w1 = get_space("ofa-mbv3:width_mult=1.0,resolution=160")
    assert [lay.out_channels for lay in w1.layers][::4] == [24, 40, 80, 112, 160]
    assert w1.input == [1, 3, 160, 160]
    with pytest.raises(UserError, match="'depth=2' is not a parameter"):
        get_space("ofa-mbv3:depth=2")


def test_ofa_space_is_the_published_lut():
    """OFA's published Note10 LUT (192x192) holds exactly the ops of ofa-mbv3 at 192."""
    from hwprof.latency.adapters.proxylessnas import import_file

    res = import_file(PUBLISHED / "ofa_note10_192_lookup_table.yaml", device_name="note10")
    lut = set(res.table.df["signature"])
    space = {s.signature for s in get_space("ofa-mbv3:resolution=192").table_specs()}
    assert len(lut) == 96 and space == lut


def test_register_space_validates():
    with pytest.raises(UserError, match=r"mine: stages\[0\].stride"):
        register_space("mine", _bad(lambda d: d["stages"][0].update(stride=4)))
    register_space("mine-ok", GOOD)
    assert "mine-ok" in space_names() and len(get_space("mine-ok").layers) == 5
