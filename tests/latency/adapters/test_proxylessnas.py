"""ProxylessNAS / OFA LUT import and export on yaml files in the published format."""

import json
import math

import pytest
import yaml

from hwprof.errors import UserError
from hwprof.latency.adapters import proxylessnas as P
from hwprof.latency.model import LatencyModel
from hwprof.latency.table import read_table, write_table
from tests.latency.adapters.conftest import pnas_key, proxyless_mobile_lut

ROW_COLS = ["signature", "kind", "spec", "median_ms", "mean_ms", "n_samples", "source_key",
            "device_fingerprint", "env_key", "status", "source", "macs"]


def _rows(table):
    return table.df.sort_values("signature").reset_index(drop=True)


def test_mobile_lut_covers_proxyless_space_and_sums_per_architecture(write_yaml, mobile_space):
    lut, arch_keys = proxyless_mobile_lut(seed=1)
    res = P.import_file(write_yaml(lut), device_name="pixel1")
    assert res.unmapped == []
    df = res.table.df
    # every key is kept in source_key, and each op the space needs has exactly one row
    assert set(df["source_key"]) == set(lut)
    assert set(df["signature"]) == {s.signature for s in mobile_space.table_specs()}
    # the candidate spec of each layer is the row of its key
    by_key = {k: g for k, g in df.groupby("source_key")}
    st1 = mobile_space.layers[0]
    key = pnas_key("expanded_conv", [112, 112, 16], [56, 56, 24], 6, 5, 2, 0)
    assert mobile_space.candidate_spec(st1, "mbconv_e6_k5").signature in set(by_key[key]["signature"])
    assert len(by_key[key]) == 1 and by_key[key]["median_ms"].iloc[0] == lut[key]["mean"]
    assert by_key[key]["std_ms"].iloc[0] == pytest.approx(math.sqrt(lut[key]["var"]))
    assert by_key[key]["n_samples"].iloc[0] == lut[key]["count"]
    # an architecture's estimate is the sum of its keys' means
    model = LatencyModel(res.table)
    for seed in range(3):
        import random
        rng = random.Random(seed)
        choices = [rng.choice(lay.candidates) for lay in mobile_space.layers]
        est = model.estimate_arch(mobile_space, choices)
        assert est["from_predictor"] == 0
        assert est["sum_ms"] == pytest.approx(sum(lut[k]["mean"] for k in arch_keys(choices)))


def test_fixed_layer_keys_are_the_fused_layers_of_the_space(write_yaml, mobile_space):
    conv = pnas_key("Conv", [224, 224, 3], [112, 112, 32])
    mix = pnas_key("Conv_1", [7, 7, 320], [7, 7, 1280])
    logits = pnas_key("Logits", [7, 7, 1280], [1000])
    lut = {conv: {"count": 10, "mean": 2.5, "var": 0.01}, mix: {"count": 10, "mean": 1.5, "var": 0.0},
           logits: {"count": 10, "mean": 0.5, "var": 0.0004}}
    res = P.import_file(write_yaml(lut), device_name="pixel1")
    df = res.table.df.set_index("source_key")
    assert len(df) == 3 and set(df["kind"]) == {"sequence"}
    # one row per key, holding what the key measured, with the space's fixed-layer signature
    assert [df.loc[k, "signature"] for k in (conv, mix, logits)] == \
        [s.signature for s in mobile_space.fixed_specs if s.kind == "sequence"]
    ops = {k: [o["kind"] for o in json.loads(df.loc[k, "spec"])["ops"]] for k in lut}
    assert ops == {conv: ["conv2d", "bn", "relu6"], mix: ["conv2d", "bn", "relu6"],
                   logits: ["global_avgpool", "fc"]}
    stem = json.loads(df.loc[conv, "spec"])["ops"][0]
    assert (stem["input"], stem["kernel"], stem["stride"], stem["out_channels"]) == \
        ([1, 3, 224, 224], 3, 2, 32)
    for k, v in lut.items():
        assert df.loc[k, "median_ms"] == v["mean"] and df.loc[k, "n_samples"] == v["count"]
    assert (df["median_ms"] > 0).all()


