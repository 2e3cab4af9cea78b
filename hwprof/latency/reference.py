"""The reference op's side of a table: its level, and how far the machine moved.

Every op sample is timed beside the reference op (see
:mod:`hwprof.latency.backends.agent.refstats`), and a row's ``latency_ms`` is
the op's latency when the reference runs at the table's *reference level*.
That level is a constant of the table, per device and environment: the first
build sets it (the centre of the reference's fastest common state over its
first group of ops) and every later build, ``calibrate``, ``measure-arch --table`` and the search's
end-to-end check reuse it, so all their numbers are comparable. Builds may
also adopt another table's level (``build-table --reference-from``), which
makes two tables comparable row by row.

Each build also keeps the reference's timeline (its level over time), the
record of how the machine moved while the rows were measured
(:mod:`hwprof.latency.machine`).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from hwprof.errors import UserError
from hwprof.latency.backends.agent import reference_ops, refstats
from hwprof.latency.backends.agent.protocol import DEFAULTS, OP_ELASTICITY
from hwprof.latency.table import environment_key


def level_key(fingerprint: str, env_key: str) -> str:
    return f"{fingerprint}/{env_key}"


def device_key(hello: dict[str, Any]) -> str:
    """The reference-level key (fingerprint/env_key) of an agent's device."""
    return level_key(hello["fingerprint_id"], environment_key(hello["environment"], hello["device"]))


def table_level(meta: dict[str, Any], key: str) -> float | None:
    """The table's reference level for one device/environment key, or None."""
    entry = (meta.get("reference") or {}).get("levels", {}).get(key)
    return float(entry["level_ms"]) if entry else None


def environment_mismatch(meta: dict[str, Any], hello: dict[str, Any]) -> str | None:
    """Where the table holds a level for this device (fingerprint) only under other
    environments: what differs (e.g. ``omp_num_threads: table None, here '1'``); else None."""
    from hwprof.latency.table import ENV_KEY_FIELDS
    fp = hello.get("fingerprint_id")
    levels = (meta.get("reference") or {}).get("levels") or {}
    here_key = device_key(hello)
    others = [k.split("/", 1)[1] for k in levels if k.startswith(f"{fp}/") and k != here_key]
    if not others or here_key in levels:
        return None
    here = hello.get("environment") or {}
    envs = meta.get("environments") or {}
    diffs = sorted({f"{f}: table {envs[k].get(f)!r}, here {here.get(f)!r}"
                    for k in others if k in envs for f in ENV_KEY_FIELDS
                    if f != "device" and envs[k].get(f) != here.get(f)})
    return "; ".join(diffs) or f"environment {here_key.split('/', 1)[1]} vs {', '.join(others)}"


def check_plan(meta: dict[str, Any], plan: dict[str, Any] | None, where: str) -> None:
    """Refuse to mix rows measured against another reference op."""
    held = (meta.get("reference") or {}).get("plan")
    if held is not None and plan is not None and held != plan:
        def named(p):
            name = reference_ops.name_of(p)
            return f"the {name!r} reference" if name else f"the reference op {p}"
        raise UserError(f"{where} was measured against {named(held)}; this agent uses "
                        f"{named(plan)}: its rows would not be comparable (leave out "
                        f"--reference to measure against the table's own)")


def protocol_for(meta: dict[str, Any], protocol: dict[str, Any] | None) -> dict[str, Any]:
    """``protocol`` asking for the reference op the table (``meta``) was measured against
    (agents up to 11: one MBConv; since 12: a basket), unless it names one itself: rows, resumed
    builds and networks measured against a table are then comparable with its rows."""
    out = dict(protocol or {})
    name = reference_ops.name_of((meta.get("reference") or {}).get("plan"))
    if name is not None and "reference" not in out:
        out["reference"] = name
    return out


def adopt_level(meta: dict[str, Any], key: str, level_ms: float, how: str,
                elasticity: float | None = None) -> float:
    """Store ``level_ms`` as the table's level for ``key`` (a first build, or --reference-from),
    with the elasticity its rows are carried with where it is known (another table's, given
    with its level; a first build fits its own later, :func:`set_elasticity`)."""
    if not level_ms > 0:
        raise UserError(f"a reference level must be a positive number of ms, got {level_ms!r}")
    default_plan = reference_ops.PLANS[DEFAULTS["reference"]]
    ref = meta.setdefault("reference", {"plan": default_plan, "levels": {}})
    ref.setdefault("plan", default_plan)
    entry = ref.setdefault("levels", {})[key] = {
        "level_ms": float(level_ms), "chosen": how,
        "set_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if elasticity is not None:
        entry["elasticity"] = float(elasticity)
    return float(level_ms)


FIRST_GROUP = "the reference's fastest common state, first group"


def table_elasticity(meta: dict[str, Any], key: str) -> float | None:
    """The elasticity the table's rows for ``key`` are carried with (see
    :mod:`hwprof.latency.elasticity`), or None: the protocol's own."""
    entry = (meta.get("reference") or {}).get("levels", {}).get(key) or {}
    e = entry.get("elasticity")
    return None if e is None else float(e)


def set_elasticity(meta: dict[str, Any], key: str, fitted: dict[str, Any]) -> None:
    """Keep a fitted elasticity (:func:`hwprof.latency.elasticity.fit`) beside ``key``'s level."""
    entry = meta["reference"]["levels"][key]
    entry["elasticity"] = float(fitted["elasticity"])
    entry["elasticity_fit"] = {k: fitted[k] for k in
                               ("ops", "disagreement", "default", "disagreement_default")}


def protocol_with(protocol: dict[str, Any] | None, elasticity: float | None) -> dict[str, Any]:
    """``protocol`` with the table's ``elasticity`` where the protocol carries op samples with
    the default one (``protocol.OP_ELASTICITY``); a protocol that chose its own (the quick
    one's 1, or null: fitted per op) keeps it."""
    out = dict(protocol or {})
    if elasticity is not None and out.get("elasticity", OP_ELASTICITY) == OP_ELASTICITY:
        out["elasticity"] = elasticity
    return out


def level_from_timeline(timeline: Sequence[Sequence[float]]) -> float:
    """The level a new table adopts from its first group (see refstats.level_of)."""
    return refstats.level_of([v for _, v in timeline])


def latency_columns(res: dict[str, Any], level_ms: float, cfg: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The reference-paired columns of one ok result, at ``level_ms``."""
    cfg = {**DEFAULTS, **(cfg or {})}
    est = refstats.estimate_with(res["samples_ms"], res["refs_ms"], level_ms, cfg)
    lat = est["latency_ms"]
    return {"latency_ms": lat, "latency_ci_low_ms": est["latency_ci_low_ms"],
            "latency_ci_high_ms": est["latency_ci_high_ms"], "ref_level_ms": level_ms,
            "ref_elasticity": est["ref_elasticity"], "ref_median_ms": est["ref_median_ms"],
            "bracketed": est["bracketed"], "converged": est["converged"],
            "unstable": (not est["converged"]) or est["latency_iqr_ms"] > cfg["unstable_cv"] * lat,
            "samples_ms": list(res["samples_ms"]), "sample_ref_ms": list(res["refs_ms"])}
