"""Several passes over a build's ops: how a table row combines them.

``build-table --passes K`` measures every op K times, in K sweeps over the op
list (each later sweep in its own shuffled order). One sweep can be unlucky
for an op: on a shared machine a neighbour may hog memory bandwidth for a few
seconds, and the op's tight within-pass CI says nothing about that. Across
passes minutes apart such spells hit an op in one pass, not in all, and
each pass's process places its buffers anew, so several passes together say
what the op costs on that machine.

A row keeps every pass's latency (``pass_medians_ms``, in measurement order);
``latency_ms`` is the **geometric mean of the lower half of them** (:func:`row_latency`:
the ceil(K/2) lowest of K passes; one pass: itself; two: the lower). The other statistics
(sample count, IQR, raw median...) are those of one real sweep, not a mix of several: the
pass nearest that latency; its CI is kept as a relative width around ``latency_ms`` (the
precision of one pass; the passes' own spread is in ``pass_medians_ms``).
Every pass's paired samples are kept too (``pass_samples_ms`` and
``pass_sample_ref_ms``, schema 4, in the same order), so a row can be derived
again from all its passes under another estimator (``scripts/reestimate_passes.py``);
a pass whose samples are not known (measured by an older hwprof) has empty lists.
Passes added by a later build (``--passes`` raised, or a resumed build) are
merged with the row on disk; ``latency_ms`` stays exact, but the statistics of
passes measured by an earlier build are no longer at hand except for the kept
one, so the other statistics then come from the pass nearest the latency among
the kept and the new ones.

Why the lower half (since 2026-12-05; agent v8 to then: the mean of all passes; before v8:
the median pass). Some ops' latencies fall in two levels, 5-15 % apart, by where a
process's heap put their per-call buffers (docs/MEASUREMENTS.md, issue 12: the glibc probe), and which
level a pass lands in is luck: one slow pass among three pulled the mean of all of them by
a third of the gap, so two builds of one space differed on exactly those ops. The slow
level is the accident (rarer, and not what the same op costs in most processes); the lower
half keeps the fast one whenever at least half the passes found it, and for an op whose
passes merely scatter it is still a mean of several. Re-combining the kept passes of 18
pairs of builds 10-16 minutes apart (13 of mbv2-cifar, 5 of mbv2-mini: 1,200 op pairs,
``scripts/recombine_passes.py``), ops outside +-5 % of each other: 12 with the mean of all
passes, 11 with the median pass, 1 with the lower half (2 with the lowest pass alone); on
14 pairs measured after the rule was fixed, 3 of 960 against 7, 12 pairs without a miss; on
the issue-17 tables the change moved labels by a median -0.4 to -0.6 % and left the
predictors' figures where they were. (At agent v8 the mean of all passes had replaced the
median pass: the median of three throws two of them away.)
"""

from __future__ import annotations

import math
import random
from typing import Any, Sequence

Row = dict[str, Any]


