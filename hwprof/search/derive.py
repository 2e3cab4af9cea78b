"""Derive a discrete architecture that respects the budget.

The most probable architecture (largest ``sum_l log p_l[choice_l]``) whose
estimated latency is within the budget. Latency is additive over layers, so a
dynamic programme over discretised latency finds, for every total latency
bucket, the most probable architecture with that total; candidates are then
checked in decreasing probability with the LatencyModel's whole-network
estimate (``estimate_arch``, calibrated when a calibration is attached), which
need not be additive.

With variable depth (a stage's trailing layers may be skipped), the derived
architecture writes each stage's skips last; only layers beyond a stage's
minimum depth have a ``skip`` candidate, so no stage is derived shallower than
its minimum.

A search maximises accuracy, and accuracy grows with capacity, so by default
architectures that use at least ``min_fill`` of the budget are preferred; if
none exists the most probable one under the budget is taken.

Other budgets (parameters, peak activation memory; see
:mod:`hwprof.search.constraints`) are hard constraints too: parameters are a
second additive dimension of the programme, and candidates over the memory
budget are left out.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.spaces import SKIP
from hwprof.search.latency_loss import LatencyTable2D


def _costs(lut: LatencyTable2D, cap_ms: float, buckets: int, limits, param_buckets: int):
    """Integer costs per layer: latency buckets and (with a parameter budget) parameter buckets."""
    step = (cap_ms - lut.fixed_ms) / buckets
    lat = [np.rint(t / step).astype(int) for t in lut.ms]
    if limits is None or limits.param_budget is None:
        return lat, [np.zeros(len(t), dtype=int) for t in lut.ms], 0
    pstep = max(limits.param_budget - limits.fixed_params, 1.0) / param_buckets
    par = [np.rint(p / pstep).astype(int) for p in limits.params]
    return lat, par, int(param_buckets * 1.1) + 1   # slack for rounding; checked exactly later


def _dp(logp, lat_cost, par_cost, nb: int, npb: int):
    """best[b, q] = max log-prob of archs whose rounded latency is b and parameters q."""
    best = np.full((nb + 1, npb + 1), -np.inf)
    best[0, 0] = 0.0
    back = []
    for lp, cl, cp in zip(logp, lat_cost, par_cost):
        new = np.full_like(best, -np.inf)
        arg = np.full(best.shape, -1, dtype=np.int16)
        for k, v in enumerate(lp):
            c, q = int(cl[k]), int(cp[k])
            if c > nb or q > npb or not np.isfinite(v):
                continue
            cand = np.full_like(best, -np.inf)
            cand[c:, q:] = best[:nb + 1 - c, :npb + 1 - q] + v
            better = cand > new
            new[better] = cand[better]
            arg[better] = k
        back.append((arg, cl, cp))
        best = new
    return best, back


def _trace(back, end: tuple[int, int]) -> list[int]:
    idx = []
    b, q = end
    for arg, cl, cp in reversed(back):
        k = int(arg[b, q])
        idx.append(k)
        b -= int(cl[k])
        q -= int(cp[k])
    return idx[::-1]


def _log_probs(probs, limits) -> list[np.ndarray]:
    logp = [np.log(np.clip(np.asarray(p, dtype=float), 1e-12, None)) for p in probs]
    if limits is not None:   # candidates over the memory budget are never derived
        logp = [np.where(a, lp, -np.inf) for lp, a in zip(logp, limits.allowed())]
    return logp


def trailing_skips(lut: LatencyTable2D, idx: Sequence[int]) -> list[int]:
    """Candidate indices with each stage's skips moved behind its kept optional layers.

    A stage's optional layers share input shape and candidates, so this keeps every
    op (and the latency): a variable depth is written as trailing layers skipped.
    """
    groups = lut.optional_stage or [-1] * len(idx)
    out = [int(i) for i in idx]
    for g in sorted(set(groups) - {-1}):
        pos = [li for li, s in enumerate(groups) if s == g]
        names = [lut.names[li][out[li]] for li in pos]
        kept = [n for n in names if n != SKIP] + [SKIP] * sum(n == SKIP for n in names)
        for li, n in zip(pos, kept):
            out[li] = lut.names[li].index(n)
    return out


def fastest_ms(lut: LatencyTable2D, estimate: Callable[[list[str]], float] | None = None
               ) -> float:
    """The fastest architecture's latency: the additive minimum, or its whole-network estimate
    (a calibration is monotone in the sum, so the fastest stays the fastest)."""
    if estimate is None:
        return lut.range_ms()[0]
    return float(estimate([names[int(np.argmin(t))] for names, t in zip(lut.names, lut.ms)]))


def derive(probs: Sequence[np.ndarray], lut: LatencyTable2D, budget_ms: float,
           estimate: Callable[[list[str]], float] | None = None, min_fill: float = 0.9,
           buckets: int = 2000, max_checks: int = 400, *, limits=None,
           exclude: Iterable[Sequence[str]] = (), param_buckets: int = 64) -> dict:
    """{"choices", "indices", "estimate_ms", "sum_ms", "log_prob", "in_band"}.

    ``estimate(choices) -> ms`` is the whole-network estimate; by default the
    additive sum of the table. ``limits`` (:class:`~hwprof.search.constraints.
    Constraints`) adds the parameter and memory budgets as hard constraints;
    architectures in ``exclude`` (lists of choices) are never returned.
    """
    lo, hi = lut.range_ms()
    fastest = fastest_ms(lut, estimate)
    if budget_ms < fastest:
        raise UserError(f"the budget {budget_ms:.4g} ms is below the fastest architecture of the "
                        f"space ({fastest:.4g} ms by the latency model)")
    skip = {tuple(c) for c in exclude}
    # the whole additive range: a calibration may map sums above or below the budget
    cap = max(hi, budget_ms * 1.25)
    lat, par, npb = _costs(lut, cap, buckets, limits, param_buckets)
    logp = _log_probs(probs, limits)
    best, back = _dp(logp, lat, par, buckets, npb)
    flat = best.ravel()
    order = [int(i) for i in np.argsort(-flat, kind="stable") if np.isfinite(flat[i])]
    fallback = None
    checks = 0
    for end in order:
        idx = trailing_skips(lut, _trace(back, divmod(end, npb + 1)))
        choices = [lut.names[li][k] for li, k in enumerate(idx)]
        if tuple(choices) in skip or (limits is not None and not limits.satisfied(idx)):
            continue
        skip.add(tuple(choices))   # other orders of the same skips are the same architecture
        s = lut.arch_ms(idx)
        est = float(estimate(choices)) if estimate else s
        checks += 1
        if est <= budget_ms:
            lp = sum(float(p[k]) for p, k in zip(logp, idx))
            res = {"choices": choices, "indices": idx, "estimate_ms": est, "sum_ms": s,
                   "log_prob": lp}
            if est >= min_fill * budget_ms:
                return {**res, "in_band": True}
            if fallback is None:
                fallback = {**res, "in_band": False}
        if checks >= max_checks and fallback is not None:
            break
    if fallback is None:
        raise UserError(f"no architecture of the space is estimated within {budget_ms:.4g} ms"
                        + (" and the other budgets" if limits is not None and limits.active
                           else "") + f" (additive range {lo:.4g}..{hi:.4g} ms)")
    return fallback
