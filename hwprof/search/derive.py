"""Derive a discrete architecture that respects the budget.

The most probable architecture (largest ``sum_l log p_l[choice_l]``) whose
estimated latency is within the budget. Latency is additive over layers, so a
dynamic programme over discretised latency finds, for every total latency
bucket, the most probable architecture with that total; candidates are then
checked in decreasing probability with the LatencyModel's whole-network
estimate (``estimate_arch``, calibrated when a calibration is attached), which
need not be additive.

A search maximises accuracy, and accuracy grows with capacity, so by default
architectures that use at least ``min_fill`` of the budget are preferred; if
none exists the most probable one under the budget is taken.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.search.latency_loss import LatencyTable2D


def _dp(logp: Sequence[np.ndarray], lut: LatencyTable2D, cap_ms: float, buckets: int):
    """best[b] = max log-prob of archs whose (rounded) variable latency lands in bucket b."""
    span = cap_ms - lut.fixed_ms
    step = span / buckets
    best = np.full(buckets + 1, -np.inf)
    best[0] = 0.0
    back = []
    for lp, t in zip(logp, lut.ms):
        cost = np.rint(t / step).astype(int)
        new = np.full(buckets + 1, -np.inf)
        arg = np.full(buckets + 1, -1, dtype=int)
        for k, (c, v) in enumerate(zip(cost, lp)):
            if c > buckets:
                continue
            cand = np.full(buckets + 1, -np.inf)
            cand[c:] = best[:buckets + 1 - c] + v
            better = cand > new
            new[better] = cand[better]
            arg[better] = k
        back.append((arg, cost))
        best = new
    return best, back


def _trace(back, end: int) -> list[int]:
    idx = []
    b = end
    for arg, cost in reversed(back):
        k = int(arg[b])
        idx.append(k)
        b -= int(cost[k])
    return idx[::-1]


def derive(probs: Sequence[np.ndarray], lut: LatencyTable2D, budget_ms: float,
           estimate: Callable[[list[str]], float] | None = None, min_fill: float = 0.9,
           buckets: int = 2000, max_checks: int = 400) -> dict:
    """{"choices", "indices", "estimate_ms", "sum_ms", "log_prob", "in_band"}.

    ``estimate(choices) -> ms`` is the whole-network estimate; by default the
    additive sum of the table.
    """
    lo, hi = lut.range_ms()
    if budget_ms < lo:
        raise UserError(f"the budget {budget_ms:.4g} ms is below the fastest architecture of the "
                        f"space ({lo:.4g} ms by the latency model)")
    logp = [np.log(np.clip(np.asarray(p, dtype=float), 1e-12, None)) for p in probs]
    # the whole additive range: a calibration may map sums above or below the budget
    cap = max(hi, budget_ms * 1.25)
    best, back = _dp(logp, lut, cap, buckets)
    order = [int(b) for b in np.argsort(-best) if np.isfinite(best[b])]
    fallback = None
    checks = 0
    for end in order:
        idx = _trace(back, end)
        choices = [lut.names[li][k] for li, k in enumerate(idx)]
        s = lut.arch_ms(idx)
        est = float(estimate(choices)) if estimate else s
        checks += 1
        if est <= budget_ms:
            res = {"choices": choices, "indices": idx, "estimate_ms": est, "sum_ms": s,
                   "log_prob": float(best[end])}
            if est >= min_fill * budget_ms:
                return {**res, "in_band": True}
            if fallback is None:
                fallback = {**res, "in_band": False}
        if checks >= max_checks and fallback is not None:
            break
    if fallback is None:
        raise UserError(f"no architecture of the space is estimated within {budget_ms:.4g} ms "
                        f"(additive range {lo:.4g}..{hi:.4g} ms)")
    return fallback
