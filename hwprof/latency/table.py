"""Latency tables: the Parquet file format, its reader, writer and summary.

One row per (op signature, device fingerprint, environment key). File-level
metadata (Parquet key ``hwprof``) holds the schema version, the fingerprints
and environments the rows refer to, and the protocol settings. Every column
is documented in ``tables/SCHEMA.md``; change the schema only together with
``SCHEMA_VERSION`` and the history there.

Writes are atomic (temporary file, fsync, rename), so a reader never sees a
half-written table and a killed build leaves the last checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwprof import __version__
from hwprof.errors import TableError, UserError
from hwprof.latency.atomic import atomic_write

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)  # older versions lack columns: see upgrade_frame
META_KEY = b"hwprof"
KEY = ("signature", "device_fingerprint", "env_key")

# (column, arrow type); order is the on-disk order
COLUMNS: list[tuple[str, pa.DataType]] = [
    ("signature", pa.string()), ("kind", pa.string()), ("spec", pa.string()),
    ("device_fingerprint", pa.string()), ("env_key", pa.string()),
    ("status", pa.string()), ("error", pa.string()),
    ("batch", pa.int64()), ("in_channels", pa.int64()), ("in_h", pa.int64()),
    ("in_w", pa.int64()), ("out_channels", pa.int64()), ("kernel", pa.int64()),
    ("stride", pa.int64()), ("expand", pa.float64()),
    ("macs", pa.int64()), ("params", pa.int64()), ("bytes_read", pa.int64()),
    ("bytes_written", pa.int64()),
    ("median_ms", pa.float64()), ("mean_ms", pa.float64()), ("min_ms", pa.float64()),
    ("max_ms", pa.float64()), ("p10_ms", pa.float64()), ("p90_ms", pa.float64()),
    ("iqr_ms", pa.float64()), ("std_ms", pa.float64()), ("cv", pa.float64()),
    ("ci_low_ms", pa.float64()), ("ci_high_ms", pa.float64()),
    ("n_samples", pa.int64()), ("block_size", pa.int64()), ("first_call_ms", pa.float64()),
    ("converged", pa.bool_()), ("unstable", pa.bool_()),
    ("sampled_s", pa.float64()), ("wall_s", pa.float64()),
    ("passes", pa.int64()), ("pass_medians_ms", pa.list_(pa.float64())),
    ("latency_ms", pa.float64()), ("latency_ci_low_ms", pa.float64()),
    ("latency_ci_high_ms", pa.float64()), ("ref_level_ms", pa.float64()),
    ("ref_elasticity", pa.float64()), ("ref_median_ms", pa.float64()), ("bracketed", pa.bool_()),
    ("samples_ms", pa.list_(pa.float64())), ("sample_ref_ms", pa.list_(pa.float64())),
    ("pass_samples_ms", pa.list_(pa.list_(pa.float64()))),
    ("pass_sample_ref_ms", pa.list_(pa.list_(pa.float64()))),
    ("device", pa.string()), ("runtime", pa.string()), ("runtime_version", pa.string()),
    ("board_model", pa.string()), ("governor", pa.string()), ("freq_mhz", pa.float64()),
    ("temp_c_before", pa.float64()), ("temp_c_after", pa.float64()),
    ("calib_median_ms", pa.float64()), ("calib_ratio", pa.float64()),
    ("measured_at", pa.timestamp("ms", tz="UTC")), ("hwprof_version", pa.string()),
    ("source", pa.string()), ("source_key", pa.string()),
]
COLUMN_NAMES = [c for c, _ in COLUMNS]
SCHEMA = pa.schema(COLUMNS)
ENV_KEY_FIELDS = ("runtime", "runtime_version", "device", "omp_num_threads", "affinity_cpus",
                  "cuda_version", "cudnn_version", "torch_threads")


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """The (signature, device_fingerprint, env_key) key of one row given as a dict."""
    return tuple(row[k] for k in KEY)


def environment_key(env: dict[str, Any], device: str) -> str:
    """Hash of the settings that change latencies (not of passing state)."""
    ident = {k: env.get(k) for k in ENV_KEY_FIELDS}
    ident["device"] = device
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def empty_frame() -> pd.DataFrame:
    return SCHEMA.empty_table().to_pandas()


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order, missing ones added as nulls, types coerced."""
    for name in COLUMN_NAMES:
        if name not in df.columns:
            df[name] = None
    extra = [c for c in df.columns if c not in COLUMN_NAMES]
    if extra:
        raise TableError(f"unexpected table column(s) {extra}; see tables/SCHEMA.md")
    # rows from sources without the reference-paired protocol (imports, older tables): their
    # latency is their median
    df["latency_ms"] = df["latency_ms"].where(df["latency_ms"].notna(), df["median_ms"])
    table = pa.Table.from_pandas(df[COLUMN_NAMES], schema=SCHEMA, preserve_index=False)
    return table.to_pandas()


