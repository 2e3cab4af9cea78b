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
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from hwprof.errors import TableError, UserError
from hwprof.latency.atomic import atomic_write
from hwprof.latency.levelmerge import key_levels, merged_reference, mismatches, refuse
from hwprof.latency.table import (
    COLUMN_NAMES,
    COLUMNS,
    META_KEY,
    SCHEMA_VERSION,
    LatencyTable,
    check_schema_version,
    normalise,
    parse_meta,
    read_rows,
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
    return _own_levels(out, fp)


def _own_levels(meta: dict[str, Any], fp: str) -> dict[str, Any]:
    """``meta`` with only device ``fp``'s reference levels (a partition written before this
    kept the whole table's, other devices' included)."""
    ref = meta.get("reference")
    if not ref or not ref.get("levels"):
        return meta
    levels = {k: v for k, v in ref["levels"].items() if k.startswith(f"{fp}/")}
    return {**meta, "reference": {**ref, "levels": levels}}


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
    Partitions of other devices are left alone. A write that fails leaves no
    directory it created behind (a new fleet directory is removed).
    """
    root = Path(root)
    _check_fleet_write(root, table, mode)
    created = _missing_dirs(root, [partition_dir(root, fp) for fp in _fingerprints(table)])
    try:
        root.mkdir(parents=True, exist_ok=True)
        return {fp: _write_device(root, fp, grp, table, mode)
                for fp, grp in table.df.groupby(PARTITION, sort=True)}
    except OSError as e:
        _remove_empty(created)
        raise UserError(f"cannot write fleet directory {root}: {e.strerror or e}") from None
    except BaseException:
        _remove_empty(created)
        raise


def _check_fleet_write(root: Path, table: LatencyTable, mode: str) -> None:
    if mode not in MODES:
        raise UserError(f"unknown fleet write mode {mode!r}; expected one of: {', '.join(MODES)}")
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; a fleet is a directory")
    if table.df.empty:
        raise UserError("the table has no rows; nothing to add to the fleet")
    fps = table.df[PARTITION]
    if fps.isna().any():
        raise UserError(f"{int(fps.isna().sum())} rows have no device fingerprint; a fleet "
                        f"partitions rows by it")
    bad = sorted({fp for fp in fps if not _SAFE_FP.fullmatch(str(fp))})
    if bad:
        raise UserError(f"device fingerprint(s) {bad[:3]} cannot name a fleet partition; "
                        f"expected letters, digits, '.', '_' or '-'")


_SAFE_FP = re.compile(r"[A-Za-z0-9_.-]+")


def _fingerprints(table: LatencyTable) -> list[str]:
    return sorted(set(table.df[PARTITION]))


def _missing_dirs(root: Path, parts: list[Path]) -> list[Path]:
    """The directories a write would create, deepest first (``root`` and its missing parents
    last)."""
    out = [p for p in parts if not p.exists()]
    d = root
    while not d.exists():
        out.append(d)
        d = d.parent
    return out


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the directories this write created, where it left them empty."""
    for d in dirs:
        try:
            for junk in d.glob(".*.tmp"):
                junk.unlink()
            d.rmdir()
        except OSError:
            pass


def _write_device(root: Path, fp: str, grp: pd.DataFrame, table: LatencyTable, mode: str) -> int:
    target = partition_dir(root, fp) / PART_FILE
    meta = table.meta
    if mode == "upsert" and target.exists():
        old = _read_part(target, fp)
        levels = [key_levels(old.df, old.meta), key_levels(grp, table.meta)]
        for m in mismatches(levels):
            raise refuse(m, [str(target), "the table"],
                         "carry one to the other's level first (`hwprof table merge --rescale`)")
        old.upsert(grp)
        grp = old.df
        meta = {**old.meta, **{k: v for k, v in table.meta.items()
                               if k not in ("devices", "environments")},
                "devices": {**old.meta.get("devices", {}), **table.meta.get("devices", {})},
                "environments": {**old.meta.get("environments", {}),
                                 **table.meta.get("environments", {})}}
        reference = merged_reference([old.meta, table.meta], levels)
        if reference is not None:
            meta["reference"] = reference
    _write_part(target, grp, _part_meta(meta, fp, set(grp["env_key"])))
    return int(len(grp))


def _check_meta(path: Path, schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise TableError(f"{path} is in the fleet but is not an hwprof partition (no metadata)")
    meta = parse_meta(path, raw)
    check_schema_version(path, meta.get("schema_version"))
    return meta


def _read_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as e:
        raise TableError(f"{path} is in the fleet but is not a readable Parquet file ({e})") \
            from None


def _read_part(path: Path, fp: str) -> LatencyTable:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise TableError(f"{path} is not a readable Parquet file ({e})") from None
    meta = _check_meta(path, pf.schema_arrow)
    df = read_rows(path, pf)
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
        metas.append(_own_levels(_check_meta(Path(f), _read_schema(Path(f))), fp))
    flt = ds.field(PARTITION).isin(devices) if devices else None
    try:
        df = dataset.to_table(filter=flt).to_pandas()
    except (OSError, pa.ArrowException) as e:
        raise TableError(f"fleet {root} is damaged: its rows cannot be read "
                         f"({str(e).strip().splitlines()[0] if str(e).strip() else e!r})") from None
    df[PARTITION] = df[PARTITION].astype(str)
    df = df[COLUMN_NAMES]
    meta = merge_meta(metas)
    meta["fleet"] = {"root": str(root), "partitions": len(metas)}
    return LatencyTable(normalise(df), meta)


def load_table(path: str | os.PathLike) -> LatencyTable:
    """A table file, or a whole fleet when ``path`` is a directory."""
    return read_fleet(path) if Path(path).is_dir() else read_table(path)
