"""The reuse verbs end to end through the CLI: import, export, table merge/diff/plot/filter/
validate, fleets in `table show`. JSON contracts, exit codes, one-line errors."""

import json
import subprocess
import sys

import pyarrow.dataset as ds
import pytest
import yaml

from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table, write_table
from tests.synthetic import synthetic_table

HW = [sys.executable, "-m", "hwprof"]
KEY_A = "expanded_conv-input:16x16x8-output:8x8x16-expand:3-kernel:3-stride:2-idskip:0"
KEY_B = "expanded_conv-input:8x8x16-output:8x8x16-expand:6-kernel:3-stride:1-idskip:1"
CONV = "Conv-input:16x16x3-output:16x16x8"
# the tiny space's op set with made-up latencies: table tools are tested without timing this CPU
TINY = get_space("tiny").table_specs()


def hw(*argv, ok=True):
    p = subprocess.run(HW + [str(a) for a in argv], capture_output=True, text=True, timeout=300)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def one_line_error(p):
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("hwprof: error: ") and "Traceback" not in p.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("reuse")
    write_table(d / "cpu.parquet", synthetic_table(specs=TINY))
    lut = {KEY_A: {"count": 100, "mean": 0.75, "var": 0.0004},
           KEY_B: {"count": 100, "mean": 1.25, "var": 0.0009},
           CONV: {"count": 100, "mean": 0.5, "var": 0.0001},
           "expanded_conv-input:8x8x16-output:8x8x16-expand:6": {"count": 1, "mean": 1.0}}
    (d / "mobile.yaml").write_text(yaml.safe_dump(lut))
    return d


def test_import_proxylessnas_json_contract_and_round_trip(work):
    out = work / "pixel1.parquet"
    rep = json.loads(hw("import", "proxylessnas", work / "mobile.yaml", "--device-name", "pixel1",
                        "--out", out, "--json").stdout)
    assert rep["imported"] == 3 and rep["out"] == str(out)
    assert rep["unmapped"] == ["expanded_conv-input:8x8x16-output:8x8x16-expand:6"]
    t = read_table(out)
    assert set(t.df["source_key"]) == {KEY_A, KEY_B, CONV}
    assert t.df.loc[t.df["source_key"] == KEY_B, "median_ms"].iloc[0] == 1.25
    # again without --force is refused in one line
    assert "--force" in one_line_error(hw("import", "proxylessnas", work / "mobile.yaml",
                                          "--out", out, ok=False))
    # export to the yaml form and import it back: the same rows
    hw("export", out, "--format", "proxylessnas", "--out", work / "back.yaml")
    back = yaml.safe_load((work / "back.yaml").read_text())
    assert set(back) == {KEY_A, KEY_B, CONV} and back[KEY_A]["mean"] == 0.75
    hw("import", "proxylessnas", work / "back.yaml", "--device-name", "pixel1", "--out",
       work / "again.parquet")
    cols = ["signature", "median_ms", "n_samples", "source_key", "device_fingerprint"]
    a = t.df.sort_values("signature")[cols].reset_index(drop=True)
    b = read_table(work / "again.parquet").df.sort_values("signature")[cols].reset_index(drop=True)
    assert a.equals(b)


def test_import_csv_with_map_and_unit(work):
    (work / "their.csv").write_text("op,c,hw,k,lat\nrelu6,8,16,,250\nmaxpool,8,16,2,125\n"
                                    "conv2d,8,16,3,-1\n")
    rep = json.loads(hw("import", "csv", work / "their.csv", "--map",
                        "kind=op,in_channels=c,in_h=hw,kernel=k,latency_ms=lat", "--unit", "us",
                        "--device-name", "pi", "--out", work / "pi.parquet", "--json").stdout)
    assert rep["imported"] == 2 and rep["unmapped"] == ["row:3"]
    t = read_table(work / "pi.parquet")
    assert sorted(t.df["median_ms"]) == [0.125, 0.25]
    err = one_line_error(hw("import", "csv", work / "their.csv", "--map", "speed=lat", "--out",
                            work / "x.parquet", ok=False))
    assert "unknown hwprof field 'speed'" in err