def test_measured_fixed_layers_export_to_lut_keys_and_back(tmp_path, mobile_space):
    """The proxyless-mobile fixed layers measured on this CPU become the LUT's keys."""
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table
    from tests.conftest import FAST_PROTOCOL
    out = tmp_path / "fixed.parquet"
    build_table(mobile_space.fixed_specs, [get_backend("cpu")], out, protocol=FAST_PROTOCOL,
                quiet=True, log=lambda m: None)
    measured = read_table(out)
    lut, skipped = P.export_lut(measured)
    assert skipped == []
    assert set(lut) == {pnas_key("Conv", [224, 224, 3], [112, 112, 32]),
                        pnas_key("expanded_conv", [112, 112, 32], [112, 112, 16], 1, 3, 1, 0),
                        pnas_key("Conv_1", [7, 7, 320], [7, 7, 1280]),
                        pnas_key("Logits", [7, 7, 1280], [1000])}
    P.write_lut(tmp_path / "cpu.yaml", lut)
    back = P.import_file(tmp_path / "cpu.yaml", device_name="cpu").table
    m = measured.df.set_index("signature")
    b = back.df.set_index("signature")
    assert set(b.index) == set(m.index) == {s.signature for s in mobile_space.fixed_specs}
    for sig in m.index:
        assert b.loc[sig, "median_ms"] == m.loc[sig, "mean_ms"]  # a LUT carries the mean
        assert b.loc[sig, "std_ms"] == pytest.approx(m.loc[sig, "std_ms"])
        assert b.loc[sig, "n_samples"] == m.loc[sig, "n_samples"]


def test_ofa_keys_with_std_se_hs_and_middle_channels(write_yaml):
    k1 = pnas_key("expanded_conv", [56, 56, 24], [56, 56, 24], 72, 3, 1, 1, se=0, hs=0)
    k2 = pnas_key("expanded_conv", [28, 28, 40], [14, 14, 80], 240, 5, 2, 0, se=1, hs=1)
    k3 = pnas_key("expanded_conv", [14, 14, 80], [14, 14, 80], 200, 3, 1, 1, se=0, hs=1)
    k4 = pnas_key("Conv_2", [1, 1, 960], [1, 1, 1280])
    k5 = pnas_key("Logits", [1, 1, 1280], [1000])
    k6 = pnas_key("Conv", [224, 224, 3], [112, 112, 16])
    k7 = pnas_key("AvgPool2D", [7, 7, 960], [1, 1, 960])
    lut = {k: {"count": 20, "mean": 1.0 + i, "std": 0.1 * (i + 1)} for i, k in
           enumerate([k1, k2, k3, k4, k5, k6, k7])}
    res = P.import_file(write_yaml(lut), device_name="pixel1")
    assert res.unmapped == []
    assert res.table.meta["import"]["flavor"] == "ofa"
    df = res.table.df.set_index("source_key")
    mb = res.table.df[res.table.df["kind"] == "mbconv"].set_index("source_key")
    assert mb.loc[k1, "expand"] == 3 and mb.loc[k2, "expand"] == 6 and mb.loc[k3, "expand"] == 2.5
    s2 = json.loads(mb.loc[k2, "spec"])
    assert s2["se"] is True and s2["activation"] == "hswish" and s2["stride"] == 2
    assert json.loads(mb.loc[k1, "spec"])["residual"] is True
    # OFA MobileNetV3 blocks without h-swish use plain ReLU (not ReLU6)
    assert json.loads(mb.loc[k1, "spec"])["activation"] == "relu"
    assert json.loads(mb.loc[k3, "spec"])["activation"] == "hswish"
    assert mb.loc[k2, "std_ms"] == pytest.approx(lut[k2]["std"])
    # Conv_2 is a 1x1 conv + hswish (no BN); Logits on 1x1 input is the classifier alone
    def ops(k):
        spec = json.loads(df.loc[k, "spec"])
        return [o["kind"] for o in spec["ops"]] if spec["kind"] == "sequence" else [spec["kind"]]
    assert ops(k4) == ["conv2d", "hswish"] and ops(k5) == ["fc"]
    assert ops(k6) == ["conv2d", "bn", "hswish"] and ops(k7) == ["global_avgpool"]
    assert df.loc[k5, "median_ms"] == lut[k5]["mean"]
    assert len(df) == len(lut)


