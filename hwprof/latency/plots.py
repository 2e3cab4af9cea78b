"""PNG plots of tables and table diffs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.table import LatencyTable


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> None:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UserError(f"plots are written as PNG; give a .png file name, got {path}")
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def plot_table(table: LatencyTable, out: str | os.PathLike, title: str | None = None) -> dict:
    """Latency (median, with p10-p90 bars where known) against MACs, one panel per op kind.

    Kinds without MACs (activations, ...) are drawn against bytes moved. One
    colour per device. Error rows are left out.
    """
    df = table.df[(table.df["status"] == "ok") & (table.df["latency_ms"] > 0)]
    if df.empty:
        raise UserError("the table has no ok rows with a latency to plot")
    plt = _pyplot()
    kinds = sorted(df["kind"].unique())
    ncol = min(3, len(kinds))
    nrow = math.ceil(len(kinds) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
    devices = sorted(df["device_fingerprint"].unique())
    colours = {fp: plt.cm.tab10(i % 10) for i, fp in enumerate(devices)}
    labels = {fp: (table.meta.get("devices", {}).get(fp, {}) or {}).get("label") or
              ", ".join(sorted(set(df.loc[df["device_fingerprint"] == fp, "device"].dropna())))
              or fp for fp in devices}
    for ax, kind in zip(axes.flat, kinds):
        g = df[df["kind"] == kind]
        use_macs = (g["macs"] > 0).all()
        x = g["macs"] if use_macs else g["bytes_read"] + g["bytes_written"]
        for fp in devices:
            sel = (g["device_fingerprint"] == fp).to_numpy()
            if not sel.any():
                continue
            y = g["latency_ms"].to_numpy()[sel]
            lo = (y - g["p10_ms"].to_numpy()[sel]).clip(min=0)
            hi = (g["p90_ms"].to_numpy()[sel] - y).clip(min=0)
            err = None if np.isnan(lo).all() else np.nan_to_num(np.vstack([lo, hi]))
            ax.errorbar(x.to_numpy()[sel], y, yerr=err, fmt="o", ms=3.5, alpha=0.75, lw=0.8,
                        color=colours[fp], label=labels[fp])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{kind} ({len(g)})", fontsize=10)
        ax.set_xlabel("MACs" if use_macs else "bytes moved", fontsize=9)
        ax.set_ylabel("median latency (ms)", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
    for ax in list(axes.flat)[len(kinds):]:
        ax.axis("off")
    if len(devices) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "latency vs MACs per op kind", fontsize=11)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return {"out": str(out), "kinds": len(kinds), "points": int(len(df))}


def plot_diff(diff, out: str | os.PathLike) -> dict:
    """Left: b against a per op (log-log, y=x and the median ratio drawn).
    Right: the distribution of per-op ratios b/a. ``diff`` is a
    :class:`~hwprof.latency.tableops.DiffResult`."""
    pairs, result = diff.pairs, diff.summary
    if pairs.empty:
        raise UserError("the tables share no ops; nothing to plot")
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for i, (kind, g) in enumerate(pairs.groupby("kind", sort=True)):
        ax1.scatter(g["latency_ms_a"], g["latency_ms_b"], s=14, alpha=0.75, label=kind,
                    color=plt.cm.tab10(i % 10))
    lo = float(min(pairs["latency_ms_a"].min(), pairs["latency_ms_b"].min()))
    hi = float(max(pairs["latency_ms_a"].max(), pairs["latency_ms_b"].max()))
    line = np.array([lo, hi])
    ax1.plot(line, line, "k--", lw=0.8, label="equal")
    ax1.plot(line, line * result["median_ratio"], "r-", lw=0.8,
             label=f"median ratio {result['median_ratio']:.3g}")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel(f"{result['a']} median (ms)")
    ax1.set_ylabel(f"{result['b']} median (ms)")
    ax1.legend(fontsize=7)
    ax1.grid(True, which="both", alpha=0.25)
    logs = np.log10(pairs["ratio"].to_numpy())
    ax2.hist(logs, bins=max(5, min(40, len(logs) // 2)), color="tab:blue", alpha=0.8)
    ax2.axvline(math.log10(result["median_ratio"]), color="r", lw=1)
    ax2.set_xlabel(f"log10 ratio {result['b']} / {result['a']}")
    ax2.set_ylabel("ops")
    ax2.set_title(f"{result['common']} common ops; p10-p90 ratio "
                  f"{result['spread']['p10']:.3g}-{result['spread']['p90']:.3g}", fontsize=10)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return {"out": str(out), "points": int(len(pairs))}


def plot_timeline(table: LatencyTable, out: str | os.PathLike, title: str | None = None) -> dict:
    """The reference op's level over each recorded group of the table's builds (one line per
    group, against seconds since the table's first group), with the reference level dashed:
    how far, and how often, the machine changed speed while the rows were measured."""
    tls = table.meta.get("timelines") or []
    if not tls:
        raise UserError("the table records no reference timeline (it was measured before schema "
                        "v3, or imported); nothing to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    t0 = min(tl["started_at"] for tl in tls)
    for i, tl in enumerate(tls):
        pts = np.array(tl["points"], dtype=float)
        ax.plot(pts[:, 0] + tl["started_at"] - t0, pts[:, 1], lw=1.2, color=plt.cm.tab10(i % 10),
                label=f"{tl.get('device', '?')} group {i + 1}" if len(tls) <= 10 else None)
    for key, lv in ((table.meta.get("reference") or {}).get("levels") or {}).items():
        ax.axhline(lv["level_ms"], ls="--", color="k", lw=1, label=f"reference level ({key[:12]})")
    ax.set_xlabel("seconds since the first recorded group")
    ax.set_ylabel("reference op, ms (median per 0.5 s)")
    ax.set_title(title or "how the machine moved while the table was measured")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return {"out": str(out), "groups": len(tls), "points": int(sum(len(t["points"]) for t in tls))}
