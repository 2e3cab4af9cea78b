"""What every importer shares: the imported device, row building and the report."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from hwprof.errors import UserError
from hwprof.latency.provenance import provenance, timestamp
from hwprof.latency.specs import INT64_MAX, OpSpec
from hwprof.latency.table import (
    SCHEMA_VERSION,
    LatencyTable,
    environment_key,
    rows_frame,
    spec_columns,
)

UNITS_TO_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}


class ImportFileError(UserError):
    """A file that cannot be imported as a whole (not one bad key: those are reported)."""


def unit_scale(unit: str) -> float:
    if unit not in UNITS_TO_MS:
        raise UserError(f"unknown unit {unit!r}; expected one of: {', '.join(UNITS_TO_MS)}")
    return UNITS_TO_MS[unit]


def imported_fingerprint(device_name: str) -> str:
    """Fingerprint of an imported device: a hash of the name the user gave it.

    The same name gives the same fingerprint whatever the source format, so a
    ProxylessNAS yaml and a CSV of the same phone land on one device.
    """
    blob = json.dumps({"imported_device": device_name}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class Entry:
    """One imported measurement, already in milliseconds."""

    spec: OpSpec
    source_key: str
    median_ms: float
    mean_ms: float | None = None
    std_ms: float | None = None
    n_samples: int | None = None


@dataclass
class ImportResult:
    table: LatencyTable
    unmapped: list[dict[str, str]] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return int(len(self.table.df))


def positive_ms(value: Any, scale: float, what: str) -> float:
    """A latency converted to ms; refuses missing, non-finite or non-positive values."""
    if isinstance(value, bool):
        raise ValueError(f"{what} is {value!r}, not a number")
    try:
        v = float(value) * scale
    except (TypeError, ValueError):
        raise ValueError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{what} is {value!r}; a latency must be a positive number")
    return v


def sample_count(value: Any, what: str = "count") -> int | None:
    """A number of samples: None, or an integer in 1..2**63-1 (the table's int64 column)."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT64_MAX:
        raise ValueError(f"{what} is {value!r}; expected an integer from 1 to 2**63-1")
    return value


def imported_table(entries: list[Entry], *, source: str, device_name: str, unit: str,
                source_file: str | None, runtime: str | None = None,
                runtime_version: str | None = None,
                extra_meta: dict[str, Any] | None = None) -> tuple[LatencyTable, list[dict]]:
    """Rows and metadata of an imported table; duplicate specs are reported, not merged."""
    if not device_name or not device_name.strip():
        raise UserError("--device-name must not be empty")
    fp = imported_fingerprint(device_name)
    env = {"runtime": runtime, "runtime_version": runtime_version, "source": source}
    env_key = environment_key(env, device_name)
    now = timestamp()
    rows: dict[str, dict] = {}
    dupes: list[dict] = []
    for e in entries:
        sig = e.spec.signature
        if sig in rows:
            dupes.append({"key": e.source_key,
                          "reason": f"same op as key {rows[sig]['source_key']!r}; kept that one"})
            continue
        row = spec_columns(e.spec)
        row.update(provenance(fingerprint=fp, env_key=env_key, device=device_name,
                              runtime=runtime, runtime_version=runtime_version, source=source,
                              measured_at=now, source_key=e.source_key))
        row.update({
            "status": "ok", "error": None,
            "median_ms": e.median_ms, "mean_ms": e.mean_ms, "std_ms": e.std_ms,
            "cv": (e.std_ms / e.mean_ms) if e.std_ms is not None and e.mean_ms else None,
            "n_samples": e.n_samples, "converged": None, "unstable": None,
        })
        rows[sig] = row
    table = LatencyTable(rows_frame(rows.values()), {
        "schema_version": SCHEMA_VERSION,
        "devices": {fp: {"label": device_name, "board_model": device_name, "imported": True,
                         "source": source}},
        "environments": {env_key: env},
        "protocol": None,
        "import": {"source": source, "unit": unit, "file": source_file,
                   "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   **(extra_meta or {})},
    })
    return table, dupes


def imported_device(meta: dict[str, Any], fingerprint: str | None) -> bool:
    """Whether a table's device (by fingerprint) came from an import: hwprof cannot reach it
    to measure, calibrate or check."""
    devices = (meta or {}).get("devices") or {}
    info = devices.get(fingerprint) if fingerprint is not None else None
    if info is None and fingerprint is None and len(devices) == 1:
        info = next(iter(devices.values()))
    return bool(isinstance(info, dict) and info.get("imported"))