@dataclass
class LatencyTable:
    """Rows plus file metadata."""

    df: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls) -> LatencyTable:
        return cls(empty_frame(), {"schema_version": SCHEMA_VERSION, "devices": {},
                                   "environments": {}, "protocol": None})

    def upsert(self, rows: pd.DataFrame) -> None:
        """Add rows, replacing any existing rows with the same key."""
        if rows.empty:
            return
        rows = normalise(rows.copy())
        new_keys = set(zip(*(rows[k] for k in KEY)))
        keep = [k not in new_keys for k in zip(*(self.df[c] for c in KEY))]
        parts = [f for f in (self.df[keep], rows) if not f.empty]
        self.df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(
            drop=True)

    def summary(self) -> dict[str, Any]:
        df = self.df
        ok = df[df["status"] == "ok"]
        devices = []
        for fp, grp in df.groupby("device_fingerprint", sort=True):
            info = self.meta.get("devices", {}).get(fp, {})
            devices.append({"fingerprint": fp, "label": ", ".join(sorted(set(grp["device"].dropna()))),
                            "cpu_model": info.get("cpu_model"), "gpu_name": info.get("gpu_name"),
                            "board_model": info.get("board_model"), "rows": int(len(grp))})
        runtimes = sorted({f"{r} {v}" for r, v in zip(ok["runtime"], ok["runtime_version"])
                           if r is not None})
        return {
            "rows": int(len(df)), "schema_version": self.meta.get("schema_version", SCHEMA_VERSION),
            "devices": devices, "runtimes": runtimes,
            "kinds": {k: int(v) for k, v in df["kind"].value_counts().sort_index().items()},
            "ok": int(len(ok)), "errors": int((df["status"] == "error").sum()),
            "unstable": int(ok["unstable"].astype("boolean").fillna(False).sum()),
            # imported rows say nothing about convergence: only measured rows count
            "not_converged": int((~ok.loc[ok["source"] == "measured", "converged"]
                                  .astype("boolean").fillna(False)).sum()),
            "latency_ms": _describe(ok["latency_ms"]),
            "median_cv": float(ok["cv"].median()) if len(ok) and ok["cv"].notna().any() else None,
            "total_latency_ms": float(ok["latency_ms"].sum()) if len(ok) else 0.0,
            "measured_rows": int((ok["source"] == "measured").sum()),
            "reference": self.meta.get("reference"),
            "machine": _machine_summary(self.meta),
            "least_trustworthy": _least_trustworthy(ok),
            "passes": _passes_summary(ok, self.meta.get("pass_rule")),
            "protocol": self.meta.get("protocol"),
            "created_at": self.meta.get("created_at"), "updated_at": self.meta.get("updated_at"),
            "sources": sorted({s for s in df["source"].dropna()}),
            "merged_from": self.meta.get("merged_from"),
        }


def _machine_summary(meta: dict[str, Any]) -> dict[str, Any] | None:
    """How far the reference moved over the table's recorded builds (see reference.py)."""
    from hwprof.latency.machine import combined_movement
    return combined_movement(meta.get("timelines") or [])


def _least_trustworthy(ok: pd.DataFrame, n: int = 5) -> list[dict[str, Any]]:
    """The rows with the widest relative CI of their latency (unbracketed ones first)."""
    df = ok[ok["latency_ci_high_ms"].notna() & (ok["latency_ms"] > 0)]
    if df.empty:
        return []
    width = (df["latency_ci_high_ms"] - df["latency_ci_low_ms"]) / 2 / df["latency_ms"]
    unbr = ~df["bracketed"].fillna(True).astype(bool)
    order = pd.DataFrame({"unbr": unbr, "w": width}).sort_values(["unbr", "w"], ascending=False)
    top = df.loc[order.index[:n]]
    return [{"signature": r.signature, "kind": r.kind, "latency_ms": float(r.latency_ms),
             "ci_halfwidth": float(w), "bracketed": None if pd.isna(r.bracketed) else bool(r.bracketed)}
            for r, w in zip(top.itertuples(), order["w"][:n])]