def _null(v: Any) -> bool:
    """A missing cell as a row dict holds it: None, or NaN from pandas."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def done_passes(row: Row | None) -> int:
    """How many passes an existing row holds (0: none usable)."""
    if row is None or row.get("status") != "ok":
        return 0
    n = row.get("passes")
    return 1 if _null(n) else int(n)  # null: a version-1 or imported row, one measurement


def _medians(row: Row) -> list[float]:
    meds = row.get("pass_medians_ms")
    if _null(meds) or len(meds) == 0:
        return [float(row["latency_ms"])]
    return [float(m) for m in meds]


def lower_median(values: Sequence[float]) -> float:
    """The middle value; of the two middle ones of an even count, the lower."""
    xs = sorted(values)
    return xs[(len(xs) - 1) // 2]


def combine(prior: Row | None, new: Sequence[Row]) -> Row:
    """The row that stands for ``prior`` (the row on disk, or None) plus ``new`` passes.

    Any failed pass makes the op an error row: an op that fails once is not a
    latency. ``new`` is in measurement order and is never empty.
    """
    if not new:
        raise ValueError("combine needs at least one new pass")
    failed = [r for r in new if r.get("status") != "ok"]
    if failed:
        out = dict(failed[-1])
        out["passes"], out["pass_medians_ms"] = None, None
        out["pass_samples_ms"], out["pass_sample_ref_ms"] = None, None
        return out
    candidates: list[Row] = []
    medians: list[float] = []
    if done_passes(prior):
        candidates.append(prior)
        medians += _medians(prior)
    candidates += list(new)
    medians += [float(r["latency_ms"]) for r in new]
    target = row_latency(medians)
    best = min(range(len(candidates)),
               key=lambda i: (abs(float(candidates[i]["latency_ms"]) - target),
                              float(candidates[i]["latency_ms"]), i))
    out = dict(candidates[best])
    recentre_ci(out, target)
    out["latency_ms"] = target  # exact even when most passes' statistics are gone
    out["passes"], out["pass_medians_ms"] = len(medians), medians
    out["pass_samples_ms"], out["pass_sample_ref_ms"] = _pass_samples(prior, new)
    return out


def _lists(v: Any) -> list[list[float]] | None:
    return None if _null(v) else [[float(x) for x in p] for p in v]


def _pass_samples(prior: Row | None, new: Sequence[Row]) -> tuple[list, list]:
    """Every pass's samples and reference levels: the prior row's known ones (empty lists for
    its passes measured without them), then the new passes'."""
    ys: list[list[float]] = []
    xs: list[list[float]] = []
    n = done_passes(prior)
    if n:
        py, px = _lists(prior.get("pass_samples_ms")), _lists(prior.get("pass_sample_ref_ms"))
        if py is None or px is None or len(py) != n or len(px) != n:
            one = n == 1 and not (_null(prior.get("samples_ms")) or _null(prior.get("sample_ref_ms")))
            py = [_flat(prior.get("samples_ms"))] if one else [[] for _ in range(n)]
            px = [_flat(prior.get("sample_ref_ms"))] if one else [[] for _ in range(n)]
        ys, xs = py, px
    for r in new:
        ys.append(_flat(r.get("samples_ms")))
        xs.append(_flat(r.get("sample_ref_ms")))
    return ys, xs


def _flat(v: Any) -> list[float]:
    return [] if _null(v) else [float(x) for x in v]


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# What a table's metadata says about its multi-pass rows (``pass_rule``; tables written before
# 2026-12-05 have none: their rows are the mean of all passes, or the median pass before agent 8).
ROW_RULE = "lower-half geometric mean"


def row_latency(pass_latencies: Sequence[float]) -> float:
    """A row's latency from its passes' latencies: the geometric mean of the lower half
    (the ceil(K/2) lowest of K; the module's docstring says why)."""
    xs = sorted(pass_latencies)
    return geometric_mean(xs[:(len(xs) + 1) // 2])


# A row whose passes scatter this much (the standard error of their mean log latency: all
# passes, whichever half the row's latency takes) gets extra passes when a build allows them
# (build-table --extra-passes): two builds whose rows each carry 1.25 % are within +-5 % of
# each other for ~99 % of ops.
PASS_SE = 0.0125


def pass_se(row: Row | None) -> float:
    """The relative standard error of a row's latency from its passes' scatter (0 when fewer
    than two passes are known): sd of the passes' log latencies over sqrt(passes)."""
    if row is None:
        return 0.0
    logs = [math.log(m) for m in _medians(row) if m > 0]
    n = len(logs)
    if n < 2:
        return 0.0
    mean = sum(logs) / n
    return math.sqrt(sum((v - mean) ** 2 for v in logs) / (n - 1) / n)


def recentre_ci(row: Row, latency_ms: float) -> None:
    """The kept pass's CI as the same relative width around the row's latency ``latency_ms``
    (``row["latency_ms"]`` is the latency the CI is around now)."""
    own = float(row["latency_ms"])
    for col in ("latency_ci_low_ms", "latency_ci_high_ms"):
        if not _null(row.get(col)) and own > 0:
            row[col] = float(row[col]) * latency_ms / own


def pass_order(items: Sequence, pass_index: int, seed: int) -> list:
    """The order of one sweep: as given for the first, shuffled by (seed, pass) after."""
    items = list(items)
    if pass_index > 0:
        random.Random(f"hwprof-pass:{seed}:{pass_index}").shuffle(items)
    return items
