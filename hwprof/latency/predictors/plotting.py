"""Parity plot of predicted vs measured latency (PNG), one colour per op kind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwprof.errors import UserError


def parity_plot(frame, path: str | os.PathLike, title: str | None = None) -> None:
    """Log-log scatter of ``pred_ms`` against ``true_ms`` with the +-10 % band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwprof.latency.predictors.evaluate import accuracy

    path = Path(path)
    if frame.empty:
        raise UserError("nothing to plot: no rows the predictor could be evaluated on")
    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    try:
        for kind, g in frame.groupby("kind", sort=True):
            acc = accuracy(g["pred_ms"], g["true_ms"])
            ax.scatter(g["true_ms"], g["pred_ms"], s=9, alpha=0.6,
                       label=f"{kind} (n={acc['n']}, ±10%: {100 * acc['within_10']:.0f}%)")
        lo = float(min(frame["true_ms"].min(), frame["pred_ms"].min())) * 0.8
        hi = float(max(frame["true_ms"].max(), frame["pred_ms"].max())) * 1.25
        xs = np.geomspace(lo, hi, 50)
        ax.plot(xs, xs, "k-", lw=1)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10 %")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        overall = accuracy(frame["pred_ms"], frame["true_ms"])
        ax.set_title(title or f"RMSPE {100 * overall['rmspe']:.1f} %, "
                              f"±10 %: {100 * overall['within_10']:.1f} %")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        _save(fig, path)
    finally:
        plt.close(fig)


def learning_curve_plot(curve: dict, path: str | os.PathLike) -> None:
    """Each kind's cross-validated share within ±10 % against its rows (log2 axis), from
    :func:`hwprof.latency.predictors.learning.learning_curve`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    try:
        for kind, c in curve.items():
            n = [p["rows"] for p in c["points"]]
            w = [100 * p["within_10"] for p in c["points"]]
            slope = c["points_per_doubling"]
            label = kind if slope is None else f"{kind} ({slope:+.1f} points per doubling)"
            ax.plot(n, w, "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training rows (nested subsets of the table's)")
        ax.set_ylabel("cross-validated within ±10 % (%)")
        ax.set_title("would measuring more help?")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as e:
        raise UserError(f"cannot write the plot {path}: {e.strerror or e}") from None
