"""Operations on whole latency tables: merge, diff, filter, validate.

All of them take and return :class:`~hwprof.latency.table.LatencyTable` objects
(rows plus file metadata); the command modules only read, call and print.

Merge policy (``on_conflict``) when two inputs hold a row with the same key
(signature, device fingerprint, env key) and different numbers: one of
:data:`hwprof.latency.conflicts.POLICIES` (error, keep-first, keep-last, min,
max, mean), each described there.

Rows that agree on every statistic are duplicates, not conflicts. An ``ok``
row always beats an ``error`` row of the same key (a failed attempt does not
hide a measurement); of two error rows the later one is kept.

Inputs that hold one device at different reference levels (or elasticities) are
refused unless ``rescale``: then the later inputs' rows of that device are carried
to the first input's level first (:mod:`hwprof.latency.levelmerge`). The merged
table keeps the inputs' levels, so it can be extended and adopted like a built one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from hwprof.errors import UserError
from hwprof.latency import levelmerge
from hwprof.latency.conflicts import POLICIES, isnull
from hwprof.latency.devices import hardware_name
from hwprof.latency.machine import TIMELINES_KEPT
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import (
    COLUMN_NAMES,
    KEY,
    SCHEMA,
    SCHEMA_VERSION,
    LatencyTable,
    normalise,
    row_key,
    spec_columns,
)

STAT_COLUMNS = ("median_ms", "mean_ms", "min_ms", "max_ms", "p10_ms", "p90_ms", "iqr_ms",
                "std_ms", "cv", "ci_low_ms", "ci_high_ms", "n_samples")


class MergeConflict(UserError):
    """Two inputs disagree about one op and no policy was chosen."""


# --------------------------------------------------------------------------- #
# merge


def check_mixed(df: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Refuse more than one device or environment in one table (see ``allow_mixed``)."""
    fps = sorted(set(df["device_fingerprint"]))
    if len(fps) > 1:
        labels = [_device_label(fp, df, meta) for fp in fps]
        raise UserError(f"the inputs hold {len(fps)} devices ({'; '.join(labels)}); one table "
                        f"should hold one device: pass --allow-mixed to merge them anyway, or "
                        f"write a fleet (`hwprof export --format fleet`)")
    envs = sorted(set(df["env_key"]))
    if len(envs) > 1:
        desc = []
        for k in envs:
            sub = df[df["env_key"] == k]
            rts = sorted({f"{r} {v}" for r, v in zip(sub["runtime"], sub["runtime_version"])})
            desc.append(f"{k}: {', '.join(rts) or 'runtime unknown'}")
        raise UserError(f"the inputs hold {len(envs)} runtime environments ({'; '.join(desc)}); "
                        f"pass --allow-mixed to merge them anyway")


def _device_label(fp: str, df: pd.DataFrame, meta: dict[str, Any]) -> str:
    info = meta.get("devices", {}).get(fp, {})
    names = sorted(set(df.loc[df["device_fingerprint"] == fp, "device"].dropna()))
    hw = hardware_name(info)
    parts = names + ([hw] if hw and hw not in names else [])
    return f"{fp} ({', '.join(parts) or 'unknown'})"


