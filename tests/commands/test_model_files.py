"""estimate / measure-arch on model files, and table-only lookups (issue 15's contract)."""

import json

import pytest

from hwprof.cli import main
from hwprof.latency.modelfile import lower_file
from hwprof.latency.modelfile.onnx import converter_available
from hwprof.latency.modelfile.zoo import mobilenet_v2_nnp, save_onnx
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table, write_table
from tests.latency.modelfile.conftest import export_arch  # noqa: F401 (fixture)
from tests.synthetic import synthetic_table

FAST = ["--time-cap", "0.3", "--min-samples", "5", "--min-span", "0"]
CHOICES = ["mbconv_e6_k3", "mbconv_e3_k3"]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def tiny(tmp_path, export_arch):  # noqa: F811
    space = get_space("tiny")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": "tiny", "choices": CHOICES}))
    nnp = export_arch(space, CHOICES, tmp_path / "net.nnp")
    table = tmp_path / "t.parquet"
    write_table(table, synthetic_table(specs=space.table_specs()))
    return {"space": space, "arch": arch, "nnp": nnp, "table": table, "dir": tmp_path}


def test_nnp_from_search_estimates_like_its_arch_json(tiny, capsys):
    rc, out, _ = run(capsys, "estimate", "--arch", tiny["arch"], "--table", tiny["table"], "--json")
    arch = json.loads(out)
    assert rc == 0 and arch["complete"] and arch["missing"] == [] and arch["unsupported"] == []
    rc, out, _ = run(capsys, "estimate", "--model", tiny["nnp"], "--table", tiny["table"],
                     "--json")
    model = json.loads(out)
    assert rc == 0 and model["complete"]
    for key in ("estimate_ms", "sum_ms", "from_table", "from_predictor"):
        assert model[key] == arch[key], key
    n = len(tiny["space"].arch_specs(CHOICES))
    assert model["from_table"] == n and model["n_ops"] == n and model["unsupported"] == []
    assert [o["source"] for o in model["ops"]] == ["table"] * n
    assert sum(o["latency_ms"] for o in model["ops"]) == pytest.approx(model["sum_ms"])
    assert model["ops"][3]["kind"] == "mbconv" and len(model["ops"][3]["functions"]) >= 8


def test_a_table_alone_lists_every_missing_op_and_the_partial_sum(tiny, capsys):
    specs = tiny["space"].arch_specs(CHOICES)
    gone = {specs[1].signature, specs[4].signature}  # a bn and an mbconv
    kept = [s for s in tiny["space"].table_specs() if s.signature not in gone]
    table = tiny["dir"] / "partial.parquet"
    write_table(table, synthetic_table(specs=kept))
    full = json.loads(run(capsys, "estimate", "--arch", tiny["arch"], "--table", tiny["table"],
                          "--json")[1])
    lat = read_table(table).df.set_index("signature")["latency_ms"]
    partial = float(sum(lat[s.signature] for s in specs if s.signature not in gone))
    assert partial < full["sum_ms"]
    for flag, path in (("--arch", tiny["arch"]), ("--model", tiny["nnp"])):
        rc, out, _ = run(capsys, "estimate", flag, path, "--table", table, "--json")
        est = json.loads(out)
        assert rc == 1 and not est["complete"]
        assert [m["index"] for m in est["missing"]] == [1, 4]
        assert est["from_table"] == len(specs) - 2
        assert est["sum_ms"] == pytest.approx(partial)
    rc, out, _ = run(capsys, "estimate", "--model", tiny["nnp"], "--table", table)
    assert rc == 1 and "partial sum of ops" in out and out.count("missing      op") == 2


def test_predict_contract_from_a_table_alone(tiny, capsys):
    specs = tiny["space"].arch_specs(CHOICES)
    unknown = {"kind": "conv2d", "input": [1, 8, 9, 9], "out_channels": 16, "kernel": 3}
    ops = tiny["dir"] / "ops.jsonl"
    ops.write_text("\n".join(json.dumps(s.to_dict()) for s in specs[:2]) + "\n"
                   + json.dumps(unknown) + "\n" + json.dumps(specs[2].to_dict()) + "\n")
    rc, out, _ = run(capsys, "predict", "--table", tiny["table"], "--ops", ops, "--json")
    rep = json.loads(out)
    assert rc == 1 and set(rep) == {"total_ms", "ops", "missing"} and rep["missing"] == [2]
    assert [o["source"] for o in rep["ops"]] == ["table", "table", "missing", "table"]
    assert rep["ops"][2]["latency_ms"] is None and rep["ops"][2]["spec"]["kind"] == "conv2d"
    assert set(rep["ops"][0]) == {"kind", "signature", "latency_ms", "source", "spec"}
    assert rep["total_ms"] == pytest.approx(sum(o["latency_ms"] for o in rep["ops"]
                                                if o["latency_ms"] is not None))
    rc, out, _ = run(capsys, "predict", "--table", tiny["table"], "--ops", ops)
    assert rc == 1 and "1 missing" in out and "partial sum of 3 of 4" in out
    ops.write_text("\n".join(json.dumps(s.to_dict()) for s in specs) + "\n")
    rc, out, _ = run(capsys, "predict", "--table", tiny["table"], "--ops", ops, "--json")
    assert rc == 0 and json.loads(out)["missing"] == []
    rc, _, err = run(capsys, "predict", "--ops", ops)
    assert rc == 2 and "--table and/or --predictor" in err


