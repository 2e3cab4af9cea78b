"""Reference levels when tables are combined (``table merge``, fleets).

Every latency in a table is the op's at the table's reference level for its device and
environment, carried there with the table's elasticity (:mod:`hwprof.latency.reference`,
:mod:`hwprof.latency.elasticity`). Two tables of one device built at different levels (two
sessions whose first groups found the machine in different states) differ by a common
factor before any op differs: on the Intel VM of 2026-12-05 two builds of the same 300 ops
3.5 hours apart had levels of 1.380 and 1.101 ms. Their rows must not be merged, averaged or
compared as they stand; they can be once one is carried to the other's level.

:func:`key_levels` reads what level (and elasticity) each input holds per device key;
:func:`mismatches` names the keys where later inputs differ from the first that holds them;
:func:`relevel_frame` carries a frame's rows of those keys to the target, from their kept
samples where they have them (exact: each pass derived again at the new level), else by the
factor ``(target / level) ** e`` (the rows of tables that kept no samples).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from hwprof.errors import UserError
from hwprof.latency import elasticity as el
from hwprof.latency.backends.agent import refstats
from hwprof.latency.backends.agent.protocol import DEFAULTS, OP_ELASTICITY
from hwprof.latency.conflicts import isnull
from hwprof.latency.reference import adopt_level, level_key
from hwprof.latency.table import LatencyTable

RTOL = 1e-9  # levels are copied through JSON exactly; anything further apart is another level
SCALED = ("latency_ms", "latency_ci_low_ms", "latency_ci_high_ms")


@dataclass(frozen=True)
class Level:
    level_ms: float
    elasticity: float | None  # None: each op's own (a protocol with "elasticity": null)
    entry: dict[str, Any] | None  # the table's reference.levels entry, where it has one

    def same(self, other: "Level") -> bool:
        return (math.isclose(self.level_ms, other.level_ms, rel_tol=RTOL)
                and self.elasticity == other.elasticity)

    def describe(self) -> str:
        e = "each op's own" if self.elasticity is None else f"{self.elasticity:g}"
        return f"{self.level_ms:.4g} ms (elasticity {e})"


def protocol_elasticity(meta: dict[str, Any]) -> float | None:
    """The elasticity a table's protocol carries op samples with (null: each op's own)."""
    proto = meta.get("protocol") or {}
    e = proto.get("elasticity", OP_ELASTICITY) if proto else OP_ELASTICITY
    return None if e is None else float(e)


def key_levels(df: pd.DataFrame | None, meta: dict[str, Any]) -> dict[str, Level]:
    """The level of each device key (fingerprint/env_key) of one table: its
    ``reference.levels`` entry, else the level its ok rows were carried to (tables whose
    metadata lost it); keys whose rows hold no level (imports, old tables) are left out, and
    so are entries for keys the table has no rows of (``df`` None: every entry)."""
    levels = (meta.get("reference") or {}).get("levels") or {}
    held = None if df is None else {level_key(fp, env) for fp, env in
                                    zip(df["device_fingerprint"], df["env_key"])}
    out: dict[str, Level] = {}
    for key, entry in levels.items():
        if held is not None and key not in held:
            continue
        e = entry.get("elasticity")
        out[key] = Level(float(entry["level_ms"]),
                         float(e) if e is not None else protocol_elasticity(meta), entry)
    if df is None or df.empty:
        return out
    ok = df[(df["status"] == "ok") & df["ref_level_ms"].notna()]
    for (fp, env), grp in ok.groupby(["device_fingerprint", "env_key"], sort=True):
        key = level_key(fp, env)
        if key not in out:
            out[key] = Level(float(grp["ref_level_ms"].mode().iloc[0]),
                             protocol_elasticity(meta), None)
    return out


@dataclass(frozen=True)
class Mismatch:
    key: str
    first: int  # index of the input whose level is the target
    other: int
    target: Level
    found: Level


def first_levels(levels: Sequence[dict[str, Level]]) -> dict[str, Level]:
    """Per key the level of the first input that holds it (the target of the others)."""
    out: dict[str, Level] = {}
    for per_key in levels:
        for key, lv in per_key.items():
            out.setdefault(key, lv)
    return out


def mismatches(levels: Sequence[dict[str, Level]]) -> list[Mismatch]:
    """Where an input holds a key at another level (or elasticity) than the first input that
    holds it; the first input's is the target."""
    first: dict[str, tuple[int, Level]] = {}
    out = []
    for i, per_key in enumerate(levels):
        for key, lv in per_key.items():
            if key not in first:
                first[key] = (i, lv)
            elif not first[key][1].same(lv):
                out.append(Mismatch(key, first[key][0], i, first[key][1], lv))
    return out


