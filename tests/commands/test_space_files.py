"""A space file works wherever a built-in name does: spaces --file, build-table, table
validate, export to a LUT and import back, arch files and estimate."""

import json
import subprocess
import sys

import pytest
import yaml

from hwprof.latency.arch import load_arch, save_arch
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table, write_table
from tests.synthetic import synthetic_table

# a ProxylessNAS-style space (fixed layers fused as the published LUTs measure them)
PNAS = {
    "description": "small ProxylessNAS-style space for the CLI tests",
    "input": [1, 3, 32, 32],
    "fused_fixed": True,
    "stem": [{"conv": {"out": 16, "stride": 2}}, {"mbconv": {"out": 8, "expand": 1}}],
    "stages": [{"out": 16, "stride": 2, "depth": [1, 3]}, {"out": 24, "stride": 2, "depth": 2}],
    "candidates": [{"mbconv": {"expand": [3, 6], "kernel": [3, 5]}}],
    "head": [{"conv": {"out": 64, "kernel": 1}}, {"classifier": {"classes": 10}}],
}
# four ops: a conv, one block, pool and fc
SMALL = {"input": [1, 3, 16, 16], "stem": [{"conv": {"out": 8, "bn": False, "act": "none"}}],
         "stages": [{"out": 8, "depth": 1, "act": "hswish", "se": True}],
         "candidates": [{"mbconv": {"expand": 3, "kernel": 3}}],
         "head": [{"classifier": {"classes": 10}}]}


def hw(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "hwprof", *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def pnas_file(tmp_path):
    path = tmp_path / "pnas.yaml"
    path.write_text(yaml.safe_dump(PNAS))
    return path


def test_spaces_file_good_and_bad(pnas_file, tmp_path):
    rep = json.loads(hw("spaces", "--file", pnas_file, "--json").stdout)
    sp = get_space(str(pnas_file))
    assert rep["valid"] is True and rep["n_table_ops"] == len(sp.table_specs())
    assert len(rep["layers"]) == 5 and rep["n_candidates"] == 4 + 5 + 5 + 4 + 4
    human = hw("spaces", "--file", pnas_file).stdout
    assert "5 searchable layers" in human and f"{len(sp.table_specs())} table ops" in human
    assert "stage1.3" in human and "depth 1-3" in human
    bad = tmp_path / "my.yaml"
    bad.write_text(yaml.safe_dump({**PNAS, "stages": [{"out": 16, "stride": 3, "depth": 1}]}))
    p = hw("spaces", "--file", bad, ok=False)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == "hwprof: error: my.yaml: stages[0].stride: expected 1 or 2, got 3"
    p = hw("spaces", "--file", tmp_path / "none.yaml", ok=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_build_table_from_a_space_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "small.parquet"
    hw("build-table", "--device", "cpu", "--space", path, "--out", out, "--time-cap", "0.2",
       "--min-samples", "5", "--min-span", "0", "--quiet")
    t = read_table(out).df
    want = {s.signature for s in get_space(str(path)).table_specs()}
    assert set(t["signature"]) == want and len(want) == 4
    se_block = t[t["kind"] == "mbconv"].iloc[0]
    assert json.loads(se_block["spec"])["se"] is True and se_block["latency_ms"] > 0
    v = json.loads(hw("table", "validate", out, "--space", path, "--json").stdout)
    assert v["valid"] is True and v["space"]["missing"] == 0


def test_lut_export_import_and_arch_estimate(pnas_file, tmp_path):
    sp = get_space(str(pnas_file))
    specs = sp.table_specs()
    medians = [0.1 + 0.01 * i for i in range(len(specs))]
    table = tmp_path / "t.parquet"
    write_table(table, synthetic_table(specs=specs, medians=medians))
    # export to a ProxylessNAS LUT and import it back: every op, the same signatures
    rep = json.loads(hw("export", table, "--format", "proxylessnas", "--space", pnas_file,
                        "--out", tmp_path / "t.yaml", "--json").stdout)
    assert rep["skipped"] == 0
    lut = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert len(lut) == len(specs) and "Conv-input:32x32x3-output:16x16x16" in lut
    hw("import", "proxylessnas", tmp_path / "t.yaml", "--device-name", "cpu", "--out",
       tmp_path / "back.parquet")
    back = read_table(tmp_path / "back.parquet").df
    assert set(back["signature"]) == {s.signature for s in specs}
    # an arch file of the space file: estimate it; it survives the file moving away
    choices = [lay.candidates[0] for lay in sp.layers]
    choices[2] = "skip"
    save_arch(tmp_path / "a.json", sp, choices)
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["space"] == str(pnas_file.resolve()) and "space_definition" in saved
    est = json.loads(hw("estimate", "--arch", tmp_path / "a.json", "--table", table,
                        "--no-calibration", "--json").stdout)
    by_sig = dict(zip((s.signature for s in specs), medians))
    want = sum(by_sig[s.signature] for s in sp.arch_specs(choices))
    assert est["estimate_ms"] == pytest.approx(want, rel=1e-6)
    pnas_file.rename(tmp_path / "moved.yaml")
    space, got, _ = load_arch(tmp_path / "a.json")
    assert got == choices and [s.signature for s in space.arch_specs(got)] == \
        [s.signature for s in sp.arch_specs(choices)]


# a small elastic space with squeeze-excite, h-swish and a plain-conv candidate
ELASTIC = {"input": [1, 3, 16, 16],
           "stem": [{"conv": {"out": 8, "act": "hswish"}}],
           "stages": [{"out": 16, "stride": 2, "depth": [1, 3], "se": True, "act": "hswish"}],
           "candidates": [{"mbconv": {"expand": [3], "kernel": [3, 5]}}, {"conv": {"kernel": 3}}],
           "head": [{"conv": {"out": 32, "kernel": 1}}, {"classifier": {"classes": 10}}]}


def test_search_on_a_space_file(tmp_path):
    path = tmp_path / "elastic.yaml"
    path.write_text(yaml.safe_dump(ELASTIC))
    sp = get_space(str(path))
    specs = sp.table_specs()
    table = tmp_path / "t.parquet"
    write_table(table, synthetic_table(specs=specs, medians=[0.05 * (1 + i % 4)
                                                              for i in range(len(specs))]))
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "hwprof", "search", "--table", str(table), "--space",
                        str(path), "--latency-budget", "mid", "--algo", "darts", "--data",
                        "digits", "--epochs", "1", "--retrain-epochs", "1", "--no-measure",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    arch = json.loads((out / "arch.json").read_text())
    assert arch["space"] == str(path.resolve()) and len(arch["choices"]) == 3
    assert arch["choices"][0] != "skip"                  # the stage's min depth is 1
    kept = [c != "skip" for c in arch["choices"]]
    assert kept == sorted(kept, reverse=True)            # skips are the trailing layers
    rep = json.loads((out / "report.json").read_text())
    assert rep["predicted_ms"] <= rep["budget_ms"]