def _passes_summary(ok: pd.DataFrame, rule: str | None) -> dict[str, Any] | None:
    """Passes per row, how far apart the passes of an op were (max / min - 1), and how a row's
    latency comes from its passes (``rule``: the table's ``pass_rule``; None: written before
    2026-12-05, when rows were the geometric mean of all passes, or the median pass before
    agent 8)."""
    multi = [list(m) for m in ok["pass_medians_ms"] if m is not None and len(m) > 1]
    if not multi:
        return None
    spread = pd.Series([max(m) / min(m) - 1 for m in multi])
    counts = ok["passes"].fillna(1)
    return {"min": int(counts.min()), "max": int(counts.max()),
            "spread_p50": float(spread.median()), "spread_p90": float(spread.quantile(0.9)),
            "rows_spread_over_10pct": int((spread > 0.10).sum()),
            "rule": rule}


def _describe(s: pd.Series) -> dict[str, float] | None:
    s = s.dropna()
    if s.empty:
        return None
    return {"min": float(s.min()), "p50": float(s.median()), "max": float(s.max())}


def one_device(df: pd.DataFrame, device_fingerprint: str | None = None,
               env_key: str | None = None, *, purpose: str = "",
               fp_hint: str = "choose one device fingerprint",
               env_hint: str = "choose one env_key") -> tuple[pd.DataFrame, str | None, str | None]:
    """The rows of one device and one environment, picked when there is only one of each.

    Given ``None`` and more than one choice in ``df``, a :class:`UserError` lists them;
    ``purpose`` (e.g. "a predictor is for one device") and the hints finish the message.
    """
    if device_fingerprint is None:
        fps = sorted(set(df["device_fingerprint"].dropna()))
        if len(fps) > 1:
            raise UserError(f"the table holds {len(fps)} devices ({', '.join(fps)}); "
                            f"{purpose + ': ' if purpose else ''}{fp_hint}")
        device_fingerprint = fps[0] if fps else None
    df = df[df["device_fingerprint"] == device_fingerprint]
    if env_key is None:
        envs = sorted(set(df["env_key"].dropna()))
        if len(envs) > 1:
            raise UserError(f"the table holds {len(envs)} environments ({', '.join(envs)}) of "
                            f"device {device_fingerprint}; {env_hint}")
        env_key = envs[0] if envs else None
    return df[df["env_key"] == env_key], device_fingerprint, env_key


