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
from hwprof.search.closedloop import MIN_FILL
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


def _cell_params(back, shape, params: Sequence[np.ndarray], fixed: float) -> np.ndarray:
    """The exact parameter count of every DP cell's architecture (traced back all at once;
    cells no architecture reaches get +inf): the programme's parameter buckets are rounded,
    so a cell near the budget may hold an architecture over it."""
    b, q = (a.ravel() for a in np.indices(shape))
    total = np.full(b.size, float(fixed))
    ok = np.ones(b.size, dtype=bool)
    for (arg, cl, cp), p in zip(reversed(back), reversed(params)):
        k = arg[b, q].astype(np.int64)
        ok &= k >= 0
        k = np.where(ok, k, 0)
        total += np.where(ok, p[k], 0.0)
        b = np.where(ok, b - cl[k], 0)
        q = np.where(ok, q - cp[k], 0)
    return np.where(ok, total, np.inf)


def _order(best: np.ndarray, back, limits) -> list[int]:
    """DP cells by decreasing probability, without the unreachable ones and (with a parameter
    budget) without those whose architecture is over it: with a binding budget most of the
    most probable cells are, and checking them one by one cost a loop round minutes."""
    flat = best.ravel()
    keep = np.isfinite(flat)
    if limits is not None and limits.param_budget is not None:
        keep &= _cell_params(back, best.shape, limits.params,
                             limits.fixed_params) <= limits.param_budget
    cells = np.flatnonzero(keep)
    return [int(i) for i in cells[np.argsort(-flat[cells], kind="stable")]]


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


def _sum_of(seen: list[tuple[float, float]], est_ms: float) -> float:
    """The additive sum whose estimate is ``est_ms``: a line through the (sum, estimate) pairs
    checked so far (a calibration is affine in the sum), or their ratio with one sum."""
    sums, ests = np.array(seen).T
    if np.ptp(sums) > 1e-9 * max(1.0, float(sums.max())):
        slope, icept = np.polyfit(sums, ests, 1)
        if slope > 0:
            return float((est_ms - icept) / slope)
    return float(est_ms * sums.mean() / ests.mean())


def _in_band(order, check, seen, low_ms, high_ms, step, fixed_ms, npb):
    """The first in-band architecture among the cells whose latency bucket lies in the band
    (band estimates mapped to sums by :func:`_sum_of`, with 2 % margin either side); every
    such cell may be checked (a few hundred buckets' worth at most)."""
    b_lo = int((_sum_of(seen, low_ms) * 0.98 - fixed_ms) / step)
    b_hi = int((_sum_of(seen, high_ms) * 1.02 - fixed_ms) / step) + 1
    for end in order:
        if b_lo <= end // (npb + 1) <= b_hi:
            res, _ = check(end)
            if res is not None and res["in_band"]:
                return res
    return None


class _Checker:
    """Turns a DP cell into its architecture if that is new and within every budget;
    keeps the (sum, estimate) of every architecture it checked in ``seen``."""

    def __init__(self, lut, back, npb, logp, estimate, budget_ms, min_fill, limits, skip):
        self.lut, self.back, self.npb, self.logp = lut, back, npb, logp
        self.estimate, self.budget_ms, self.min_fill = estimate, budget_ms, min_fill
        self.limits, self.skip = limits, skip
        self.seen: list[tuple[float, float]] = []

    def __call__(self, end):
        """(the architecture's entry or None, whether it counted as a check)."""
        lut = self.lut
        idx = trailing_skips(lut, _trace(self.back, divmod(end, self.npb + 1)))
        choices = [lut.names[li][k] for li, k in enumerate(idx)]
        if tuple(choices) in self.skip or (self.limits is not None
                                           and not self.limits.satisfied(idx)):
            return None, False
        self.skip.add(tuple(choices))   # other orders of the same skips are the same architecture
        s = lut.arch_ms(idx)
        est = float(self.estimate(choices)) if self.estimate else s
        self.seen.append((s, est))
        if est > self.budget_ms:
            return None, True
        lp = sum(float(p[k]) for p, k in zip(self.logp, idx))
        return {"choices": choices, "indices": idx, "estimate_ms": est, "sum_ms": s,
                "log_prob": lp, "in_band": est >= self.min_fill * self.budget_ms}, True


def derive(probs: Sequence[np.ndarray], lut: LatencyTable2D, budget_ms: float,
           estimate: Callable[[list[str]], float] | None = None, min_fill: float = MIN_FILL,
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
    order = _order(best, back, limits)

    check = _Checker(lut, back, npb, logp, estimate, budget_ms, min_fill, limits, skip)
    fallback, checks = None, 0
    for end in order:
        res, checked = check(end)
        checks += checked
        if res is not None and res["in_band"]:
            return res
        fallback = fallback or res
        if checks >= max_checks and fallback is not None:
            break
    if fallback is not None and min_fill > 0:
        # the most probable cells may all lie far under the budget (a strong latency loss makes
        # small ops likely): scan the cells whose additive sum maps into the band, in
        # probability order
        res = _in_band(order, check, check.seen, budget_ms * min_fill, budget_ms,
                       (cap - lut.fixed_ms) / buckets, lut.fixed_ms, npb)
        if res is not None:
            return res
    if fallback is None:
        raise UserError(f"no architecture of the space is estimated within {budget_ms:.4g} ms"
                        + (" and the other budgets" if limits is not None and limits.active
                           else "") + f" (additive range {lo:.4g}..{hi:.4g} ms)")
    return fallback
