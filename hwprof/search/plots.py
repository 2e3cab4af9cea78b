"""PNG plots of a search: architecture probabilities per layer, expected latency vs budget."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_probs(history: dict, names: list[list[str]], layer_names: list[str],
               path: str | os.PathLike, final=None) -> Path:
    """Each layer's candidate probabilities per epoch (or trial); a strategy without such a
    series (``history["probs"]``) gets a bar chart of its final preferences ``final``."""
    plt = _plt()
    series = history.get("probs") or []
    xs = _x_axis(history, len(series))
    n = len(names)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for li in range(n):
        ax = axes[li // cols][li % cols]
        if series:
            p = np.array([h[li] for h in series])
            for k, name in enumerate(names[li]):
                ax.plot(xs[1], p[:, k], marker="o", ms=3, label=name)
            ax.set_xlabel(xs[0], fontsize=8)
        elif final is not None:
            for k, name in enumerate(names[li]):
                ax.bar(k, float(final[li][k]), color=f"C{k}", label=name)
            ax.set_xticks([])
            ax.set_xlabel("final preference", fontsize=8)
        ax.set_title(layer_names[li], fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_ylabel("p", fontsize=8)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    longest = max(range(n), key=lambda i: len(names[i]))
    handles, labels = axes[longest // cols][longest % cols].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(7, max(1, len(labels))), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, plt, path)


def _x_axis(history: dict, n: int) -> tuple[str, list]:
    """("epoch" or "trial", the x values) of a history with ``n`` entries per series."""
    for key in ("epoch", "trial"):
        xs = history.get(key) or []
        if len(xs) == n:
            return key, list(xs)
    return "step", list(range(1, n + 1))


def _save(fig, plt, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_latency(history: dict, budget_ms: float, path: str | os.PathLike,
                 predicted_ms: float | None = None) -> Path:
    """Expected latency per epoch (``expected_ms``), or each trial's estimate (``latency_ms``
    or ``trial_ms``), against the budget; any series may be missing."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, label in (("expected_ms", "expected latency E"), ("latency_ms", "trial estimate"),
                       ("trial_ms", "trial estimate")):
        ys = list(history.get(key) or [])
        if ys:
            xname, xs = _x_axis(history, len(ys))
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                    ls="-" if key == "expected_ms" else "none", label=label)
            ax.set_xlabel(xname)
    ax.axhline(budget_ms, color="r", ls="--", label=f"budget {budget_ms:.3g} ms")
    if predicted_ms is not None:
        ax.axhline(predicted_ms, color="g", ls=":", label=f"derived arch {predicted_ms:.3g} ms")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_loop(rounds: list[dict], budget_ms: float, path: str | os.PathLike,
              answer: dict | None, fill: float) -> Path | None:
    """The closed loop at a glance: each measured network's measured / budget against its
    estimate / budget, one marker per round, the band [fill, 1] shaded and the answer ringed.

    ``rounds`` are report.json's ``rounds`` entries; nothing is drawn (None) when no network
    was measured (``--no-device``, an imported table).
    """
    pts = [r for r in rounds if r.get("measured_ms") is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    xs = [r["estimate_ms"] / budget_ms for r in pts]
    ys = [r["measured_ms"] / budget_ms for r in pts]
    lo, hi = min(xs + ys + [fill]) - 0.02, max(xs + ys + [1.0]) + 0.02
    ax.axhspan(fill, 1.0, color="tab:green", alpha=0.15, label=f"band [{fill:g}, 1] x budget")
    ax.axhline(1.0, color="r", ls="--", lw=1, label=f"budget {budget_ms:.4g} ms")
    ax.plot([lo, hi], [lo, hi], color="grey", ls=":", lw=1, label="measured = estimate")
    for k in sorted({r["round"] for r in pts}):
        sel = [(x, y) for x, y, r in zip(xs, ys, pts) if r["round"] == k]
        ax.plot([p[0] for p in sel], [p[1] for p in sel], ls="none", marker="os^Dv"[(k - 1) % 5],
                label=f"round {k} ({len(sel)} network{'s' if len(sel) > 1 else ''})")
    if answer is not None and answer.get("measured_ms") is not None:
        ax.plot([answer["estimate_ms"] / budget_ms], [answer["measured_ms"] / budget_ms],
                ls="none", marker="o", ms=14, mfc="none", mec="k", mew=1.5, label="answer")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("estimate / budget")
    ax.set_ylabel("measured / budget")
    ax.set_title("closed loop: each network measured on the device", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, plt, path)