def read_table(path: str | os.PathLike) -> LatencyTable:
    """Read a table; unknown schema versions and foreign files are refused."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"no table at {path}")
    if path.is_dir():
        raise TableError(f"{path} is a directory; expected a .parquet table file")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise TableError(f"{path} is not a readable Parquet file ({e})") from None
    raw = (pf.schema_arrow.metadata or {}).get(META_KEY)
    if raw is None:
        raise TableError(f"{path} is a Parquet file but not an hwprof latency table "
                         f"(no '{META_KEY.decode()}' metadata); import other formats with "
                         f"`hwprof import`")
    meta = parse_meta(path, raw)
    check_schema_version(path, meta.get("schema_version"))
    return LatencyTable(upgrade_frame(path, meta, read_rows(path, pf)), meta)


def parse_meta(path, raw: bytes) -> dict[str, Any]:
    """The ``hwprof`` metadata of a table file: a JSON object, or a TableError."""
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise TableError(f"{path} is damaged: its '{META_KEY.decode()}' metadata is not valid "
                         f"JSON ({e})") from None
    if not isinstance(meta, dict):
        raise TableError(f"{path} is damaged: its '{META_KEY.decode()}' metadata is a JSON "
                         f"{type(meta).__name__}, expected an object") from None
    return meta


def read_rows(path, pf: pq.ParquetFile) -> pd.DataFrame:
    """All rows of an open Parquet file; a damaged page is a TableError, not a traceback."""
    try:
        return pf.read().to_pandas()
    except (OSError, pa.ArrowException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TableError(f"{path} is damaged: its rows cannot be read ({first}); restore it "
                         f"from a copy or rebuild it") from None


def check_schema_version(path, version) -> None:
    """Refuse a table (or fleet partition) whose schema version this hwprof cannot read."""
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise TableError(f"{path} has table schema version {version!r}; this hwprof "
                         f"({__version__}) reads versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))}"
                         + (": upgrade hwprof to read it" if newer else
                            ": see tables/SCHEMA.md for the history"))


V2_ADDED = ("passes", "pass_medians_ms")
V3_ADDED = ("latency_ms", "latency_ci_low_ms", "latency_ci_high_ms", "ref_level_ms",
            "ref_elasticity", "ref_median_ms", "bracketed", "samples_ms", "sample_ref_ms")
V4_ADDED = ("pass_samples_ms", "pass_sample_ref_ms")


def upgrade_frame(path, meta: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a readable table in the current column layout.

    A version-1 table predates ``passes`` and ``pass_medians_ms``: its rows come
    back with those null (one pass, as every version-1 build measured). Tables
    before version 3 predate the reference-paired protocol: their latency is
    the raw median of one contiguous window, so ``latency_ms`` (and its CI) is
    read as ``median_ms`` (and its CI), the reference columns null. Tables
    before version 4 kept one pass's samples only: ``pass_samples_ms`` and
    ``pass_sample_ref_ms`` come back null.
    """
    version = meta.get("schema_version")
    allowed = {1: V2_ADDED + V3_ADDED + V4_ADDED, 2: V3_ADDED + V4_ADDED,
               3: V4_ADDED}.get(version, ())
    missing = [c for c in COLUMN_NAMES if c not in df.columns and c not in allowed]
    if missing:
        raise TableError(f"{path} claims schema {version} but lacks columns {missing}")
    for c in allowed:
        if c not in df.columns:
            df[c] = None
    if version in (1, 2):
        df["latency_ms"] = df["median_ms"]
        df["latency_ci_low_ms"], df["latency_ci_high_ms"] = df["ci_low_ms"], df["ci_high_ms"]
    # meta keeps the version on disk (``table show`` reports it); write_table stamps the current one
    return df[COLUMN_NAMES]


def write_table(path: str | os.PathLike, table: LatencyTable) -> None:
    """Atomically write ``table`` to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    meta = dict(table.meta)
    meta["schema_version"] = SCHEMA_VERSION
    meta.setdefault("created_at", _now())
    meta["updated_at"] = _now()
    meta["hwprof_version"] = __version__
    arrow = pa.Table.from_pandas(normalise(table.df.copy()), schema=SCHEMA, preserve_index=False)
    arrow = arrow.replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    atomic_write(path, lambda f: pq.write_table(arrow, f, compression="zstd"), error=TableError)
    table.meta = meta


def check_writable(path: str | os.PathLike) -> None:
    """Fail early, before measuring anything, when ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise TableError(f"{path} is a directory; give a file name such as {path}/table.parquet")
    probe_dir = parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise TableError(f"cannot write a table at {path}: {probe_dir} is a file, not a directory")
    if not os.access(probe_dir, os.W_OK):
        raise TableError(f"cannot write a table at {path}: {probe_dir} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise TableError(f"cannot write a table at {path}: the file is read-only")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def spec_columns(spec) -> dict[str, Any]:
    """The spec summary and analytic-feature columns of a row."""
    inp = spec.input
    k = spec.get("kernel")
    s = spec.get("stride")
    out = spec.output_shape
    row = {"signature": spec.signature, "kind": spec.kind, "spec": spec.canonical_json(),
           "batch": inp[0], "in_channels": inp[1] if len(inp) > 1 else None,
           "in_h": inp[2] if len(inp) == 4 else None, "in_w": inp[3] if len(inp) == 4 else None,
           "out_channels": out[1] if len(out) > 1 else None,
           "kernel": (k if isinstance(k, int) else k[0]) if k is not None else None,
           "stride": (s if isinstance(s, int) else s[0]) if s is not None else None,
           "expand": float(spec["expand"]) if spec.get("expand") is not None else None}
    row.update({f: v for f, v in spec.features().items() if f != "out_elements"})
    return row


def rows_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    if not rows:
        return empty_frame()
    return normalise(pd.DataFrame(rows))
