"""Fleets: one partitioned Parquet directory for many devices, read back by pyarrow,
pandas and DuckDB as well as by hwprof."""

import pandas as pd
import pyarrow.dataset as ds
import pytest

from hwprof.errors import TableError, UserError
from hwprof.latency.adapters import proxylessnas
from hwprof.latency.fleet import PARTITION, load_table, partition_dir, read_fleet, write_fleet
from hwprof.latency.spaces import get_space
from hwprof.latency.table import KEY, read_table, write_table
from hwprof.latency.tableops import filter_table
from tests.synthetic import synthetic_table


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    out = d / "cpu.parquet"
    write_table(out, synthetic_table(specs=get_space("tiny").table_specs()))
    key = "expanded_conv-input:16x16x8-output:8x8x16-expand:3-kernel:3-stride:2-idskip:0"
    conv = "Conv-input:16x16x3-output:16x16x8"
    (d / "p.yaml").write_text(f"{key}: {{count: 3, mean: 0.5, var: 0.0001}}\n"
                              f"{conv}: {{count: 3, mean: 0.25, var: 0.0001}}\n")
    phone = proxylessnas.import_file(d / "p.yaml", device_name="pixel1").table
    return read_table(out), phone


def _sorted(df):
    return df.sort_values(list(KEY)).reset_index(drop=True)


def test_write_and_read_back_with_pyarrow_pandas_and_hwprof(tables, tmp_path):
    cpu, phone = tables
    root = tmp_path / "fleet"
    assert write_fleet(root, cpu) == {cpu.df[PARTITION].iloc[0]: len(cpu.df)}
    write_fleet(root, phone)
    fps = sorted({cpu.df[PARTITION].iloc[0], phone.df[PARTITION].iloc[0]})
    assert sorted(p.name for p in root.iterdir()) == [f"{PARTITION}={fp}" for fp in fps]
    # pyarrow.dataset with hive partitioning sees every row and the device from the path
    t = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert t.num_rows == len(cpu.df) + len(phone.df)
    counts = t.to_pandas()[PARTITION].astype(str).value_counts().to_dict()
    assert counts == {cpu.df[PARTITION].iloc[0]: len(cpu.df), phone.df[PARTITION].iloc[0]: len(phone.df)}
    one = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        filter=ds.field(PARTITION) == phone.df[PARTITION].iloc[0]).to_pandas()
    assert sorted(one["source_key"]) == sorted(phone.df["source_key"])
    # pandas reads the directory directly
    pdf = pd.read_parquet(root)
    assert len(pdf) == len(cpu.df) + len(phone.df)
    assert pdf.groupby(pdf[PARTITION].astype(str))["median_ms"].sum().to_dict() == pytest.approx(
        {cpu.df[PARTITION].iloc[0]: cpu.df["median_ms"].sum(),
         phone.df[PARTITION].iloc[0]: phone.df["median_ms"].sum()})
    # hwprof reads it as one table with both devices' metadata
    back = read_fleet(root)
    assert set(back.meta["devices"]) == set(fps)
    both = pd.concat([cpu.df, phone.df], ignore_index=True)
    cols = ["signature", PARTITION, "env_key", "median_ms", "std_ms", "n_samples", "source_key",
            "measured_at"]
    assert _sorted(back.df)[cols].equals(_sorted(both)[cols])
    assert load_table(root).df.shape == back.df.shape
    assert len(read_fleet(root, devices=[fps[0]]).df) == counts[fps[0]]
    # one device out of the fleet is a normal one-device table again
    only = filter_table(back, devices=["pixel1"])
    assert _sorted(only.df)[cols].equals(_sorted(phone.df)[cols])


def test_duckdb_queries_the_fleet(tables, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    cpu, phone = tables
    root = tmp_path / "fleet"
    write_fleet(root, cpu)
    write_fleet(root, phone)
    rows = duckdb.sql(f"SELECT {PARTITION}, count(*) AS n FROM read_parquet('{root}/*/*.parquet', "
                      f"hive_partitioning = true) GROUP BY 1 ORDER BY 1").fetchall()
    want = sorted([(cpu.df[PARTITION].iloc[0], len(cpu.df)), (phone.df[PARTITION].iloc[0],
                                                                len(phone.df))])
    assert [(str(a), b) for a, b in rows] == want


def test_replace_and_upsert_touch_only_their_device(tables, tmp_path):
    cpu, phone = tables
    root = tmp_path / "fleet"
    write_fleet(root, cpu)
    write_fleet(root, phone)
    fp_cpu = cpu.df[PARTITION].iloc[0]
    mb = filter_table(cpu, kinds=["mbconv"])
    write_fleet(root, mb)  # replace: the cpu partition now holds only the mbconv rows
    back = read_fleet(root)
    assert (back.df[PARTITION] == fp_cpu).sum() == len(mb.df)
    assert (back.df[PARTITION] != fp_cpu).sum() == len(phone.df)
    write_fleet(root, cpu, mode="upsert")  # upsert: everything back, no duplicates
    back = read_fleet(root)
    assert (back.df[PARTITION] == fp_cpu).sum() == len(cpu.df)
    assert not back.df.duplicated(list(KEY)).any()
    assert sorted(p.name for p in partition_dir(root, fp_cpu).iterdir()) == ["part-0.parquet"]
    assert not [p for p in root.rglob(".*")]  # no temporary files left behind


def test_not_a_fleet(tmp_path, tables):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TableError, match="not a fleet"):
        read_fleet(tmp_path / "empty")
    with pytest.raises(TableError):
        read_fleet(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        write_fleet(tmp_path / "file", tables[0])


def test_a_failed_fleet_write_leaves_no_directory_behind(tmp_path, monkeypatch):
    from hwprof.latency import fleet as F
    from tests.synthetic import synthetic_table

    def full_disk(path, df, meta):
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{path.name}.x.tmp").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    new = tmp_path / "new" / "fleet"
    monkeypatch.setattr(F, "_write_part", full_disk)
    with pytest.raises(UserError, match="No space left"):
        write_fleet(new, synthetic_table())
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    monkeypatch.undo()
    write_fleet(old, synthetic_table(fp="fp-a"))
    monkeypatch.setattr(F, "_write_part", full_disk)
    with pytest.raises(UserError):
        write_fleet(old, synthetic_table(fp="fp-b"))
    assert [p.name for p in old.iterdir()] == [f"{PARTITION}=fp-a"]


@pytest.mark.parametrize("fp, message", [(None, "no device fingerprint"),
                                         ("../escape", "cannot name a fleet partition")])
def test_rows_that_cannot_be_partitioned_are_refused_before_writing(tmp_path, fp, message):
    from tests.synthetic import synthetic_table
    t = synthetic_table()
    t.df["device_fingerprint"] = fp
    with pytest.raises(UserError, match=message):
        write_fleet(tmp_path / "fleet", t)
    assert not (tmp_path / "fleet").exists()
