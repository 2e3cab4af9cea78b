"""Would measuring more help? Each kind's accuracy on nested subsets of its training rows.

``hwprof fit --learning-curve`` refits every kind's chosen model on a quarter, a half and
three quarters of its rows (one nested random order per kind, so each subset holds the
smaller ones) and cross-validates it as the fit did; the whole set's figure is the fit's
own. The slope of the share within ±10 % against log2(rows), in points per doubling of
the rows, says whether a kind is still learning from more configurations or has flattened
out (then the labels' noise, the features or the model limit it, and more rows of the same
kind measured the same way will not help much).

What it is good for (issue 17, the Intel VM, 2026-12-06): session 31's conv2d training
table (800 adaptive rows) cross-validated 79.9 / 85.7 / 87.6 / 89.1 % within ±10 % on 40 /
60 / 80 / 100 % of its rows, and predictors fitted on those subsets put 86.8 / 90.6 / 93.4 /
95.5 % of the held-out conv2d configs within ±10 % (means over three subsets each): the
cross-validated curve rises where the held-out one does. A composite kind (an MBConv
block) keeps its parts' models as fitted on all of their rows; only its own rows are
subsampled. What a "rising" curve promises is a longer build of the kind in one session
(docs/MEASUREMENTS.md, "What more measuring buys"): rows from another session, at another state of the
machine, did not help there.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwprof.latency.predictors.evaluate import accuracy
from hwprof.latency.predictors.regressors import KindRegressor
from hwprof.latency.specs import stored_specs

FRACTIONS = (0.25, 0.5, 0.75)  # of each kind's rows, besides the whole set
RISING = 1.5  # points within ±10 % per doubling of the rows: at least this is "still rising"


def learning_curve(pred, rows, *, target: str = "latency_ms", fractions: Sequence[float] =
                   FRACTIONS, cv: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Per kind of ``pred``: [{rows, within_10, mape}] over the nested subsets and the whole
    set, the slope in points per doubling, and a one-word verdict ("rising" / "flat").

    ``rows`` are the training rows ``pred`` was fitted on (:func:`training_rows`); a subset
    too small to cross-validate is left out of the curve."""
    cv = cv or int(pred.meta.get("cv") or 5)
    out: dict[str, Any] = {}
    for kind, model in sorted(pred.models.items()):
        part = rows[rows["kind"] == kind]
        specs = stored_specs(part["spec"])
        x = pred._features(kind, specs)
        y = part[target].astype(float).to_numpy()
        order = np.random.default_rng([seed, len(y)]).permutation(len(y))
        points = []
        for f in sorted(set(fractions)):
            n = int(round(f * len(y)))
            if n < max(model.min_rows, 2 * cv) or n >= len(y):
                continue
            sub = order[:n]
            reg = KindRegressor(candidates=(model.chosen_,), cv=cv, min_rows=model.min_rows,
                                scoring=model.scoring, random_state=seed).fit(x[sub], y[sub])
            points.append(_point(n, accuracy(reg.oof_ms_, y[sub])))
        points.append(_point(len(y), accuracy(model.oof_ms_, y)))
        slope = _slope(points)
        out[kind] = {"points": points, "points_per_doubling": slope,
                     "verdict": None if slope is None else ("rising" if slope >= RISING
                                                            else "flat")}
    return out


def _point(n: int, acc: dict) -> dict[str, float]:
    return {"rows": int(n), "within_10": float(acc["within_10"]), "mape": float(acc["mape"])}


def _slope(points: list[dict]) -> float | None:
    """Least-squares slope of the share within ±10 % (in points) on log2(rows)."""
    if len(points) < 2:
        return None
    lx = np.log2([p["rows"] for p in points])
    yy = np.array([100 * p["within_10"] for p in points])
    if np.ptp(lx) == 0:
        return None
    return float(np.polyfit(lx, yy, 1)[0])


def format_curve(curve: dict[str, Any]) -> list[str]:
    """One line per kind: its points, the slope, and what it suggests."""
    lines = ["learning curve: each kind's model cross-validated on nested subsets of its rows "
             "(within ±10 %)"]
    for kind, c in curve.items():
        pts = "   ".join(f"{p['rows']} rows {100 * p['within_10']:.1f} %" for p in c["points"])
        slope = c["points_per_doubling"]
        if slope is None:
            lines.append(f"  {kind:<10}{pts}   (too few rows for a curve)")
            continue
        advice = ("still rising: a longer build of this kind should help"
                  if c["verdict"] == "rising" else
                  "flat: more rows measured the same way are unlikely to help much")
        lines.append(f"  {kind:<10}{pts}   {slope:+.1f} points per doubling: {advice}")
    return lines
