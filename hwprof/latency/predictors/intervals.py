"""Prediction intervals: how far off a predicted latency can be, per op and summed.

Per op, the interval comes from the model's own out-of-fold errors: ``fit``
cross-validates every kind's model anyway, and the 5th and 95th percentiles
of ``log(measured / predicted)`` over those held-out predictions give a 90 %
interval ``[p * exp(q05), p * exp(q95)]`` (a split-conformal interval: it is
as wide as the model was wrong on rows it had not seen, label noise included).
A transferred predictor (:mod:`transfer`) uses the leave-one-out errors of its
correction on the new device's rows instead.

For a sum of ops (a network), adding the per-op bounds would assume every op
is off in the same direction by its worst amount, and a network of 50 ops
would get an interval about 7x too wide (sqrt(50)); treating the errors as
independent gives half-widths that add in quadrature, too narrow when the
errors are partly shared (layers of one network have similar shapes and were
measured in one device state). :func:`sum_interval` treats every pair of
errors as correlated by ``RHO``: the half-width of the sum is
``sqrt((1 - RHO) * sum(d_i^2) + RHO * (sum d_i)^2)``, which is ``d`` for a
single op, the quadrature sum for ``RHO = 0`` and the sum of bounds for 1.
``scripts/bench_predictors_budget.py`` checks the resulting coverage on the
layer sums of real networks and prints it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

LEVEL = 0.9
RHO = 0.1  # correlation assumed between the errors of two ops of one sum


def interval_from_residuals(true_ms, pred_ms, level: float = LEVEL) -> dict:
    """``{"level", "low", "high", "n"}``: quantiles of log(true / pred)."""
    t, p = np.asarray(true_ms, float), np.asarray(pred_ms, float)
    r = np.log(t / p)
    a = (1.0 - level) / 2.0
    return {"level": level, "low": float(np.quantile(r, a)), "high": float(np.quantile(r, 1 - a)),
            "n": int(r.size)}


def _interval_of(predictor, kind: str) -> dict | None:
    transfer = predictor.meta.get("transfer") or {}
    if transfer.get("interval"):
        return transfer["interval"]
    return (predictor.meta.get("intervals") or {}).get(kind)


def op_intervals(predictor, specs: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, low, high) in ms; NaN bounds where the file has no interval."""
    p = np.asarray(predictor.predict_specs(specs), float)
    lo, hi = np.full(len(specs), np.nan), np.full(len(specs), np.nan)
    for i, s in enumerate(specs):
        if s.kind in predictor.models:
            iv = _interval_of(predictor, s.kind)
            if iv:
                lo[i], hi[i] = p[i] * np.exp(iv["low"]), p[i] * np.exp(iv["high"])
            continue
        from hwprof.latency.specs import parse_spec
        parts = [parse_spec(c) for c in s.children()]
        pp, pl, ph = op_intervals(predictor, parts)
        _, lo[i], hi[i] = sum_interval(pp, pl, ph)
    return p, lo, hi


def sum_interval(pred, low, high, rho: float = RHO) -> tuple[float, float, float]:
    """(sum, low, high) of a sum of latencies with per-term bounds (NaN bounds: the term
    is exact, e.g. a measured table row). See the module docstring."""
    p = np.asarray(pred, float)
    lo = np.where(np.isnan(low), p, np.asarray(low, float))
    hi = np.where(np.isnan(high), p, np.asarray(high, float))
    down, up = np.clip(p - lo, 0, None), np.clip(hi - p, 0, None)
    total = float(p.sum())
    dlo = float(np.sqrt((1 - rho) * np.sum(down ** 2) + rho * down.sum() ** 2))
    dhi = float(np.sqrt((1 - rho) * np.sum(up ** 2) + rho * up.sum() ** 2))
    return total, max(total - dlo, 0.0), total + dhi


def answer_bounds(predictor, answers) -> list[tuple[float | None, float | None]]:
    """(low, high) ms of every LatencyModel answer: the 90 % interval for a predicted op,
    the measured value itself for a table row (its CI is in the table), None for a
    missing op or a predictor file without intervals."""
    out: list[tuple[float | None, float | None]] = [
        (a.latency_ms, a.latency_ms) if a.source == "table" else (None, None) for a in answers]
    idx = [i for i, a in enumerate(answers) if a.source == "predictor"]
    if idx and predictor is not None and hasattr(predictor, "predict_intervals"):
        _, lo, hi = predictor.predict_intervals([answers[i].spec for i in idx])
        for i, low, high in zip(idx, lo, hi):
            if np.isfinite(low) and np.isfinite(high):
                out[i] = (float(low), float(high))
    return out


def answers_interval(predictor, answers) -> tuple[float | None, float | None]:
    """(low, high) ms of the sum of the answered ops (:func:`sum_interval`); None when a
    predicted op has no interval."""
    bounds = answer_bounds(predictor, answers)
    got = [(a.latency_ms, b) for a, b in zip(answers, bounds) if a.latency_ms is not None]
    if not got or any(b[0] is None for _, b in got):
        return None, None
    _, low, high = sum_interval([p for p, _ in got], [b[0] for _, b in got],
                                [b[1] for _, b in got])
    return low, high


Z90 = 1.6448536269514722  # two-sided 90 % of a normal


def estimate_interval(sum_ms: float, low: float | None, high: float | None, cal=None
                      ) -> tuple[float | None, float | None]:
    """(low, high) of a whole-network estimate: the sum's interval mapped through the
    calibration ``cal`` (``predict(sum_ms)``), widened by the calibration's own error on
    its fitting networks (``calibrated_rmspe``, as a 90 % normal half-width, added in
    quadrature); without a calibration the sum's interval."""
    if low is None or high is None:
        return None, None
    if cal is None:
        return low, high
    est = cal.predict(sum_ms)
    lo, hi = cal.predict(low), cal.predict(high)
    own = Z90 * float(getattr(cal, "calibrated_rmspe", None) or 0.0) * est
    down = float(np.hypot(est - lo, own))
    up = float(np.hypot(hi - est, own))
    return max(est - down, 0.0), est + up
