"""Generic CSV / JSON tables to and from hwprof rows.

Import reads one op per row. A column map (``--map latency=lat,kernel=k``)
says which of the file's columns holds each hwprof field; fields not mapped are
looked up under their own name (and the aliases in :data:`ALIASES`), and
``--const kind=conv2d`` fixes a field for every row. A row names its op either
with a ``spec`` column (an op spec as JSON, as ``hwprof export --format csv``
writes) or with ``kind`` plus shape and hyper-parameter columns. Latencies are
converted from ``--unit`` (ms, us, s) to milliseconds. Rows that cannot be
mapped are reported with the reason, never dropped silently. See
``tables/IMPORT.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwprof.errors import SpecError, UserError
from hwprof.latency.adapters.common import (
    Entry,
    ImportFileError,
    ImportResult,
    imported_table,
    positive_ms,
    sample_count,
    unit_scale,
)
from hwprof.latency.atomic import atomic_write_text
from hwprof.latency.specs import kind_fields, parse_spec
from hwprof.latency.table import LatencyTable

STAT_FIELDS = ("key", "latency", "mean", "std", "n_samples")
SHAPE_FIELDS = ("kind", "spec", "batch", "in_channels", "in_h", "in_w", "in_features")
HYPER_FIELDS = ("out_channels", "out_features", "kernel", "stride", "padding", "dilation",
                "groups", "multiplier", "bias", "expand", "se", "activation", "residual",
                "reduction", "gate", "n_inputs", "repeats", "dtype")
TARGETS = STAT_FIELDS + SHAPE_FIELDS + HYPER_FIELDS
# column names looked up, in order, when a field is not in the map
ALIASES = {"key": ("key", "source_key"), "latency": ("latency", "latency_ms", "median_ms"),
           "mean": ("mean", "mean_ms"), "std": ("std", "std_ms"),
           "n_samples": ("n_samples", "count")}
TARGET_ALIASES = {"latency_ms": "latency", "median_ms": "latency", "median": "latency",
                  "mean_ms": "mean", "std_ms": "std", "count": "n_samples", "source_key": "key"}
BOOL_FIELDS = ("bias", "se", "residual")
INT_FIELDS = ("batch", "in_channels", "in_h", "in_w", "in_features", "out_channels",
              "out_features", "kernel", "stride", "dilation", "groups", "multiplier",
              "reduction", "n_inputs", "repeats")


def parse_pairs(text: str | None, what: str) -> dict[str, str]:
    """``a=b,c=d`` into a dict (``--map`` and ``--const``)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UserError(f"{what} entry {part!r} is not FIELD=VALUE")
        name = TARGET_ALIASES.get(name, name)
        if name not in TARGETS:
            raise UserError(f"{what}: unknown hwprof field {name!r}; expected one of: "
                            f"{', '.join(TARGETS)}")
        if name in out:
            raise UserError(f"{what}: field {name!r} given twice")
        out[name] = value
    return out


