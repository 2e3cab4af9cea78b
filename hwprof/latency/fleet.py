"""Fleets: tables of many devices in one directory, partitioned by device fingerprint.

Layout (Hive-style partitioning, readable by pyarrow.dataset, pandas and DuckDB)::

    fleet/
      device_fingerprint=3f2a9c1d0b7e/part-0.parquet
      device_fingerprint=91c0aa58e2d4/part-0.parquet

Each partition file holds that device's rows (every table column except
``device_fingerprint``, which is the directory name) and the usual ``hwprof``
file metadata restricted to that device. Writing a device replaces (or, with
``mode="upsert"``, updates) only its own partition, atomically: the new file is
written under a hidden name and renamed into place, so readers never see half a
file. Query it directly::

    pyarrow.dataset.dataset("fleet/", partitioning="hive")
    pandas.read_parquet("fleet/")
    duckdb: SELECT * FROM read_parquet('fleet/*/*.parquet', hive_partitioning = true)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from hwprof.errors import TableError, UserError
from hwprof.latency.atomic import atomic_write
from hwprof.latency.table import (
    COLUMN_NAMES,
    COLUMNS,
    META_KEY,
    SCHEMA_VERSION,
    LatencyTable,
    check_schema_version,
    normalise,
    read_table,
    upgrade_frame,
)

PARTITION = "device_fingerprint"
PART_FILE = "part-0.parquet"
PART_SCHEMA = pa.schema([(n, t) for n, t in COLUMNS if n != PARTITION])
PARTITIONING = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
MODES = ("replace", "upsert")


def partition_dir(root: str | os.PathLike, fingerprint: str) -> Path:
    return Path(root) / f"{PARTITION}={fingerprint}"


def _part_meta(meta: dict[str, Any], fp: str, envs: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k not in ("devices", "environments")}
    out["schema_version"] = SCHEMA_VERSION
    out["devices"] = {fp: (meta.get("devices") or {}).get(fp, {})}
    out["environments"] = {k: v for k, v in (meta.get("environments") or {}).items() if k in envs}
    out["fleet_partition"] = fp
    return out


def _write_part(path: Path, df: pd.DataFrame, meta: dict[str, Any]) -> None:
    arrow = pa.Table.from_pandas(normalise(df.copy()).drop(columns=[PARTITION]),
                                 schema=PART_SCHEMA, preserve_index=False)
    arrow = arrow.replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    atomic_write(path, lambda f: pq.write_table(arrow, f, compression="zstd"), error=TableError)

def write_fleet(root: str | os.PathLike, table: LatencyTable, mode: str = "replace"
                ) -> dict[str, int]:
    """Write each device of ``table`` into its partition; returns rows per fingerprint.

    ``replace``: the device's partition becomes exactly this table's rows of it.
    ``upsert``: rows are added to what the partition holds; same-key rows replaced.
    Partitions of other devices are left alone.
    """
    if mode not in MODES:
        raise UserError(f"unknown fleet write mode {mode!r}; expected one of: {', '.join(MODES)}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; a fleet is a directory")
    if table.df.empty:
        raise UserError("the table has no rows; nothing to add to the fleet")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create fleet directory {root}: {e.strerror or e}") from None
    written = {}
    for fp, grp in table.df.groupby(PARTITION, sort=True):
        target = partition_dir(root, fp) / PART_FILE
        meta = table.meta
        if mode == "upsert" and target.exists():
            old = _read_part(target, fp)
            old.upsert(grp)
            grp = old.df
            meta = {**old.meta, **{k: v for k, v in table.meta.items()
                                   if k not in ("devices", "environments")},
                    "devices": {**old.meta.get("devices", {}), **table.meta.get("devices", {})},
                    "environments": {**old.meta.get("environments", {}),
                                     **table.meta.get("environments", {})}}
        _write_part(target, grp, _part_meta(meta, fp, set(grp["env_key"])))
        written[fp] = int(len(grp))
    return written


def _check_meta(path: Path, schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise TableError(f"{path} is in the fleet but is not an hwprof partition (no metadata)")
    meta = json.loads(raw)
    check_schema_version(path, meta.get("schema_version"))
    return meta


def _read_part(path: Path, fp: str) -> LatencyTable:
    pf = pq.ParquetFile(path)
    meta = _check_meta(path, pf.schema_arrow)
    df = pf.read().to_pandas()
    df[PARTITION] = fp
    return LatencyTable(normalise(upgrade_frame(path, meta, df)), meta)


def fleet_dataset(root: str | os.PathLike) -> ds.Dataset:
    """The fleet as a pyarrow dataset (device_fingerprint read from the paths as strings)."""
    root = Path(root)
    if not root.is_dir():
        raise TableError(f"no fleet directory at {root}")
    if not any(p.is_dir() and p.name.startswith(f"{PARTITION}=") for p in root.iterdir()):
        raise TableError(f"{root} is a directory but not a fleet: it has no "
                         f"{PARTITION}=... partitions (write one with `hwprof export "
                         f"--format fleet`)")
    # the full schema: a partition written before a column existed reads it as nulls
    return ds.dataset(root, format="parquet", partitioning=PARTITIONING, schema=pa.schema(COLUMNS))


def read_fleet(root: str | os.PathLike, devices: list[str] | None = None) -> LatencyTable:
    """All rows of a fleet (or of the given fingerprints) as one table, metadata merged."""
    from hwprof.latency.tableops import merge_meta

    dataset = fleet_dataset(root)
    metas = []
    for f in dataset.files:
        fp = Path(f).parent.name.split("=", 1)[1]
        if devices and fp not in devices:
            continue
        metas.append(_check_meta(Path(f), pq.read_schema(f)))
    flt = ds.field(PARTITION).isin(devices) if devices else None
    df = dataset.to_table(filter=flt).to_pandas()
    df[PARTITION] = df[PARTITION].astype(str)
    df = df[COLUMN_NAMES]
    meta = merge_meta(metas)
    meta["fleet"] = {"root": str(root), "partitions": len(metas)}
    return LatencyTable(normalise(df), meta)


def load_table(path: str | os.PathLike) -> LatencyTable:
    """A table file, or a whole fleet when ``path`` is a directory."""
    return read_fleet(path) if Path(path).is_dir() else read_table(path)
