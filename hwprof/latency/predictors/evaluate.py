"""Accuracy of latency predictions: RMSE, RMSPE and the share within +-5/10/15 %.

``within_10`` is the fraction (0..1) of ops whose prediction is within 10 %
of the measured latency, as nn-Meter reports it; ``rmspe`` is the root mean
squared *relative* error (a fraction: 0.035 is 3.5 %); ``spearman`` is the rank
correlation of predictions and measurements (how well the predictor orders ops,
what a search needs most; HELP and nn-Meter report it for new devices).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

THRESHOLDS = (5, 10, 15)


def accuracy(pred_ms: Sequence[float], true_ms: Sequence[float]) -> dict[str, Any]:
    """Accuracy figures of predictions against measurements (both in ms)."""
    p = np.asarray(pred_ms, dtype=float)
    t = np.asarray(true_ms, dtype=float)
    if p.shape != t.shape:
        raise ValueError(f"{p.size} predictions for {t.size} measurements")
    n = int(t.size)
    if n == 0:
        return {"n": 0, "rmse_ms": None, "rmspe": None, "mape": None, "spearman": None,
                **{f"within_{k}": None for k in THRESHOLDS}}
    rel = (p - t) / t
    out = {"n": n, "rmse_ms": float(np.sqrt(np.mean((p - t) ** 2))),
           "rmspe": float(np.sqrt(np.mean(rel ** 2))), "mape": float(np.mean(np.abs(rel)))}
    for k in THRESHOLDS:
        out[f"within_{k}"] = float(np.mean(np.abs(rel) <= k / 100.0 + 1e-12))
    out["spearman"] = _spearman(p, t)
    return out


def _spearman(p: np.ndarray, t: np.ndarray) -> float | None:
    if p.size < 3 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return None
    from scipy.stats import spearmanr
    return float(spearmanr(p, t).correlation)


def evaluate_frame(frame) -> dict[str, Any]:
    """``{"overall": {...}, "kinds": {kind: {...}}}`` from a frame with
    columns ``kind``, ``pred_ms``, ``true_ms``."""
    overall = accuracy(frame["pred_ms"], frame["true_ms"])
    kinds = {str(k): accuracy(g["pred_ms"], g["true_ms"])
             for k, g in frame.groupby("kind", sort=True)}
    if "low_ms" in frame and frame["low_ms"].notna().any():  # share inside the 90 % interval
        def inside(g):
            ok = g["low_ms"].notna()
            t = g["true_ms"][ok]
            return float(((t >= g["low_ms"][ok]) & (t <= g["high_ms"][ok])).mean()) if ok.any() \
                else None
        overall["inside_interval"] = inside(frame)
        for k, g in frame.groupby("kind", sort=True):
            kinds[str(k)]["inside_interval"] = inside(g)
    return {"overall": overall, "kinds": kinds}


def prediction_frame(predictor, df, target: str = "latency_ms"):
    """Predictions for the ok rows of a table frame whose kinds the predictor knows.

    Returns (frame with kind, signature, spec, true_ms, pred_ms; list of
    skipped kinds).
    """
    import pandas as pd

    from hwprof.latency.specs import stored_specs

    ok = df[(df["status"] == "ok") & df[target].notna()]
    known = set(predictor.kinds)
    skipped = sorted(set(ok["kind"]) - known)
    ok = ok[ok["kind"].isin(known)]
    specs = stored_specs(ok["spec"])
    if specs and hasattr(predictor, "predict_intervals"):
        pred, low, high = predictor.predict_intervals(specs)
    else:
        pred = predictor.predict_specs(specs) if specs else []
        low = high = np.full(len(specs), np.nan)
    frame = pd.DataFrame({"kind": ok["kind"].to_numpy(), "signature": ok["signature"].to_numpy(),
                          "spec": ok["spec"].to_numpy(),
                          "true_ms": ok[target].astype(float).to_numpy(),
                          "pred_ms": np.asarray(pred, dtype=float),
                          "low_ms": np.asarray(low, dtype=float),
                          "high_ms": np.asarray(high, dtype=float)})
    return frame, skipped


def format_report(report: dict[str, Any]) -> str:
    """A small text table of an evaluation report."""
    lines = [f"{'kind':<16}{'n':>6}{'RMSPE':>9}{'RMSE ms':>10}{'±5%':>8}{'±10%':>8}{'±15%':>8}"
             f"{'Spearman':>10}{'in 90% int.':>13}"]

    def row(name, r):
        if not r["n"]:
            return f"{name:<16}{0:>6}"
        rho = f"{r['spearman']:>10.3f}" if r.get("spearman") is not None else f"{'-':>10}"
        cov = r.get("inside_interval")
        inside = f"{100 * cov:>12.1f}%" if cov is not None else f"{'-':>13}"
        return (f"{name:<16}{r['n']:>6}{100 * r['rmspe']:>8.1f}%{r['rmse_ms']:>10.3f}"
                f"{100 * r['within_5']:>7.1f}%{100 * r['within_10']:>7.1f}%"
                f"{100 * r['within_15']:>7.1f}%{rho}{inside}")

    for k, r in report["kinds"].items():
        lines.append(row(k, r))
    lines.append(row("overall", report["overall"]))
    return "\n".join(lines)