def refuse(m: Mismatch, sources: Sequence[str], hint: str | None = None) -> UserError:
    """The one-line error for a mismatch the user did not ask to rescale."""
    a, b = sources[m.first], sources[m.other]
    ratio = m.found.level_ms / m.target.level_ms
    fp, env = m.key.split("/", 1)
    gap = (f"their rows differ by about {abs(ratio - 1) * 100:.0f} % before any op does"
           if not math.isclose(ratio, 1.0, rel_tol=RTOL) else "their rows are carried differently")
    hint = hint or f"pass --rescale to carry {b}'s rows to {a}'s level"
    return UserError(f"{a} and {b} hold device {fp} (environment {env}) at different reference "
                     f"levels, {m.target.describe()} and {m.found.describe()}: {gap}; {hint}, "
                     f"or build one with --reference-from the other")


def relevel_row(row: dict[str, Any], target: Level, cfg: dict[str, Any]) -> dict[str, Any]:
    """The columns of ``row`` that change when it is carried to ``target``: from its kept
    samples (every pass derived again at the target level with the target's elasticity), else
    its latency and CI scaled by ``(target / level) ** e``."""
    own = row.get("ref_elasticity")
    e = (target.elasticity if target.elasticity is not None
         else OP_ELASTICITY if isnull(own) else float(own))
    passes = el.row_passes(row) or _single_pass(row)
    if passes is not None:
        ests = [refstats.estimate(y, x, target.level_ms, cfg["target_ci"], cfg["min_side"],
                                  fixed_elasticity=e) for y, x in passes]
        upd = el.carried(row, [est["latency_ms"] for est in ests])
        near = min(ests, key=lambda est: abs(est["latency_ms"] - upd["latency_ms"]))
        upd["bracketed"] = near["bracketed"]
    else:
        factor = (target.level_ms / float(row["ref_level_ms"])) ** e
        # latency and CI by one factor: the CI keeps its width relative to the latency
        upd = {c: None if isnull(row.get(c)) else float(row[c]) * factor for c in SCALED}
        pm = row.get("pass_medians_ms")
        upd["pass_medians_ms"] = None if pm is None else [float(v) * factor for v in pm]
    return {**upd, "ref_level_ms": target.level_ms, "ref_elasticity": e}


def relevel_frame(df: pd.DataFrame, key: str, target: Level, meta: dict[str, Any]
                  ) -> tuple[pd.DataFrame, int]:
    """``df`` with its ok rows of ``key`` carried to ``target``; and how many were."""
    cfg = {**DEFAULTS, **(meta.get("protocol") or {})}
    fp, env = key.split("/", 1)
    mask = ((df["status"] == "ok") & (df["device_fingerprint"] == fp) & (df["env_key"] == env)
            & df["ref_level_ms"].notna())
    out = df.copy()
    for i in out.index[mask]:
        for col, v in relevel_row(out.loc[i].to_dict(), target, cfg).items():
            out.at[i, col] = v
    return out, int(mask.sum())


def one_level(table: LatencyTable, what: str) -> tuple[str, Level]:
    """The one device key and level a table holds (else a UserError naming ``what``)."""
    levels = key_levels(table.df, table.meta)
    if len(levels) != 1:
        raise UserError(f"{what} holds {len(levels)} reference levels (one per device and "
                        f"environment); it needs exactly one (`hwprof table filter --device "
                        f"... --env ...` picks one)")
    return next(iter(levels.items()))


def rescale_table(table: LatencyTable, key: str, lv: Level, target: Level, how: str
                  ) -> tuple[LatencyTable, int]:
    """``table``, whose one device key ``key`` is at ``lv`` (:func:`one_level`), with its rows
    carried to ``target`` and the level recorded as adopted (``how``); and how many rows were
    carried."""
    meta = copy.deepcopy(table.meta)
    if lv.same(target):
        return LatencyTable(table.df.copy(), meta), 0
    df, n = relevel_frame(table.df, key, target, table.meta)
    adopt_level(meta, key, target.level_ms, how, target.elasticity)
    return LatencyTable(df, meta), n