def merge_meta(metas: Sequence[dict[str, Any]], sources: Sequence[str] | None = None,
               levels: Sequence[dict[str, levelmerge.Level]] | None = None) -> dict:
    """The metadata of the tables ``metas`` combined: devices, environments, protocol(s),
    imports, the reference levels (per key the first input's; ``levels`` as
    :func:`levelmerge.key_levels` read them, else from the metadata alone), the machine's
    timelines, and the pass rule and agent version where the inputs agree on them."""
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "devices": {}, "environments": {},
                           "protocol": None}
    protocols = []
    imports = []
    for m in metas:
        out["devices"].update(m.get("devices") or {})
        out["environments"].update(m.get("environments") or {})
        if m.get("protocol") is not None and m["protocol"] not in protocols:
            protocols.append(m["protocol"])
        if m.get("import"):
            imports.append(m["import"])
        imports += m.get("imports", [])
    if len(protocols) == 1:
        out["protocol"] = protocols[0]
    elif protocols:
        out["protocols"] = protocols
    if imports:
        out["imports"] = imports
    for k in ("pass_rule", "agent_version"):
        vals = {json.dumps(m[k], sort_keys=True) for m in metas if m.get(k) is not None}
        if len(vals) == 1:
            out[k] = next(m[k] for m in metas if m.get(k) is not None)
    if levels is None:
        levels = [levelmerge.key_levels(None, m) for m in metas]
    reference = levelmerge.merged_reference(metas, levels)
    if reference is not None:
        out["reference"] = reference
    timelines = sorted((tl for m in metas for tl in m.get("timelines") or []),
                       key=lambda tl: tl.get("started_at") or 0)
    if timelines:
        out["timelines"] = timelines[-TIMELINES_KEPT:]
    if sources:
        out["merged_from"] = list(sources)
    return out


def _same(a: dict, b: dict) -> bool:
    for c in ("status",) + STAT_COLUMNS:
        x, y = a.get(c), b.get(c)
        if isnull(x) and isnull(y):
            continue
        if isnull(x) or isnull(y) or x != y:
            return False
    return True


def _flags(s: pd.Series) -> pd.Series:
    """A nullable flag column as bools (null counts as False)."""
    return s.map(lambda v: False if isnull(v) else bool(v)).astype(bool)