def read_records(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """A CSV, TSV, JSON array / ``{"rows": [...]}`` or JSON-lines file as a frame."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"no file at {path}")
    fmt = fmt or ("json" if path.suffix.lower() in (".json", ".jsonl") else "csv")
    try:
        if fmt == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            return pd.read_csv(path, sep=sep, float_precision="round_trip")
        text = path.read_text()
        stripped = text.strip()
        try:
            data = json.loads(stripped)
        except ValueError:  # JSON lines: one object a line
            data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
        if isinstance(data, dict):  # {"rows": [...]} as `hwprof export` writes, or one record
            data = data["rows"] if "rows" in data else [data]
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ImportFileError(f"cannot read {path} as {fmt}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ImportFileError(f"{path}: expected a JSON array of objects, an object with a 'rows' "
                           f"array, or JSON lines")
    return pd.DataFrame(data)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v)


def _coerce(name: str, v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if name in BOOL_FIELDS and isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
    if name in BOOL_FIELDS and isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if name in INT_FIELDS or name == "padding":
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return v  # "same"/"valid" padding, or a mistake parse_spec explains
        if isinstance(v, float) and v.is_integer():
            return int(v)
    if name == "expand" and isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return v
    if name == "expand" and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


class _Mapper:
    def __init__(self, columns: list[str], colmap: dict[str, str], const: dict[str, str]):
        missing = [c for c in colmap.values() if c not in columns]
        if missing:
            raise UserError(f"--map names column(s) {missing} that the file lacks; it has: "
                            f"{', '.join(columns)}")
        both = set(colmap) & set(const)
        if both:
            raise UserError(f"field(s) {sorted(both)} are both mapped and constant")
        self.col: dict[str, str] = dict(colmap)
        for t in TARGETS:
            if t not in self.col and t not in const:
                for name in ALIASES.get(t, (t,)):
                    if name in columns:
                        self.col[t] = name
                        break
        self.const = const
        if "latency" not in self.col and "latency" not in const:
            raise UserError("no latency column: map one with --map latency=COLUMN (the file has: "
                            f"{', '.join(columns)})")
        if not any(t in self.col or t in const for t in ("spec", "kind")):
            raise UserError("no op description: map a 'spec' column (op spec JSON) or a 'kind' "
                            "column (--map kind=COLUMN or --const kind=conv2d) plus its shape")

    def get(self, row: dict, name: str) -> Any:
        if name in self.const:
            return _coerce(name, self.const[name])
        col = self.col.get(name)
        v = row.get(col) if col is not None else None
        return None if _missing(v) else _coerce(name, v)


def _row_spec(m: _Mapper, row: dict):
    spec = m.get(row, "spec")
    if spec is not None:
        return parse_spec(json.loads(spec) if isinstance(spec, str) else spec)
    kind = m.get(row, "kind")
    allowed = set(kind_fields(kind)) | {"dtype"}  # raises for an unknown kind
    batch = m.get(row, "batch") or 1
    fin = m.get(row, "in_features")
    if fin is not None:
        shape = [batch, fin]
    else:
        c, h = m.get(row, "in_channels"), m.get(row, "in_h")
        w = m.get(row, "in_w") or h
        shape = [batch, c, h, w]
        if None in shape:
            raise SpecError(f"{kind}: needs in_channels and in_h (and in_w if not square), "
                            f"or in_features")
    obj = {"kind": kind, "input": shape}
    for f in HYPER_FIELDS:
        v = m.get(row, f)
        if v is not None and f in allowed:
            obj[f] = v
    return parse_spec(obj)


def import_frame(df: pd.DataFrame, *, device_name: str, colmap: dict[str, str] | None = None,
                 const: dict[str, str] | None = None, unit: str = "ms",
                 source_file: str | None = None, runtime: str | None = None,
                 source: str = "import:table") -> ImportResult:
    scale = unit_scale(unit)
    m = _Mapper([str(c) for c in df.columns], colmap or {}, const or {})
    entries, unmapped = [], []
    for i, row in enumerate(df.to_dict("records"), 1):
        key = m.get(row, "key")
        key = str(key) if key is not None else f"row:{i}"
        try:
            spec = _row_spec(m, row)
            lat = m.get(row, "latency")
            median = positive_ms(lat, scale, "latency")
            mean = m.get(row, "mean")
            std = m.get(row, "std")
            n = m.get(row, "n_samples")
            std_ms = None if std is None else float(std) * scale
            if std_ms is not None and not (math.isfinite(std_ms) and std_ms >= 0):
                raise ValueError(f"std is {std!r}; expected a number >= 0")
            entries.append(Entry(spec, key, median_ms=median,
                                 mean_ms=None if mean is None else positive_ms(mean, scale, "mean"),
                                 std_ms=std_ms, n_samples=sample_count(n, "n_samples")))
        except (SpecError, ValueError, TypeError) as e:
            unmapped.append({"key": key, "reason": str(e)})
    table, dupes = imported_table(entries, source=source, device_name=device_name, unit=unit,
                               source_file=source_file, runtime=runtime,
                               extra_meta={"map": colmap or {}, "const": const or {}})
    return ImportResult(table, unmapped + dupes)


def import_file(path: str | Path, fmt: str | None = None, **kw) -> ImportResult:
    df = read_records(path, fmt)
    fmt = fmt or ("json" if Path(path).suffix.lower() in (".json", ".jsonl") else "csv")
    return import_frame(df, source_file=str(path), source=f"import:{fmt}", **kw)


# --------------------------------------------------------------------------- #
# export


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["measured_at"] = out["measured_at"].map(lambda t: None if pd.isna(t) else t.isoformat())
    # lists (pass latencies, paired samples): a JSON array in JSON, its JSON text in a CSV cell
    for col in ("pass_medians_ms", "samples_ms", "sample_ref_ms"):
        out[col] = out[col].map(
            lambda v: [float(x) for x in v] if isinstance(v, (list, tuple, np.ndarray)) else None)
    for col in ("pass_samples_ms", "pass_sample_ref_ms"):  # a list per pass
        out[col] = out[col].map(
            lambda v: [[float(x) for x in p] for p in v]
            if isinstance(v, (list, tuple, np.ndarray)) else None)
    return out


def export_csv(table: LatencyTable, path: str | Path) -> int:
    atomic_write_text(path, _plain(table.df).to_csv(index=False))
    return int(len(table.df))


def export_json(table: LatencyTable, path: str | Path) -> int:
    df = _plain(table.df).astype(object).where(table.df.notna(), None)
    doc = {"format": "hwprof-table-json", "meta": table.meta, "rows": df.to_dict("records")}
    atomic_write_text(path, json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n")
    return int(len(table.df))
