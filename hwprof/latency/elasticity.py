"""The table's elasticity: how far its ops follow the reference op on this machine.

Every op sample is carried to the table's reference level as ``y * (level / x) ** e``
(:mod:`hwprof.latency.backends.agent.refstats`). The protocol fixes ``e`` at 0.5
(``protocol.OP_ELASTICITY``), measured on one VM (an AMD EPYC, where ops followed the
reference basket about half-way and the agreement of two builds was flat between 0.3 and
0.6). How far ops follow the reference is a property of the machine and the runtime's
threads, not a constant: on an Intel Xeon VM (2026-12-05, the issue-17 tables) one op's
passes agreed best with ``e`` 0.85 (300 sampled nnabla ops), 1.05 (262 real-CNN layers) and
1.15-1.45 (ONNX Runtime at 2 threads), and carried with 0.5 the 2-thread table's passes
agreed within +-10 % for 76 % of pairs against 87 % with its own.

So a build that sets a table's level also fits its elasticity, on its own passes: each op
measured in several passes (separate processes, minutes apart, at different states of the
machine) is derived again from its kept samples under each candidate ``e`` of a grid, and
the ``e`` under which one op's passes agree best (the mean over pairs of passes of
``|log(L_i / L_j)|``, each capped at 0.2 so a disturbed pass weighs no more than a clear
miss) is the table's. Among candidates within 1 % of the best agreement, the one nearest
the protocol's 0.5 is taken, so a flat curve (a machine where it hardly matters) keeps the
default. The table keeps it beside its level; builds that adopt the level
(``--reference-from``) adopt it too, and every row is derived with it.

Standard library only, like refstats (the agent never calls it, the host does).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from hwprof.latency.backends.agent import refstats
from hwprof.latency.backends.agent.protocol import DEFAULTS, OP_ELASTICITY
from hwprof.latency.passes import recentre_ci, row_latency

GRID = tuple(round(0.05 * i, 2) for i in range(41))  # 0.0 .. 2.0
CAP = 0.2  # a pair of passes further apart than this (log) counts as this far
TOLERANCE = 0.01  # relative: candidates this near the best agreement count as tied
MIN_OPS = 20  # ops with two or more passes (with their samples) needed to fit

Passes = Sequence[tuple[Sequence[float], Sequence[float]]]  # per pass: (samples, references)


def pass_latencies(passes: Passes, level_ms: float, e: float, cfg: dict[str, Any]) -> list[float]:
    """Each pass's latency at ``level_ms`` from its samples, carried with elasticity ``e``."""
    return [refstats.estimate(list(y), list(x), level_ms, cfg["target_ci"], cfg["min_side"],
                              fixed_elasticity=e)["latency_ms"] for y, x in passes]


def disagreement(ops: Sequence[tuple[float, Passes]], e: float, cfg: dict[str, Any]) -> float:
    """The mean over every op's pairs of passes of |log(L_i / L_j)| (capped at CAP) when the
    samples are carried with ``e``; ``ops``: (level, passes) of ops with two or more passes."""
    total, n = 0.0, 0
    for level, passes in ops:
        logs = [math.log(v) for v in pass_latencies(passes, level, e, cfg)]
        for i in range(len(logs)):
            for j in range(i + 1, len(logs)):
                total += min(abs(logs[i] - logs[j]), CAP)
                n += 1
    return total / n if n else 0.0


def fit(ops: Sequence[tuple[float, Passes]], cfg: dict[str, Any] | None = None,
        default: float = OP_ELASTICITY) -> dict[str, Any] | None:
    """The elasticity under which the passes of ``ops`` agree best (see the module), with
    the disagreement at it and at ``default``; None with fewer than MIN_OPS usable ops."""
    cfg = {**DEFAULTS, **(cfg or {})}
    ops = [(lv, p) for lv, p in ops if len(p) >= 2 and all(len(y) and len(y) == len(x)
                                                            for y, x in p)]
    if len(ops) < MIN_OPS:
        return None
    scores = {e: disagreement(ops, e, cfg) for e in GRID}
    best = min(scores.values())
    tied = [e for e, s in scores.items() if s <= best * (1 + TOLERANCE)]
    chosen = min(tied, key=lambda e: (abs(e - default), e))
    return {"elasticity": chosen, "ops": len(ops), "disagreement": scores[chosen],
            "default": default,
            "disagreement_default": scores.get(default, disagreement(ops, default, cfg))}


def row_passes(row: dict[str, Any]) -> Passes | None:
    """A row's passes as (samples, references), or None when some pass lacks its samples."""
    ys, xs = row.get("pass_samples_ms"), row.get("pass_sample_ref_ms")
    if ys is None or xs is None or len(ys) == 0 or len(ys) != len(xs):
        return None
    out = [([float(v) for v in y], [float(v) for v in x]) for y, x in zip(ys, xs)]
    if any(not y or len(y) != len(x) for y, x in out):
        return None
    return out


def carried(row: dict[str, Any], lats: Sequence[float],
            combine: Callable[[Sequence[float]], float] = row_latency) -> dict[str, Any]:
    """The columns of ``row`` once its passes' latencies are ``lats``: those, the row's latency
    (``combine``: the table's rule) and its CI recentred on it (passes.recentre_ci)."""
    new = combine(lats)
    ci = {k: row.get(k) for k in ("latency_ms", "latency_ci_low_ms", "latency_ci_high_ms")}
    recentre_ci(ci, new)
    return {**ci, "latency_ms": new, "pass_medians_ms": list(lats)}


def rederive(row: dict[str, Any], e: float, cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of ``row`` that change when its passes are carried with ``e``: every
    pass's latency, the row's (by the table's rule), its CI scaled along, the elasticity.
    A row without every pass's samples is returned unchanged (an empty dict)."""
    passes = row_passes(row)
    level = row.get("ref_level_ms")
    if passes is None or level is None or not float(level) > 0:
        return {}
    cfg = {**DEFAULTS, **(cfg or {})}
    return {**carried(row, pass_latencies(passes, float(level), e, cfg)), "ref_elasticity": e}