def _resolve(rows: list[dict], policy: str) -> tuple[dict, str]:
    """The merged row of one key's rows, and what they were: ``single`` (one row, or only
    error rows), ``duplicate`` (ok rows that agree) or ``conflict``."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:  # of error rows the later is kept
        return rows[-1], "duplicate" if len(rows) > 1 else "single"
    distinct: list[dict] = []
    for r in ok:
        if not any(_same(r, d) for d in distinct):
            distinct.append(r)
    if len(distinct) == 1:
        return distinct[0], "duplicate" if len(rows) > 1 else "single"
    pick = POLICIES[policy].pick
    if pick is None:
        r = distinct[0]
        meds = ", ".join(f"{d['latency_ms']:.6g}" for d in distinct)
        raise MergeConflict(f"{len(distinct)} inputs disagree on {r['kind']} {r['spec']} "
                            f"(median ms {meds}); choose --on-conflict "
                            f"{'|'.join(p for p, v in POLICIES.items() if v.pick)}")
    return pick(distinct), "conflict"


@dataclass
class MergeReport:
    table: LatencyTable
    inputs: int
    rows_in: int
    duplicates: int = 0
    conflicts: int = 0
    conflict_keys: list[str] = field(default_factory=list)
    rescaled: int = 0  # rows carried to another input's reference level

    def as_dict(self) -> dict[str, Any]:
        return {"rows": int(len(self.table.df)), "inputs": self.inputs, "rows_in": self.rows_in,
                "duplicates": self.duplicates, "conflicts": self.conflicts,
                "rescaled": self.rescaled}


def merge(tables: Sequence[LatencyTable], on_conflict: str = "error", allow_mixed: bool = False,
          sources: Sequence[str] | None = None, rescale: bool = False) -> MergeReport:
    """One table holding every row of ``tables``; same-key rows go through the policy. Inputs
    holding one device at different reference levels are refused, or with ``rescale`` the
    later ones' rows are carried to the first's level (:mod:`hwprof.latency.levelmerge`)."""
    if on_conflict not in POLICIES:
        raise UserError(f"unknown conflict policy {on_conflict!r}; expected one of: "
                        f"{', '.join(POLICIES)}")
    if not tables:
        raise UserError("merge needs at least one table")
    names = list(sources) if sources else [f"input {i + 1}" for i in range(len(tables))]
    metas = [t.meta for t in tables]
    levels = [levelmerge.key_levels(t.df, t.meta) for t in tables]
    meta = merge_meta(metas, sources, levels)
    frames, rescaled = [t.df for t in tables], 0
    mism = levelmerge.mismatches(levels)
    if rescale:  # rows carried before the inputs are concatenated (once)
        for m in mism:
            frames[m.other], n = levelmerge.relevel_frame(frames[m.other], m.key, m.target,
                                                          metas[m.other])
            rescaled += n
    df = _concat(frames) if any(len(f) for f in frames) else frames[0].iloc[:0]
    if not allow_mixed and len(df):
        check_mixed(df, meta)
    levelmerge.check_plans(metas, names)
    if mism and not rescale:
        raise levelmerge.refuse(mism[0], names)
    groups: dict[tuple, list[dict]] = {}
    for r in df.to_dict("records"):
        groups.setdefault(row_key(r), []).append(r)
    rows, dup, conf = [], 0, 0
    for rs in groups.values():
        row, what = _resolve(rs, on_conflict)
        rows.append(row)
        dup += len(rs) - 1 if what == "duplicate" else 0
        conf += what == "conflict"
    out = normalise(pd.DataFrame(rows, columns=COLUMN_NAMES)) if rows else df
    return MergeReport(LatencyTable(out.reset_index(drop=True), meta), len(tables), int(len(df)),
                       dup, conf, rescaled=rescaled)


def _concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    return pa.concat_tables([pa.Table.from_pandas(normalise(f.copy()), schema=SCHEMA,
                                                  preserve_index=False)
                             for f in frames if len(f)]).to_pandas()


# --------------------------------------------------------------------------- #
# filter


def filter_table(table: LatencyTable, *, kinds: Iterable[str] | None = None,
                 devices: Iterable[str] | None = None, env_keys: Iterable[str] | None = None,
                 status: str | None = None, sources: Iterable[str] | None = None,
                 max_cv: float | None = None, drop_unstable: bool = False,
                 space=None) -> LatencyTable:
    """Rows that pass every given test; ``devices`` match fingerprint or device label."""
    df = table.df
    mask = pd.Series(True, index=df.index)
    if kinds:
        kinds = set(kinds)
        mask &= df["kind"].isin(kinds)
    if devices:
        devices = set(devices)
        labels = {fp: (info or {}).get("label") for fp, info in table.meta.get("devices", {}).items()}
        mask &= (df["device_fingerprint"].isin(devices) | df["device"].isin(devices)
                 | df["device_fingerprint"].map(lambda fp: labels.get(fp) in devices))
    if env_keys:
        mask &= df["env_key"].isin(set(env_keys))
    if status:
        mask &= df["status"] == status
    if sources:
        pats = list(sources)
        mask &= df["source"].fillna("").map(lambda s: any(s == p or s.startswith(p + ":")
                                                          for p in pats))
    if max_cv is not None:
        mask &= df["cv"].isna() | (df["cv"] <= max_cv)
    if drop_unstable:
        mask &= ~_flags(df["unstable"])
    if space is not None:
        mask &= df["signature"].isin({s.signature for s in space.table_specs()})
    out = df[mask].reset_index(drop=True)
    meta = dict(table.meta)
    fps, envs = set(out["device_fingerprint"]), set(out["env_key"])
    meta["devices"] = {k: v for k, v in (meta.get("devices") or {}).items() if k in fps}
    meta["environments"] = {k: v for k, v in (meta.get("environments") or {}).items() if k in envs}
    return LatencyTable(out, meta)


# --------------------------------------------------------------------------- #
# diff


def _ok_rows_of_one_device(table: LatencyTable, what: str) -> pd.DataFrame:
    """The ok rows of a table that holds one device and environment (else a UserError)."""
    ok = table.df[table.df["status"] == "ok"]
    if ok["device_fingerprint"].nunique() > 1 or ok["env_key"].nunique() > 1:
        raise UserError(f"{what} holds several devices or environments; pick one with "
                        f"`hwprof table filter --device ... --out ...` first")
    return ok


@dataclass
class DiffResult:
    """What :func:`diff` found: ``summary`` (JSON-ready: counts, ratios, spread, per kind,
    worst ops) and ``pairs``, one row per common op (signature, kind, spec, macs,
    latency_ms_a, latency_ms_b, ratio, log_ratio) for plots."""

    summary: dict[str, Any]
    pairs: pd.DataFrame


def diff(a: LatencyTable, b: LatencyTable, top: int = 10, names=("a", "b")) -> DiffResult:
    """Per-op ratio b/a for the ops both tables hold, with a summary.

    Rows without a positive median (there should be none) are left out.
    """
    da, db = _ok_rows_of_one_device(a, names[0]), _ok_rows_of_one_device(b, names[1])
    da = da[da["latency_ms"] > 0]
    db = db[db["latency_ms"] > 0]
    j = da[["signature", "kind", "spec", "macs", "latency_ms"]].merge(
        db[["signature", "latency_ms"]], on="signature", suffixes=("_a", "_b"))
    j["ratio"] = j["latency_ms_b"] / j["latency_ms_a"]
    j["log_ratio"] = np.log(j["ratio"])
    out: dict[str, Any] = {"a": names[0], "b": names[1], "common": int(len(j)),
                           "only_a": int(len(set(da["signature"]) - set(j["signature"]))),
                           "only_b": int(len(set(db["signature"]) - set(j["signature"])))}
    out["levels"] = _diff_levels(levelmerge.key_levels(da, a.meta),
                                 levelmerge.key_levels(db, b.meta))
    if j.empty:
        out.update({"median_ratio": None, "geomean_ratio": None, "spread": None, "worst": [],
                    "kinds": {}})
        return DiffResult(out, j)
    r = j["ratio"]
    q10, q25, q75, q90 = (float(r.quantile(q)) for q in (0.1, 0.25, 0.75, 0.9))
    out["median_ratio"] = float(r.median())
    out["geomean_ratio"] = float(np.exp(j["log_ratio"].mean()))
    out["spread"] = {"p10": q10, "p25": q25, "p75": q75, "p90": q90, "min": float(r.min()),
                     "max": float(r.max()),
                     "log_std": float(j["log_ratio"].std(ddof=0))}
    out["kinds"] = {k: {"n": int(len(g)), "median_ratio": float(g["ratio"].median())}
                    for k, g in j.groupby("kind", sort=True)}
    # worst = furthest from the median ratio (the ops that do not scale like the rest)
    j["dev"] = (j["log_ratio"] - math.log(out["median_ratio"])).abs()
    worst = j.sort_values("dev", ascending=False).head(top)
    out["worst"] = [{"kind": w["kind"], "signature": w["signature"], "spec": json.loads(w["spec"]),
                     "a_ms": float(w["latency_ms_a"]), "b_ms": float(w["latency_ms_b"]),
                     "ratio": float(w["ratio"])} for _, w in worst.iterrows()]
    return DiffResult(out, j.drop(columns=["dev"]))


def _diff_levels(la: dict[str, levelmerge.Level], lb: dict[str, levelmerge.Level]
                 ) -> dict[str, Any] | None:
    """The two tables' reference levels, and whether they are one device's at two levels
    (their rows then differ by a common factor before any op does)."""
    if len(la) != 1 or len(lb) != 1:
        return None
    (ka, va), (kb, vb) = next(iter(la.items())), next(iter(lb.items()))
    return {"a_ms": va.level_ms, "a_elasticity": va.elasticity, "b_ms": vb.level_ms,
            "b_elasticity": vb.elasticity, "same_device": ka == kb,
            "same_level": ka == kb and va.same(vb)}


# --------------------------------------------------------------------------- #
# validate


def validate(table: LatencyTable, space=None) -> dict[str, list[str]]:
    """Problems in a table: ``errors`` make it unfit to use, ``warnings`` deserve a look."""
    errors: list[str] = []
    warnings: list[str] = []
    df = table.df
    _check_keys(table, errors, warnings)
    _check_specs(df, errors, warnings)
    ok = df[df["status"] == "ok"]
    _check_latencies(df, ok, errors, warnings)
    out = {"rows": int(len(df)), "errors": errors, "warnings": warnings}
    if space is not None:
        have = set(ok.loc[ok["latency_ms"] > 0, "signature"])
        need = space.table_specs()
        missing = [s for s in need if s.signature not in have]
        out["space"] = {"name": space.name, "needed": len(need), "missing": len(missing),
                        "first_missing": [f"{s.kind} {s.canonical_json()}" for s in missing[:5]]}
        if missing:
            warnings.append(f"{len(missing)} of the {len(need)} ops of space {space.name!r} have "
                            f"no ok row")
    return out


def _check_keys(table: LatencyTable, errors: list, warnings: list) -> None:
    """Duplicate keys, and devices or environments the metadata does not describe."""
    df = table.df
    dup = df.duplicated(list(KEY), keep=False)
    if dup.any():
        errors.append(f"{int(dup.sum())} rows share a key (signature, device, env) with another row")
    meta_devs = set(table.meta.get("devices") or {})
    meta_envs = set(table.meta.get("environments") or {})
    for fp in sorted(set(df["device_fingerprint"]) - meta_devs):
        warnings.append(f"device fingerprint {fp} is not described in the file metadata")
    for k in sorted(set(df["env_key"]) - meta_envs):
        warnings.append(f"environment {k} is not described in the file metadata")


def _check_specs(df, errors: list, warnings: list) -> None:
    """Every row's spec parses, matches its signature and kind, and gives its MACs/params."""
    bad_spec = bad_sig = bad_feat = 0
    first: dict[str, str] = {}
    for r in df[["signature", "kind", "spec", "macs", "params"]].to_dict("records"):
        try:
            spec = parse_spec(json.loads(r["spec"]))
        except (ValueError, TypeError, UserError) as e:
            bad_spec += 1
            first.setdefault("spec", f"{r['signature']}: {e}")
            continue
        if spec.signature != r["signature"] or spec.kind != r["kind"]:
            bad_sig += 1
            first.setdefault("sig", r["signature"])
            continue
        cols = spec_columns(spec)
        if cols["macs"] != r["macs"] or cols["params"] != r["params"]:
            bad_feat += 1
            first.setdefault("feat", r["signature"])
    if bad_spec:
        errors.append(f"{bad_spec} rows have a spec that does not parse (first: {first['spec']})")
    if bad_sig:
        errors.append(f"{bad_sig} rows have a signature or kind that does not match their spec "
                      f"(first: {first['sig']})")
    if bad_feat:
        warnings.append(f"{bad_feat} rows have MACs/params that differ from their spec's "
                        f"(first: {first['feat']}); written by another hwprof version?")