def test_merge_policy_and_mixed_devices(work):
    cpu = work / "cpu.parquet"
    # the same device measured again: some ops faster, some slower than the first table
    again = [0.01 * (i + 1) * (0.8 if i % 2 else 1.25) for i in range(len(TINY))]
    write_table(work / "cpu2.parquet", synthetic_table(specs=TINY, medians=again))
    err = one_line_error(hw("table", "merge", cpu, work / "cpu2.parquet", "--out",
                            work / "m.parquet", ok=False))
    assert "--on-conflict" in err
    rep = json.loads(hw("table", "merge", cpu, work / "cpu2.parquet", "--on-conflict", "min",
                        "--out", work / "m.parquet", "--json").stdout)
    assert rep["rows"] == len(read_table(cpu).df) and rep["conflicts"] > 0
    a, b = read_table(cpu).df, read_table(work / "cpu2.parquet").df
    m = read_table(work / "m.parquet").df
    lo = {s: min(x, y) for s, x, y in zip(a["signature"], a["latency_ms"],
                                          b.set_index("signature").loc[a["signature"], "latency_ms"])}
    assert dict(zip(m["signature"], m["latency_ms"])) == lo
    err = one_line_error(hw("table", "merge", cpu, work / "pixel1.parquet", "--out",
                            work / "mixed.parquet", ok=False))
    assert "2 devices" in err and "--allow-mixed" in err
    hw("table", "merge", cpu, work / "pixel1.parquet", "--allow-mixed", "--out", work / "mixed.parquet")
    assert read_table(work / "mixed.parquet").df["device_fingerprint"].nunique() == 2


def test_diff_plot_and_table_plot(work):
    png = work / "diff.png"
    p = hw("table", "diff", work / "cpu.parquet", work / "cpu2.parquet", "--plot", png, "--json")
    rep = json.loads(p.stdout)
    assert rep["common"] == len(read_table(work / "cpu.parquet").df) and rep["median_ratio"] > 0
    assert rep["worst"] and {"kind", "a_ms", "b_ms", "ratio"} <= set(rep["worst"][0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = hw("table", "diff", work / "cpu.parquet", work / "cpu2.parquet").stdout
    assert "median" in text and "furthest" in text
    hw("table", "plot", work / "cpu.parquet", "--out", work / "t.png")
    assert (work / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (work / "t.png").stat().st_size > 10_000
    assert ".png" in one_line_error(hw("table", "plot", work / "cpu.parquet", "--out",
                                       work / "t.svg", ok=False))


def test_fleet_export_show_filter_validate(work):
    fleet = work / "fleet"
    hw("export", work / "cpu.parquet", "--format", "fleet", "--out", fleet)
    hw("export", work / "pixel1.parquet", "--format", "fleet", "--out", fleet)
    assert ds.dataset(fleet, partitioning="hive").count_rows() == \
        len(read_table(work / "cpu.parquet").df) + len(read_table(work / "pixel1.parquet").df)
    show = json.loads(hw("table", "show", fleet, "--json").stdout)
    assert len(show["devices"]) == 2 and show["rows"] == ds.dataset(fleet).count_rows()
    assert "pixel1" in hw("table", "show", fleet).stdout
    hw("table", "show", work / "cpu.parquet")  # the file path still works
    rep = json.loads(hw("table", "filter", fleet, "--device", "pixel1", "--kind", "mbconv",
                        "--out", work / "f.parquet", "--json").stdout)
    f = read_table(work / "f.parquet").df
    assert rep["rows"] == len(f) == 2 and set(f["kind"]) == {"mbconv"}
    v = hw("table", "validate", work / "cpu.parquet", "--space", "tiny", "--json")
    assert json.loads(v.stdout)["valid"] is True
    t = read_table(work / "cpu.parquet")
    t.df.loc[0, ["median_ms", "latency_ms"]] = 0.0
    from hwprof.latency.table import write_table
    write_table(work / "broken.parquet", t)
    v = hw("table", "validate", work / "broken.parquet", ok=False)
    assert v.returncode == 1 and "positive median" in v.stdout
    err = one_line_error(hw("table", "show", work, ok=False))
    assert "not a fleet" in err


def test_export_csv_json_and_space_lut(work):
    hw("export", work / "cpu.parquet", "--format", "csv", "--out", work / "cpu.csv")
    hw("export", work / "cpu.parquet", "--format", "json", "--out", work / "cpu.json")
    for name in ("cpu.csv", "cpu.json"):
        rep = json.loads(hw("import", name.split(".")[1], work / name, "--device-name", "cpu",
                            "--out", work / f"{name}.parquet", "--json").stdout)
        assert rep["imported"] == len(read_table(work / "cpu.parquet").df) and rep["unmapped"] == []
    rep = json.loads(hw("export", work / "cpu.parquet", "--format", "proxylessnas", "--space", "tiny",
                        "--out", work / "cpu.yaml", "--json").stdout)
    lut = yaml.safe_load((work / "cpu.yaml").read_text())
    t = read_table(work / "cpu.parquet").df
    assert "Conv-input:16x16x3-output:16x16x8" in lut and rep["skipped"] == 0
    stem = t[t["in_h"].eq(16) & t["kind"].isin(["conv2d", "bn", "relu6"]) & ~t["in_channels"].eq(16)]
    assert lut["Conv-input:16x16x3-output:16x16x8"]["mean"] == pytest.approx(stem["mean_ms"].sum())
    assert sum(k.startswith("expanded_conv") for k in lut) == (t["kind"] == "mbconv").sum()
