"""Merge conflict policies: what one merged row is when inputs disagree about one op.

One table, :data:`POLICIES`, names every policy, says what it does (the CLI's
help and choices come from it) and holds the function that picks the row.
Standard library only, so that the command line can list the policies without
importing pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

Row = Dict[str, Any]

# statistics no averaged row has; an average of two rows is no set of passes either
RESET_ON_MEAN = ("p10_ms", "p90_ms", "iqr_ms", "std_ms", "cv", "ci_low_ms", "ci_high_ms",
                 "block_size", "first_call_ms", "passes", "pass_medians_ms",
                 "latency_ci_low_ms", "latency_ci_high_ms", "ref_elasticity", "ref_median_ms",
                 "bracketed", "samples_ms", "sample_ref_ms", "pass_samples_ms",
                 "pass_sample_ref_ms")


def isnull(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or type(x).__name__ == "NaTType"


def _values(rows: list[Row], col: str) -> list[float]:
    return [float(r[col]) for r in rows if not isnull(r.get(col))]


def _mean_row(rows: list[Row]) -> Row:
    """One row whose statistics average (or pool) those of ``rows``."""
    out = dict(rows[0])
    meds, means = _values(rows, "median_ms"), _values(rows, "mean_ms")
    out["median_ms"] = sum(meds) / len(meds)
    lats = _values(rows, "latency_ms")
    out["latency_ms"] = sum(lats) / len(lats) if lats else out["median_ms"]
    out["mean_ms"] = sum(means) / len(means) if means else None
    mins, maxs, ns = _values(rows, "min_ms"), _values(rows, "max_ms"), _values(rows, "n_samples")
    out["min_ms"] = min(mins) if mins else None
    out["max_ms"] = max(maxs) if maxs else None
    out["n_samples"] = int(sum(ns)) if len(ns) == len(rows) else None
    out.update(dict.fromkeys(RESET_ON_MEAN))
    conv = [r.get("converged") for r in rows]
    out["converged"] = None if any(isnull(c) for c in conv) else all(conv)
    unst = [bool(r["unstable"]) for r in rows if not isnull(r.get("unstable"))]
    out["unstable"] = any(unst) if unst else None
    return out


@dataclass(frozen=True)
class Policy:
    help: str
    pick: Optional[Callable[[list[Row]], Row]]  # None: refuse


POLICIES: dict[str, Policy] = {
    "error": Policy("refuse, naming the first conflicting op (the default)", None),
    "keep-first": Policy("the row of the earliest input wins", lambda rows: rows[0]),
    "keep-last": Policy("the row of the latest input wins", lambda rows: rows[-1]),
    "min": Policy("the row with the smallest median wins (optimistic)",
                  lambda rows: min(rows, key=lambda r: r["latency_ms"])),
    "max": Policy("the row with the largest median wins (conservative)",
                  lambda rows: max(rows, key=lambda r: r["latency_ms"])),
    "mean": Policy("one row whose median is the mean of the medians; mean_ms the mean of the "
                   "means, n_samples the sum, min_ms/max_ms the extremes; quantiles, IQR, std, "
                   "CV and CI null", _mean_row),
}
