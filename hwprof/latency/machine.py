"""How far the machine moved: the reference op's timeline of each measured group.

Every group of a build records its reference samples; a table keeps, per
group, their medians per ``TIMELINE_BIN_S`` and the quantiles of the raw
samples (the bins would hide state flips faster than a bin). ``table show``
and ``table plot --timeline`` read them back. Pure bookkeeping on numbers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

TIMELINE_BIN_S = 0.5   # a group's timeline keeps the median of the reference per bin
TIMELINES_KEPT = 50    # groups whose timeline a table keeps (the latest ones)


def quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q))


def timeline_points(timeline: Sequence[Sequence[float]], bin_s: float = TIMELINE_BIN_S
                    ) -> list[list[float]]:
    """The reference's timeline downsampled to the median of each ``bin_s`` bin."""
    bins: dict[int, list[float]] = {}
    for t, v in timeline:
        bins.setdefault(int(t // bin_s), []).append(v)
    return [[round(b * bin_s, 3), round(quantile(vs, 0.5), 6)]
            for b, vs in sorted(bins.items())]


def movement(values_ms: Sequence[float]) -> dict[str, float] | None:
    """How far the reference moved: its quantiles and the p95/p5 spread."""
    xs = [v for v in values_ms if v is not None]
    if not xs:
        return None
    p5, p95 = quantile(xs, 0.05), quantile(xs, 0.95)
    return {"min_ms": min(xs), "p5_ms": p5, "p50_ms": quantile(xs, 0.5), "p95_ms": p95,
            "max_ms": max(xs), "spread": p95 / p5 if p5 > 0 else float("inf")}


def combined_movement(timelines: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """How far the reference moved over several recorded groups (from each group's raw samples:
    the stored 0.5 s medians would hide state flips faster than that)."""
    return merge_movements([{**tl["movement"], "groups": 1, "first": tl.get("started_at"),
                             "last": tl.get("started_at")}
                            for tl in timelines if tl.get("movement")])


def merge_movements(parts: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Movements of several groups or builds as one: the widest p5-p95 range, the median of
    their medians (each a :func:`combined_movement`, e.g. the rounds of an adaptive build)."""
    ms = [m for m in parts if m]
    if not ms:
        return None
    p5, p95 = min(m["p5_ms"] for m in ms), max(m["p95_ms"] for m in ms)
    return {"groups": sum(m["groups"] for m in ms), "min_ms": min(m["min_ms"] for m in ms),
            "p5_ms": p5, "p50_ms": quantile([m["p50_ms"] for m in ms], 0.5), "p95_ms": p95,
            "max_ms": max(m["max_ms"] for m in ms), "spread": p95 / p5 if p5 > 0 else None,
            "first": ms[0].get("first"), "last": ms[-1].get("last")}


def record_timeline(meta: dict[str, Any], key: str, started_at: float,
                    timeline: Sequence[Sequence[float]], label: str) -> dict[str, Any]:
    """Append one group's reference timeline to the table's record of its builds (the latest
    :data:`TIMELINES_KEPT`); returns the entry."""
    pts = timeline_points(timeline)
    entry = {"key": key, "device": label, "started_at": started_at, "points": pts,
             "movement": movement([v for _, v in timeline])}
    meta.setdefault("timelines", []).append(entry)
    del meta["timelines"][:-TIMELINES_KEPT]
    return entry