def test_malformed_and_unmappable_keys_are_reported_not_dropped(write_yaml):
    good = pnas_key("expanded_conv", [56, 56, 24], [28, 28, 40], 3, 5, 2, 0)
    bad = {
        "garbage": "needs input: and output:",
        "expanded_conv-input:112x112-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0": "HxWxC",
        "expanded_conv-input:56x56x24-output:28x28x40-expand:3-kernel:x-stride:2-idskip:0":
            "not an integer",
        pnas_key("expanded_conv", [56, 56, 24], [56, 56, 40], 3, 3, 2, 0): "does not follow",
        pnas_key("expanded_conv", [56, 56, 24], [56, 56, 24], 3, 3, 1, 1, se=0, hs=0)[:-5]:
            "both se: and hs:",
        pnas_key("Pool", [7, 7, 10], [1, 1, 10]): "unknown layer type",
        pnas_key("expanded_conv", [56, 56, 24], [56, 56, 40], 3, 3, 1, 1): "residual",
    }
    lut = {good: {"count": 5, "mean": 1.25, "var": 0.001}}
    lut.update({k: {"count": 5, "mean": 1.0, "var": 0.0} for k in bad})
    zero = pnas_key("expanded_conv", [28, 28, 40], [28, 28, 40], 6, 3, 1, 1)
    lut[zero] = {"count": 5, "mean": 0.0, "var": 0.0}
    nomean = pnas_key("expanded_conv", [28, 28, 40], [28, 28, 40], 3, 3, 1, 1)
    lut[nomean] = {"count": 5, "var": 0.0}
    res = P.import_file(write_yaml(lut), device_name="pixel1")
    assert list(res.table.df["source_key"]) == [good]
    reasons = {u["key"]: u["reason"] for u in res.unmapped}
    assert set(reasons) == set(bad) | {zero, nomean}
    for key, why in bad.items():
        assert why in reasons[key], (key, reasons[key])
    assert "positive" in reasons[zero] and "no mean" in reasons[nomean]


@pytest.mark.parametrize("flavor", ["proxylessnas", "ofa"])
def test_export_then_import_gives_the_same_rows(write_yaml, tmp_path, flavor):
    if flavor == "proxylessnas":
        lut, _ = proxyless_mobile_lut(seed=2)
    else:
        lut = {pnas_key("expanded_conv", [56, 56, 24], [56, 56, 24], 72, 3, 1, 1, se=1, hs=0):
               {"count": 9, "mean": 1.5, "std": 0.25},
               pnas_key("Conv", [224, 224, 3], [112, 112, 16]): {"count": 9, "mean": 2.5, "std": 0.5},
               pnas_key("Conv_1", [7, 7, 160], [7, 7, 960]): {"count": 9, "mean": 0.75, "std": 0.1},
               pnas_key("AvgPool2D", [7, 7, 960], [1, 1, 960]): {"count": 9, "mean": 0.05, "std": 0.01},
               pnas_key("Conv_2", [1, 1, 960], [1, 1, 1280]): {"count": 9, "mean": 0.5, "std": 0.05},
               pnas_key("Logits", [1, 1, 1280], [1000]): {"count": 9, "mean": 0.25, "std": 0.0}}
    first = P.import_file(write_yaml(lut), device_name="pixel1")
    write_table(tmp_path / "a.parquet", first.table)
    out, skipped = P.export_lut(read_table(tmp_path / "a.parquet"))
    assert skipped == []
    assert set(out) == set(lut)
    field = "std" if flavor == "ofa" else "var"
    for k, v in lut.items():
        assert out[k]["mean"] == v["mean"] and out[k]["count"] == v["count"]
        assert out[k][field] == pytest.approx(v[field], rel=1e-12, abs=1e-15)
    P.write_lut(tmp_path / "b.yaml", out)
    assert set(yaml.safe_load((tmp_path / "b.yaml").read_text())) == set(lut)
    second = P.import_file(tmp_path / "b.yaml", device_name="pixel1")
    a, b = _rows(first.table), _rows(second.table)
    assert a[ROW_COLS].equals(b[ROW_COLS])
    assert a["std_ms"].to_numpy() == pytest.approx(b["std_ms"].to_numpy(), rel=1e-12, abs=1e-15,
                                                   nan_ok=True)


def test_unit_conversion_and_fingerprint(write_yaml):
    key = pnas_key("expanded_conv", [56, 56, 24], [28, 28, 40], 3, 5, 2, 0)
    path = write_yaml({key: {"count": 3, "mean": 1500.0, "var": 400.0}})
    res = P.import_file(path, device_name="pixel1", unit="us")
    row = res.table.df.iloc[0]
    assert row["median_ms"] == pytest.approx(1.5) and row["std_ms"] == pytest.approx(0.02)
    other = P.import_file(path, device_name="pixel2")
    assert other.table.df["device_fingerprint"].iloc[0] != row["device_fingerprint"]
    fp = row["device_fingerprint"]
    assert res.table.meta["devices"][fp]["label"] == "pixel1"
    assert res.table.meta["import"]["unit"] == "us" and res.table.meta["import"]["source"] == \
        "import:proxylessnas"


