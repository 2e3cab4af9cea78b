"""Generic CSV / JSON import with a column map and units; CSV / JSON export round trips."""

import json

import pandas as pd
import pytest

from hwprof.errors import UserError
from hwprof.latency.adapters import tabular as T
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.conftest import FAST_PROTOCOL


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real table: the tiny space measured on this CPU."""
    out = tmp_path_factory.mktemp("tab") / "tiny.parquet"
    build_table(get_space("tiny").table_specs(), [get_backend("cpu")], out, protocol=FAST_PROTOCOL,
                quiet=True, log=lambda m: None)
    return read_table(out)


def test_csv_with_column_map_constants_and_microseconds(tmp_path):
    csv = tmp_path / "their.csv"
    csv.write_text("name,op,c,hw,oc,k,s,lat_us,sd_us,runs\n"
                   "a,conv2d,16,32,32,3,1,1250.5,12.5,40\n"
                   "b,conv2d,16,32,32,3,2,400,,40\n"
                   "c,dwconv2d,32,16,,5,1,90,1,7\n"
                   "d,conv2d,16,32,32,3,1,-3,1,40\n"
                   "e,warp,16,32,32,3,1,5,1,40\n"
                   "f,conv2d,16,,32,3,1,5,1,40\n")
    colmap = T.parse_pairs("key=name,kind=op,in_channels=c,in_h=hw,out_channels=oc,kernel=k,"
                           "stride=s,latency_ms=lat_us,std=sd_us,count=runs", "--map")
    res = T.import_file(csv, device_name="jetson", colmap=colmap,
                        const=T.parse_pairs("batch=2", "--const"), unit="us")
    df = res.table.df.set_index("source_key")
    assert sorted(df.index) == ["a", "b", "c"]
    assert df.loc["a", "median_ms"] == pytest.approx(1.2505)
    assert df.loc["a", "std_ms"] == pytest.approx(0.0125) and df.loc["a", "n_samples"] == 40
    assert pd.isna(df.loc["b", "std_ms"])
    want = parse_spec({"kind": "conv2d", "input": [2, 16, 32, 32], "out_channels": 32, "kernel": 3,
                       "stride": 2})
    assert df.loc["b", "signature"] == want.signature
    # dwconv2d takes no out_channels: the empty cell is not passed; the row still maps
    assert df.loc["c", "kind"] == "dwconv2d" and df.loc["c", "kernel"] == 5
    reasons = {u["key"]: u["reason"] for u in res.unmapped}
    assert set(reasons) == {"d", "e", "f"}
    assert "positive" in reasons["d"] and "warp" in reasons["e"] and "in_h" in reasons["f"]
    assert res.table.meta["import"]["unit"] == "us"
    assert set(df["source"]) == {"import:csv"}


@pytest.mark.parametrize("unit,scale", [("ms", 1.0), ("us", 1e-3), ("s", 1e3)])
def test_units(tmp_path, unit, scale):
    csv = tmp_path / "t.csv"
    csv.write_text("kind,in_channels,in_h,latency\nrelu6,8,8,2.5\n")
    res = T.import_file(csv, device_name="x", unit=unit)
    assert res.table.df["median_ms"].iloc[0] == pytest.approx(2.5 * scale)


def test_json_records_and_lines(tmp_path):
    recs = [{"spec": {"kind": "bn", "input": [1, 8, 4, 4]}, "latency": 0.5, "key": "k1"},
            {"kind": "relu", "in_features": 10, "latency": 0.25}]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    for name in ("a.json", "b.jsonl"):
        res = T.import_file(tmp_path / name, device_name="x")
        assert res.unmapped == []
        df = res.table.df.set_index("kind")
        assert df.loc["bn", "source_key"] == "k1" and df.loc["relu", "source_key"] == "row:2"
        assert json.loads(df.loc["relu", "spec"])["input"] == [1, 10]


def test_mapping_mistakes_are_user_errors(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("kind,c,h,lat\nrelu,8,8,1\n")
    with pytest.raises(UserError, match="unknown hwprof field"):
        T.parse_pairs("latencyy=lat", "--map")
    with pytest.raises(UserError, match="lacks"):
        T.import_file(csv, device_name="x", colmap={"latency": "nope"})
    with pytest.raises(UserError, match="no latency column"):
        T.import_file(csv, device_name="x")
    with pytest.raises(UserError, match="unknown unit"):
        T.import_file(csv, device_name="x", colmap={"latency": "lat"}, unit="ns")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_and_reimport_a_measured_table(measured, tmp_path, fmt):
    path = tmp_path / f"t.{fmt}"
    n = (T.export_csv if fmt == "csv" else T.export_json)(measured, path)
    assert n == len(measured.df)
    res = T.import_file(path, device_name="cpu-copy")
    assert res.unmapped == []
    a = measured.df.sort_values("signature").reset_index(drop=True)
    b = res.table.df.sort_values("signature").reset_index(drop=True)
    assert list(a["signature"]) == list(b["signature"])
    for col in ("latency_ms", "mean_ms", "std_ms", "n_samples", "macs"):
        assert a[col].tolist() == b[col].tolist(), col
    # the export's latency is the row's latency (at the table's reference level); an imported
    # row has no paired samples, so that is its median too
    assert b["median_ms"].tolist() == a["latency_ms"].tolist()


def test_rows_too_large_to_measure_or_store_are_reported_not_crashing(tmp_path):
    csv = tmp_path / "big.csv"
    csv.write_text("op,c,hw,oc,k,lat,runs\n"
                   "conv2d,1000000000,100000,1000000000,3,250,5\n"
                   "relu,1,24000,,,1,5\n"
                   "relu6,8,16,,,2,100000000000000000000000\n"
                   "relu6,8,16,,,2,7\n")
    colmap = T.parse_pairs("kind=op,in_channels=c,in_h=hw,out_channels=oc,kernel=k,"
                           "latency_ms=lat,count=runs", "--map")
    res = T.import_file(csv, device_name="big", colmap=colmap)
    assert res.table.df["n_samples"].tolist() == [7]
    reasons = [u["reason"] for u in res.unmapped]
    assert "overflow 64-bit integers" in reasons[0] and "at most 2 GiB" in reasons[1]
    assert "expected an integer from 1 to 2**63-1" in reasons[2]
