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
               path: str | os.PathLike) -> Path:
    plt = _plt()
    epochs = history["epoch"]
    n = len(names)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for li in range(n):
        ax = axes[li // cols][li % cols]
        p = np.array([h[li] for h in history["probs"]])
        for k, name in enumerate(names[li]):
            ax.plot(epochs, p[:, k], marker="o", ms=3, label=name)
        ax.set_title(layer_names[li], fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("p", fontsize=8)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    longest = max(range(n), key=lambda i: len(names[i]))
    handles, labels = axes[longest // cols][longest % cols].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(7, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_latency(history: dict, budget_ms: float, path: str | os.PathLike,
                 predicted_ms: float | None = None) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(history["epoch"], history["expected_ms"], marker="o", label="expected latency E")
    ax.axhline(budget_ms, color="r", ls="--", label=f"budget {budget_ms:.3g} ms")
    if predicted_ms is not None:
        ax.axhline(predicted_ms, color="g", ls=":", label=f"derived arch {predicted_ms:.3g} ms")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
