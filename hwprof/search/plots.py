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