def test_unsupported_functions_are_named_and_the_sum_is_partial(tiny, capsys):
    import nnabla as nn
    import nnabla.functions as F

    from hwprof.latency.modelfile.nnp import load_protograph  # noqa: F401
    from hwprof.latency.modelfile.zoo import save_graph
    x = nn.Variable((1, 8, 16, 16))
    y = F.softmax(F.relu(x), axis=1)
    path = save_graph(tiny["dir"] / "soft.nnp", x, y)
    write_table(tiny["dir"] / "r.parquet", synthetic_table(
        specs=[{"kind": "relu", "input": [1, 8, 16, 16]}], medians=[0.25]))
    rc, out, _ = run(capsys, "estimate", "--model", path, "--table", tiny["dir"] / "r.parquet",
                     "--json")
    est = json.loads(out)
    assert rc == 1 and est["sum_ms"] == 0.25 and est["from_table"] == 1
    assert [(u["op"], u["reason"]) for u in est["unsupported"]] == [
        ("Softmax", "no hwprof op kind for nnabla function Softmax")]
    rc, _, err = run(capsys, "measure-arch", "--model", path, *FAST)
    assert rc == 2 and "have no hwprof op kind" in err and "Softmax" in err


@pytest.mark.skipif(not converter_available(), reason="the 'onnx' extra is not installed")
def test_onnx_mobilenet_v2_estimates_with_every_op_supported(tmp_path, capsys):
    nnp = mobilenet_v2_nnp(tmp_path / "mbv2.nnp")
    onnx = save_onnx(nnp, tmp_path / "mbv2.onnx")
    specs = lower_file(nnp).specs
    table = tmp_path / "mbv2.parquet"
    write_table(table, synthetic_table(specs=specs))
    rc, out, _ = run(capsys, "estimate", "--model", onnx, "--table", table, "--json")
    est = json.loads(out)
    assert rc == 0 and est["complete"] and est["unsupported"] == [] and est["missing"] == []
    assert est["from_table"] == len(specs) == 25  # stem 3, 17 blocks, head 3, pool, classifier
    assert [o["kind"] for o in est["ops"]].count("mbconv") == 17


def test_estimate_and_table_show_fit_an_imported_table(tmp_path, capsys):
    from hwprof.latency.adapters import proxylessnas as P
    space = get_space("proxyless-mobile")
    lut, _ = P.export_lut(synthetic_table(specs=space.table_specs()), flavor="proxylessnas")
    res = P.import_lut(lut, device_name="pixel1")
    table = tmp_path / "pixel1.parquet"
    write_table(table, res.table)
    rc, out, _ = run(capsys, "table", "show", table, "--json")
    show = json.loads(out)
    assert rc == 0 and show["not_converged"] == 0 and show["imported"]["source"] == \
        "import:proxylessnas"
    rc, out, _ = run(capsys, "table", "show", table)
    assert "cannot reach this device" in out and "CI target" not in out
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": "proxyless-mobile",
                                "choices": [lay.candidates[0] for lay in space.layers]}))
    rc, out, _ = run(capsys, "estimate", "--arch", arch, "--table", table)
    assert rc == 0 and "cannot be calibrated here" in out and "hwprof calibrate" not in out


def test_measure_arch_model_measures_the_lowered_network(tiny, capsys):
    rc, out, err = run(capsys, "measure-arch", "--model", tiny["nnp"], "--json", *FAST)
    assert rc == 0, err
    m = json.loads(out)
    assert m["model"] == str(tiny["nnp"]) and m["n_ops"] == len(
        tiny["space"].arch_specs(CHOICES))
    assert m["latency_ci_low_ms"] <= m["latency_ms"] <= m["latency_ci_high_ms"]


def test_model_file_mistakes_are_one_line_errors(tiny, capsys, monkeypatch):
    from hwprof.latency.modelfile import onnx
    bad = tiny["dir"] / "bad.nnp"
    bad.write_bytes(b"nope")
    rc, _, err = run(capsys, "estimate", "--model", bad, "--table", tiny["table"])
    assert rc == 2 and err.startswith("hwprof: error:") and "Traceback" not in err
    monkeypatch.setattr(onnx, "converter_available", lambda: False)
    m = tiny["dir"] / "m.onnx"
    m.write_bytes(b"\x08\x07")
    rc, _, err = run(capsys, "estimate", "--model", m, "--table", tiny["table"])
    assert rc == 2 and "pip install 'hwprof[onnx]'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:  # argparse's usage errors exit 2
        main(["estimate", "--model", str(tiny["nnp"]), "--arch", str(tiny["arch"])])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