def merged_reference(metas: Sequence[dict[str, Any]], levels: Sequence[dict[str, Level]]
                     ) -> dict[str, Any] | None:
    """The merged table's ``reference``: the first plan, and per key the level of the first
    input holding it (the one every row of the key is at once mismatches are rescaled)."""
    plans = [(m.get("reference") or {}).get("plan") for m in metas]
    plan = next((p for p in plans if p is not None), None)
    out: dict[str, Any] = {}
    for key, lv in first_levels(levels).items():
        out[key] = dict(lv.entry) if lv.entry else {
            "level_ms": lv.level_ms, "chosen": "the rows' own level (a merged input without a "
            "recorded one)"}
        if lv.elasticity is not None:
            out[key]["elasticity"] = lv.elasticity
    if plan is None and not out:
        return None
    return {"plan": plan, "levels": out}


def check_plans(metas: Sequence[dict[str, Any]], sources: Sequence[str]) -> None:
    """Refuse inputs measured against different reference ops (their levels are levels of
    different things, and no factor carries one to the other)."""
    seen: list[tuple[str, Any]] = []
    for src, m in zip(sources, metas):
        plan = (m.get("reference") or {}).get("plan")
        if plan is None:
            continue
        if seen and plan != seen[0][1]:
            raise UserError(f"{seen[0][0]} and {src} were measured against different reference "
                            f"ops: their rows are not comparable at any level (merge tables "
                            f"built by one hwprof protocol)")
        seen.append((src, plan))


def _single_pass(row: dict[str, Any]):
    """A row of one pass whose samples are kept only as ``samples_ms`` (schema 3 tables)."""
    if not isnull(row.get("passes")) and int(row["passes"]) > 1:
        return None
    ys, xs = row.get("samples_ms"), row.get("sample_ref_ms")
    if ys is None or xs is None or len(ys) == 0 or len(ys) != len(xs):
        return None
    return [([float(v) for v in ys], [float(v) for v in xs])]



def agreed_levels(tables: Sequence[LatencyTable], sources: Sequence[str], hint: str
                  ) -> dict[str, Level]:
    """Per device key the one level the ``tables`` hold it at (refused, with ``hint``, where
    two of them hold one key at different levels): what a fit on all of them is at."""
    levels = [key_levels(t.df, t.meta) for t in tables]
    for m in mismatches(levels):
        raise refuse(m, sources, hint)
    return first_levels(levels)


def level_record(levels: dict[str, Level], key: str | None = None) -> dict[str, Any]:
    """``levels`` (or only ``key``'s) as JSON for a predictor's metadata."""
    return {k: {"level_ms": lv.level_ms, "elasticity": lv.elasticity}
            for k, lv in levels.items() if key is None or k == key}


def predictor_level_note(predictor, table: LatencyTable, path: str) -> str | None:
    """:func:`level_note` for a predictor's recorded level, naming its first training table
    as the one to rescale to."""
    meta = getattr(predictor, "meta", None) or {}
    sources = meta.get("sources") or []
    return level_note(meta.get("reference_levels"), table, path, sources[0] if sources else None)


def level_note(record: dict[str, Any] | None, table: LatencyTable, path: str,
               fitted_on: str | None) -> str | None:
    """A one-line note when ``table`` holds a device the predictor was fitted on (its
    ``record``, :func:`level_record`) at another reference level; else None."""
    held = key_levels(table.df, table.meta)
    for key, r in (record or {}).items():
        lv = held.get(key)
        fit = Level(float(r["level_ms"]), r.get("elasticity"), None)
        if lv is None or lv.same(fit):
            continue
        e = fit.elasticity if fit.elasticity is not None else OP_ELASTICITY
        factor = (lv.level_ms / fit.level_ms) ** e
        how = (f"`hwprof table rescale {path} --reference-from {fitted_on} --out ...` puts it at "
               f"the predictor's level" if fitted_on else "`hwprof table rescale` puts it at the "
               "predictor's level")
        return (f"{path} is at reference level {lv.describe()}, the predictor was fitted at "
                f"{fit.describe()}: its latencies hold a common factor of about {factor:.3f} "
                f"against the predictions; {how}")
    return None
