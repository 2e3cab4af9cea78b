"""Table files: round trips through pandas and pyarrow, versions, atomic writes."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hwprof.errors import TableError
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import (
    COLUMN_NAMES,
    META_KEY,
    SCHEMA_VERSION,
    LatencyTable,
    read_table,
    rows_frame,
    spec_columns,
    write_table,
)
from tests.damaged import DAMAGE


def _row(spec, median, fp="fp1", env="env1", status="ok"):
    r = spec_columns(parse_spec(spec))
    r.update({"device_fingerprint": fp, "env_key": env, "status": status, "device": "cpu",
              "median_ms": median if status == "ok" else None, "converged": True,
              "unstable": False, "n_samples": 10, "cv": 0.01, "runtime": "nnabla",
              "runtime_version": "1.39.0", "source": "measured",
              "measured_at": pd.Timestamp("2026-01-01", tz="UTC")})
    return r


SPECS = [{"kind": "relu", "input": [1, 4, 8, 8]},
         {"kind": "conv2d", "input": [1, 4, 8, 8], "out_channels": 8, "kernel": 3}]


def _table():
    t = LatencyTable.new()
    t.upsert(rows_frame([_row(SPECS[0], 0.01), _row(SPECS[1], 0.2)]))
    t.meta["devices"] = {"fp1": {"cpu_model": "test cpu"}}
    return t


def test_round_trip_with_pandas_and_pyarrow(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, _table())
    back = read_table(path)
    assert list(back.df.columns) == COLUMN_NAMES
    assert back.df["median_ms"].tolist() == [0.01, 0.2]
    assert back.meta["schema_version"] == SCHEMA_VERSION
    assert back.meta["devices"]["fp1"]["cpu_model"] == "test cpu"
    # plain pandas and pyarrow read the same file
    df = pd.read_parquet(path)
    assert set(df["signature"]) == {parse_spec(s).signature for s in SPECS}
    meta = json.loads(pq.read_schema(path).metadata[META_KEY])
    assert meta["schema_version"] == SCHEMA_VERSION
    assert pq.read_table(path).num_rows == 2
    assert pq.read_schema(path).field("median_ms").type == pa.float64()


def test_upsert_replaces_rows_with_the_same_key():
    t = _table()
    t.upsert(rows_frame([_row(SPECS[0], 0.05), _row(SPECS[0], 0.07, fp="fp2")]))
    assert len(t.df) == 3
    sig = parse_spec(SPECS[0]).signature
    got = t.df[t.df["signature"] == sig].set_index("device_fingerprint")["median_ms"]
    assert got.to_dict() == {"fp1": 0.05, "fp2": 0.07}


def test_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "future.parquet"
    write_table(path, _table())
    tbl = pq.read_table(path)
    meta = json.loads(tbl.schema.metadata[META_KEY])
    meta["schema_version"] = SCHEMA_VERSION + 1
    pq.write_table(tbl.replace_schema_metadata({META_KEY: json.dumps(meta)}), path)
    with pytest.raises(TableError, match=r"schema version 5; this hwprof .* reads versions 1, 2, 3, 4: "
                                         r"upgrade hwprof"):
        read_table(path)


def _as_version(path, version, dropped):
    """Rewrite the table at ``path`` as an older schema version would have written it: the
    columns that version lacked dropped, its number in the metadata. Returns (arrow table, meta)."""
    tbl = pq.read_table(path)
    meta = json.loads(tbl.schema.metadata[META_KEY])
    meta["schema_version"] = version
    older = tbl.drop_columns(dropped)
    pq.write_table(older.replace_schema_metadata({META_KEY: json.dumps(meta)}), path)
    return older, meta


def test_version_1_table_is_read_with_null_pass_columns_and_written_back_as_current(tmp_path):
    path = tmp_path / "v1.parquet"
    write_table(path, _table())
    v1, meta = _as_version(path, 1, ["passes", "pass_medians_ms"])
    back = read_table(path)
    assert list(back.df.columns) == COLUMN_NAMES
    assert back.df["passes"].isna().all() and back.df["pass_medians_ms"].isna().all()
    assert back.df["median_ms"].tolist() == [0.01, 0.2]
    assert back.summary()["schema_version"] == 1  # what is on disk, until it is written back
    from hwprof.commands.table_show import format_summary
    shown = format_summary({**back.summary(), "path": str(path)})
    assert f"schema v1 on disk, read as v{SCHEMA_VERSION}" in shown
    write_table(path, back)
    assert back.meta["schema_version"] == SCHEMA_VERSION
    assert f"(schema v{SCHEMA_VERSION}," in format_summary({**read_table(path).summary(),
                                                            "path": str(path)})
    assert json.loads(pq.read_schema(path).metadata[META_KEY])["schema_version"] == SCHEMA_VERSION
    # a version-1 file that lacks a column version 1 had is still refused
    pq.write_table(v1.drop_columns(["cv"]).replace_schema_metadata(
        {META_KEY: json.dumps(meta)}), path)
    with pytest.raises(TableError, match=r"claims schema 1 but lacks columns \['cv'\]"):
        read_table(path)


def test_pass_medians_are_a_list_column_that_pandas_and_pyarrow_read(tmp_path):
    path = tmp_path / "passes.parquet"
    t = LatencyTable.new()
    row = _row(SPECS[0], 0.011)
    row.update({"passes": 3, "pass_medians_ms": [0.012, 0.011, 0.010]})
    t.upsert(rows_frame([row]))
    write_table(path, t)
    assert pq.read_schema(path).field("pass_medians_ms").type == pa.list_(pa.float64())
    assert pq.read_table(path).column("pass_medians_ms").to_pylist() == [[0.012, 0.011, 0.010]]
    assert list(pd.read_parquet(path)["pass_medians_ms"].iloc[0]) == [0.012, 0.011, 0.010]
    assert read_table(path).df["passes"].tolist() == [3]


def test_every_pass_s_samples_are_a_nested_list_column_and_a_v3_table_reads_them_as_null(
        tmp_path):
    path = tmp_path / "v4.parquet"
    t = LatencyTable.new()
    row = _row(SPECS[0], 0.011)
    row.update({"passes": 2, "pass_medians_ms": [0.012, 0.010],
                "pass_samples_ms": [[0.012, 0.013], [0.010]],
                "pass_sample_ref_ms": [[1.0, 1.1], [0.9]]})
    t.upsert(rows_frame([row]))
    write_table(path, t)
    assert pq.read_schema(path).field("pass_samples_ms").type == pa.list_(pa.list_(pa.float64()))
    assert pq.read_table(path).column("pass_samples_ms").to_pylist() == [[[0.012, 0.013], [0.010]]]
    back = pd.read_parquet(path)["pass_sample_ref_ms"].iloc[0]
    assert [list(p) for p in back] == [[1.0, 1.1], [0.9]]
    # a version-3 file has no such columns: read with them null
    _as_version(path, 3, ["pass_samples_ms", "pass_sample_ref_ms"])
    old = read_table(path)
    assert list(old.df.columns) == COLUMN_NAMES and old.df["pass_samples_ms"].isna().all()
    assert old.df["pass_medians_ms"].map(list).tolist() == [[0.012, 0.010]]


def test_foreign_and_missing_files_are_refused(tmp_path):
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(other)
    with pytest.raises(TableError, match="not an hwprof latency table"):
        read_table(other)
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(TableError, match="not a readable Parquet file"):
        read_table(junk)
    with pytest.raises(TableError, match="no table at"):
        read_table(tmp_path / "absent.parquet")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "t.parquet"
    write_table(path, _table())
    write_table(path, _table())
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.parquet"]


def test_summary_counts():
    t = _table()
    t.upsert(rows_frame([_row({"kind": "relu6", "input": [1, 2, 2, 2]}, None, status="error")]))
    s = t.summary()
    assert s["rows"] == 3 and s["ok"] == 2 and s["errors"] == 1
    assert s["kinds"] == {"conv2d": 1, "relu": 1, "relu6": 1}
    assert s["devices"][0]["fingerprint"] == "fp1" and s["devices"][0]["rows"] == 3
    assert s["unstable"] == 0


def test_spec_columns_carry_features():
    r = spec_columns(parse_spec(SPECS[1]))
    assert r["macs"] == 8 * 8 * 8 * 4 * 9 and r["kernel"] == 3 and r["out_channels"] == 8
    assert json.loads(r["spec"])["kind"] == "conv2d"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_files_are_table_errors(tmp_path, damage):
    path = tmp_path / "t.parquet"
    write_table(path, _table())
    DAMAGE[damage](path)
    with pytest.raises(TableError, match="is damaged"):
        read_table(path)