def test_whole_file_errors_are_user_errors(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    for name in ("list.yaml", "bad.yaml", "missing.yaml"):
        with pytest.raises(UserError):
            P.import_file(tmp_path / name, device_name="x")


def test_keys_too_large_to_measure_or_store_are_reported_not_crashing(write_yaml):
    good = pnas_key("expanded_conv", [16, 16, 8], [8, 8, 16], 3, 3, 2, 0)
    huge = pnas_key("expanded_conv", [16, 16, 10**9], [16, 16, 10**9], 6, 3, 1, 1)
    counted = pnas_key("expanded_conv", [8, 8, 16], [8, 8, 16], 6, 3, 1, 1)
    lut = {good: {"count": 5, "mean": 1.0, "var": 0.0}, huge: {"count": 5, "mean": 1.0},
           counted: {"count": 10**30, "mean": 1.0}}
    res = P.import_file(write_yaml(lut), device_name="pixel1")
    assert list(res.table.df["source_key"]) == [good]
    reasons = {u["key"]: u["reason"] for u in res.unmapped}
    assert "overflow 64-bit integers" in reasons[huge]
    assert "expected an integer from 1 to 2**63-1" in reasons[counted]


@pytest.mark.parametrize("fields, activation", [
    ("", "relu6"),               # ProxylessNAS family: ReLU6 everywhere
    ("-se:0-hs:0", "relu"),      # OFA MobileNetV3 without h-swish: plain ReLU
    ("-se:1-hs:0", "relu"),
    ("-se:0-hs:1", "hswish"),
])
def test_block_activation_follows_the_source_family(write_yaml, fields, activation):
    e = 72 if fields else 3  # OFA keys give the middle channels, ProxylessNAS the ratio
    key = f"expanded_conv-input:56x56x24-output:56x56x24-expand:{e}-kernel:3-stride:1-idskip:1{fields}"
    res = P.import_file(write_yaml({key: {"count": 5, "mean": 1.5, "std": 0.1}}),
                        device_name="phone")
    assert res.unmapped == []
    spec = json.loads(res.table.df["spec"].iloc[0])
    assert spec["activation"] == activation
    # export gives the same key back for the family's activation
    flavor = "ofa" if fields else "proxylessnas"
    lut, skipped = P.export_lut(res.table, flavor=flavor)
    assert list(lut) == [key] and skipped == []


def test_ofa_export_refuses_relu6_blocks_with_the_reason():
    from hwprof.latency.specs import parse_spec
    from tests.synthetic import synthetic_table
    spec = parse_spec({"kind": "mbconv", "input": [1, 24, 56, 56], "out_channels": 24,
                       "expand": 3, "kernel": 3, "activation": "relu6"})
    lut, skipped = P.export_lut(synthetic_table(specs=[spec]), flavor="ofa")
    assert lut == {} and "relu6 blocks are the ProxylessNAS family" in skipped[0]["reason"]


def test_flat_lut_reader_reads_what_yaml_reads_and_defers_anything_else():
    import yaml

    from hwprof.latency.adapters.lutread import read_flat_lut
    text = ("expanded_conv-input:56x56x24-output:28x28x40-expand:3-kernel:5-stride:2-idskip:0:\n"
            "  count: 1000\n  mean: 3.12\n  var: 0.021\n"
            "Logits-input:7x7x1280-output:1000:\n  count: 7\n  mean: 1.5e+00\n  std: 0\n")
    assert read_flat_lut(text) == yaml.safe_load(text)
    assert isinstance(read_flat_lut(text)["Logits-input:7x7x1280-output:1000"]["count"], int)
    for other in ("a: {count: 1, mean: 2}\n",                 # flow style
                  "'quoted-key':\n  mean: 1.0\n",             # quoted key
                  "k-input:1x1x1-output:1:\n  mean: 1e-3\n",  # yaml 1.1 reads 1e-3 as a string
                  "k-input:1x1x1-output:1:\n"):               # a key without values
        assert read_flat_lut(other) is None


def test_large_luts_map_in_worker_processes_with_the_same_rows(write_yaml, monkeypatch):
    from hwprof.latency.adapters import lutread
    keys = {pnas_key("expanded_conv", [h, h, 16], [h, h, 16], 3, k, 1, 1): {
        "count": 3, "mean": 0.5 + h / 100, "var": 0.01} for h in range(8, 40) for k in (3, 5, 7)}
    keys["bad-key"] = {"mean": 1.0}
    path = write_yaml(keys)
    serial = P.import_file(path, device_name="d")
    monkeypatch.setattr(lutread, "PARALLEL_MIN_KEYS", 10)
    monkeypatch.setattr(lutread, "CHUNK", 7)
    par = P.import_file(path, device_name="d")
    cols = ["signature", "source_key", "median_ms", "std_ms", "n_samples"]
    assert par.table.df[cols].equals(serial.table.df[cols]) and len(par.table.df) == 96
    assert par.unmapped == serial.unmapped and par.unmapped[0]["key"] == "bad-key"
