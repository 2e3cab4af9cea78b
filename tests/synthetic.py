"""Synthetic latency tables: rows with made-up, deterministic statistics.

Tests of table tools (merge, diff, filter, overwrite guards, damaged files) use
these instead of measuring this CPU, so that they neither take the time of a
build nor depend on timing noise. Real-CPU builds belong to the integration tests.
"""

from __future__ import annotations

import pandas as pd

from hwprof.latency.specs import parse_spec
from hwprof.latency.table import LatencyTable, rows_frame, spec_columns

SPECS = [{"kind": "relu", "input": [1, 8, 16, 16]},
         {"kind": "relu6", "input": [1, 16, 8, 8]},
         {"kind": "bn", "input": [1, 8, 16, 16]},
         {"kind": "conv2d", "input": [1, 8, 16, 16], "out_channels": 16, "kernel": 3},
         {"kind": "conv2d", "input": [1, 16, 8, 8], "out_channels": 16, "kernel": 1},
         {"kind": "dwconv2d", "input": [1, 16, 8, 8], "kernel": 3}]


def synthetic_row(spec: dict, median: float | None, *, fp: str = "fp-synth",
                  env: str = "env-synth", status: str = "ok", device: str = "cpu",
                  cv: float = 0.04) -> dict:
    """One table row of ``spec``; statistics derived from ``median`` (None: an error row)."""
    r = spec_columns(parse_spec(spec))
    r.update({"device_fingerprint": fp, "env_key": env, "status": status, "device": device,
              "runtime": "nnabla", "runtime_version": "1.39.0", "source": "measured",
              "measured_at": pd.Timestamp("2026-01-01", tz="UTC")})
    if status != "ok":
        r["error"] = "synthetic failure"
        return r
    r.update({"median_ms": median, "mean_ms": median * 1.02, "min_ms": median * 0.9,
              "max_ms": median * 1.3, "p10_ms": median * 0.95, "p90_ms": median * 1.1,
              "iqr_ms": median * 0.05, "std_ms": median * cv, "cv": cv,
              "ci_low_ms": median * 0.99, "ci_high_ms": median * 1.01, "n_samples": 50,
              "converged": True, "unstable": False})
    return r


def synthetic_table(scale: float = 1.0, *, specs: list | None = None,
                    medians: list[float] | None = None, fp: str = "fp-synth",
                    env: str = "env-synth", device: str = "cpu") -> LatencyTable:
    """A one-device table of ``specs`` (dicts or OpSpecs; default :data:`SPECS`).

    Op i has median ``medians[i]``, or ``scale * 0.01 * (i + 1)`` ms, and CV
    ``0.01 * (1 + i % 5)``.
    """
    specs = [s if isinstance(s, dict) else s.to_dict() for s in (SPECS if specs is None else specs)]
    medians = medians or [scale * 0.01 * (i + 1) for i in range(len(specs))]
    t = LatencyTable.new()
    t.upsert(rows_frame([synthetic_row(s, m, fp=fp, env=env, device=device, cv=0.01 * (1 + i % 5))
                         for i, (s, m) in enumerate(zip(specs, medians))]))
    t.meta["devices"] = {fp: {"label": device, "cpu_model": "synthetic cpu"}}
    t.meta["environments"] = {env: {"runtime": "nnabla", "runtime_version": "1.39.0"}}
    return t
