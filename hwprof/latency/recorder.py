"""Recording a build's results: rows, the reference level, checkpoints.

Every finished group is turned into rows at the table's reference level,
merged with the passes the table already holds, and written atomically (at
most every ``every`` seconds, and always at the end), so an interrupted build
loses at most the groups of that last interval.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from hwprof.latency import elasticity, reference
from hwprof.latency.backends.agent.protocol import OP_ELASTICITY
from hwprof.latency.devices import hardware_name
from hwprof.latency.machine import record_timeline
from hwprof.latency.passes import ROW_RULE, combine
from hwprof.latency.provenance import provenance, timestamp
from hwprof.latency.reference import device_key
from hwprof.latency.specs import OpSpec
from hwprof.latency.table import (
    LatencyTable,
    environment_key,
    row_key,
    rows_frame,
    spec_columns,
    write_table,
)

RAW_STATS = ("median_ms", "mean_ms", "min_ms", "max_ms", "p10_ms", "p90_ms", "iqr_ms",
             "std_ms", "cv", "ci_low_ms", "ci_high_ms", "n_samples", "block_size",
             "first_call_ms", "sampled_s", "wall_s")
STATE = ("governor", "freq_mhz", "temp_c_before", "temp_c_after")


def hardware(fp: dict) -> str:
    """The one name of a device's hardware (see :func:`hwprof.latency.devices.hardware_name`)."""
    return hardware_name(fp) or "unknown"


def result_row(spec: OpSpec, result: dict, hello: dict, label: str,
               level_ms: float | None = None, protocol: dict | None = None) -> dict:
    """One table row from an agent result (an error row when the op failed)."""
    env = hello["environment"]
    row = spec_columns(spec)
    row.update({k: result.get(k) for k in RAW_STATS + STATE})
    row.update(provenance(fingerprint=hello["fingerprint_id"],
                          env_key=environment_key(env, hello["device"]), device=label,
                          runtime=env.get("runtime"), runtime_version=env.get("runtime_version"),
                          source="measured", measured_at=timestamp(result.get("started_at"))))
    row.update({"status": result["status"], "error": result.get("error"),
                "board_model": hardware(hello["fingerprint"])})
    if result["status"] != "ok":  # never a latency for a failed op
        for k in RAW_STATS:
            row[k] = None
    elif level_ms is not None:
        row.update(reference.latency_columns(result, level_ms, protocol))
    return row