def _check_latencies(df, ok, errors: list, warnings: list) -> None:
    """Ok rows carry positive, ordered latencies; error rows carry none."""
    for col in ("latency_ms", "median_ms"):
        nonpos = ~(ok[col] > 0)
        if nonpos.any():
            errors.append(f"{int(nonpos.sum())} ok rows have no positive {col} "
                          f"(e.g. {ok.loc[nonpos, 'signature'].iloc[0]})")
    order = ((ok["min_ms"] > ok["median_ms"]) | (ok["median_ms"] > ok["max_ms"])).fillna(False)
    if order.any():
        errors.append(f"{int(order.sum())} ok rows have median_ms outside [min_ms, max_ms]")
    err = df[df["status"] != "ok"]
    lat_on_err = err["median_ms"].notna() | err["latency_ms"].notna()
    if lat_on_err.any():
        errors.append(f"{int(lat_on_err.sum())} rows with status {sorted(set(err['status']))} "
                      f"carry a latency")
    if len(err):
        warnings.append(f"{len(err)} rows are errors (ops that failed to build or run)")
    unstable = int(_flags(ok["unstable"]).sum())
    if unstable:
        warnings.append(f"{unstable} ok rows are flagged unstable (large spread)")
    if ok["device_fingerprint"].nunique() > 1:
        warnings.append(f"the table holds {ok['device_fingerprint'].nunique()} devices")