class Recorder:
    """Merges a build's rows into the table on disk, throttled and atomic."""

    def __init__(self, out: Path, table: LatencyTable, prior: dict[tuple, dict],
                 every: float = 0.5, protocol: dict | None = None):
        self.out, self.table, self.prior, self.every = out, table, prior, every
        self.protocol = protocol or {}
        self.fresh: dict[tuple, list[dict]] = {}  # key -> this build's passes of it
        self.failed: set[str] = set()  # signatures that failed in this build: no more passes
        self.pending: dict[tuple, dict] = {}
        self.lock = threading.RLock()
        self.last = 0.0
        # this build's groups' reference timelines (the table keeps only the latest ones)
        self.timelines: list[dict] = []

    def note_device(self, hello: dict, protocol: dict) -> None:
        with self.lock:
            meta = self.table.meta
            meta.setdefault("devices", {})[hello["fingerprint_id"]] = hello["fingerprint"]
            key = environment_key(hello["environment"], hello["device"])
            meta.setdefault("environments", {})[key] = hello["environment"]
            meta["protocol"] = protocol
            meta["pass_rule"] = ROW_RULE
            meta.setdefault("agent_version", hello.get("agent_version"))
            reference.check_plan(meta, hello.get("reference_plan"), str(self.out))
            if hello.get("reference_plan") is not None:
                meta.setdefault("reference", {}).setdefault("plan", hello["reference_plan"])

    def level(self, hello: dict) -> float | None:
        """The table's reference level for this agent's device (None: not set yet)."""
        with self.lock:
            return reference.table_level(self.table.meta, device_key(hello))

    def adopt_level(self, hello: dict, level_ms: float, how: str,
                    elasticity: float | None = None) -> float:
        with self.lock:
            return reference.adopt_level(self.table.meta, device_key(hello), level_ms, how,
                                         elasticity)

    def fit_elasticity(self, hello: dict) -> dict | None:
        """Fit the elasticity of this device's rows on their passes and derive every one of
        them again with it (:mod:`hwprof.latency.elasticity`), when the table set its level
        from this device's own first group, has no elasticity yet, carries op samples with
        the protocol's default and every row of the device kept its passes' samples; returns
        the fit (None: not fitted)."""
        with self.lock:
            self._flush()
            key = device_key(hello)
            entry = (self.table.meta.get("reference") or {}).get("levels", {}).get(key) or {}
            if (entry.get("chosen") != reference.FIRST_GROUP or "elasticity" in entry
                    or self.protocol.get("elasticity", OP_ELASTICITY) != OP_ELASTICITY):
                return None
            rows = self._device_rows(hello)
            passes = [elasticity.row_passes(r) for r in rows.values()]
            if any(p is None for p in passes):
                return None
            fitted = elasticity.fit([(float(r["ref_level_ms"]), p)
                                     for r, p in zip(rows.values(), passes)], self.protocol)
            if fitted is None:
                return None
            reference.set_elasticity(self.table.meta, key, fitted)
            df = self.table.df
            for i, row in rows.items():
                for col, v in elasticity.rederive(row, fitted["elasticity"], self.protocol).items():
                    df.at[i, col] = v
            write_table(self.out, self.table)
            # later passes (extra passes) merge with the rows as they now stand
            self.prior.update(ok_rows(self.table))
            self.fresh = {}
            return fitted

    def _device_rows(self, hello: dict) -> dict[Any, dict]:
        """The table's ok rows measured on this agent's device and environment, by index."""
        df = self.table.df
        env = environment_key(hello["environment"], hello["device"])
        mask = ((df["status"] == "ok") & (df["device_fingerprint"] == hello["fingerprint_id"])
                & (df["env_key"] == env))
        return {i: df.loc[i].to_dict() for i in df.index[mask]}

    def record_group(self, specs: list[OpSpec], answer: dict, hello: dict, label: str) -> list[dict]:
        """Rows of one group's answer; the first group of a new table sets its level."""
        with self.lock:
            level = self.level(hello)
            if level is None:
                level = self.adopt_level(hello, reference.level_from_timeline(answer["timeline"]),
                                         reference.FIRST_GROUP)
            started = min((r.get("started_at") or time.time()) for r in answer["results"])
            self.timelines.append(record_timeline(self.table.meta, device_key(hello), started,
                                                  answer["timeline"], label))
            by_id = {r["id"]: r for r in answer["results"]}
            proto = reference.protocol_with(
                self.protocol, reference.table_elasticity(self.table.meta, device_key(hello)))
            rows = [result_row(s, by_id[s.signature], hello, label, level, proto)
                    for s in specs]
            for row in rows:
                self.add(row)
            return rows

    def add(self, row: dict) -> None:
        """Merge one pass into its key's row (with the row on disk) and checkpoint it."""
        with self.lock:
            key = row_key(row)
            self.fresh.setdefault(key, []).append(row)
            if row["status"] != "ok":
                self.failed.add(row["signature"])
            self.pending[key] = combine(self.prior.get(key), self.fresh[key])
            if time.monotonic() - self.last >= self.every:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if self.pending or not self.out.exists():
            self.table.upsert(rows_frame(self.pending.values()))
            write_table(self.out, self.table)
            self.pending = {}
        self.last = time.monotonic()


def ok_rows(table: LatencyTable) -> dict[tuple, dict[str, Any]]:
    """The table's ok rows by key: what new passes are merged with."""
    ok = table.df[table.df["status"] == "ok"]
    return {row_key(r): r for r in ok.to_dict("records")}
