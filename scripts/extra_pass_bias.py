#!/usr/bin/env python
"""Offline: do a build's extra passes sit where its sweeps sit, and how do builds agree?

Reads the tables a ``bench_protocol.py --variants ... --out-dir DIR`` run kept
(``SPACE-VARIANT-A.parquet`` / ``-B.parquet``). Variants whose names differ only by a
trailing number (``ctx1``, ``ctx2``) are one *kind*, repeated.

1. Per table, for every row that got extra passes (more than ``--passes`` passes): the
   geometric mean of its extra passes' latencies over that of its sweeps'. Extra passes
   that sit where the sweeps sit give ratios spread around 1; a context of their own shows
   as a lean (issue 12: extra passes holding only the unsettled ops sat 4-6 % above).
2. Per kind, every pair of an A and a B of that kind (B at least the benchmark's gap after
   A): ops outside +-5 % on ``latency_ms``, and on rows re-derived from their sweeps alone
   (an A and a B of two instances of a kind sit at levels of their own: scaled by their
   median ratio).

Nothing is measured; how far the machine moved is what ``bench_protocol.py`` printed.

  .venv/bin/python scripts/extra_pass_bias.py /tmp/bp [/tmp/bp2 ...] [--passes 3]
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwprof.latency.table import read_table

TOL = 0.05


def _kind(variant: str) -> str:
    return re.sub(r"\d+$", "", variant)


def tables(folder: Path) -> dict[tuple[str, str, str], Path]:
    """(space, variant, A|B) -> path of every kept table in ``folder``."""
    out = {}
    for p in sorted(folder.glob("*-[AB].parquet")):
        stem, which = p.stem.rsplit("-", 1)
        space, _, variant = stem.rpartition("-") if stem.count("-") > 1 else (stem, "", "")
        out[(space, variant, which)] = p
    return out


def _gmean(values) -> float:
    return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


@lru_cache(maxsize=None)
def _ok(path: Path):
    """The ok rows of the table at ``path`` (each table is read once, whatever it is paired with)."""
    df = read_table(path).df
    return df[df["status"] == "ok"]


def _pass_latencies(row) -> list[float]:
    return [] if row.pass_medians_ms is None else list(row.pass_medians_ms)


def extra_ratios(path: Path, passes: int) -> list[tuple[str, int, float]]:
    """(signature, extra passes, extras' gmean / sweeps' gmean) per row with extra passes."""
    out = []
    for r in _ok(path).itertuples():
        meds = _pass_latencies(r)
        if len(meds) > passes:
            out.append((r.signature, len(meds) - passes,
                        _gmean(meds[passes:]) / _gmean(meds[:passes])))
    return out


def sweeps_only(path: Path, passes: int) -> dict[str, float]:
    """signature -> its row's latency from its sweeps alone (each pass's share of the row
    taken from ``pass_medians_ms``, scaled so that all passes give ``latency_ms``)."""
    out = {}
    for r in _ok(path).itertuples():
        meds = _pass_latencies(r)
        out[r.signature] = r.latency_ms * _gmean(meds[:passes]) / _gmean(meds) if meds \
            else r.latency_ms
    return out


def misses(a: dict[str, float], b: dict[str, float], scale: bool = False) -> tuple[int, int]:
    """Ops of ``b`` outside +-5 % of ``a``; with ``scale``, after dividing out the median ratio
    (two tables at levels of their own)."""
    keys = sorted(set(a) & set(b))
    r = np.array([b[k] / a[k] for k in keys])
    if scale:
        r = r / np.median(r)
    return int(np.sum(np.abs(r - 1) > TOL)), len(keys)


def _rows(path: Path) -> dict[str, float]:
    ok = _ok(path)
    return dict(zip(ok["signature"], ok["latency_ms"]))


def report_extras(found, passes: int) -> None:
    print(f"1. extra passes against their own sweeps (gmean of extras / gmean of the first "
          f"{passes} passes)")
    by_kind = defaultdict(list)
    for (_, space, variant, _which), p in found.items():
        rs = extra_ratios(p, passes)
        by_kind[(space, _kind(variant))] += [r for _, _, r in rs]
        if rs:
            v = np.array([r for _, _, r in rs])
            print(f"  {p.name}: {len(rs)} row(s), {sum(n for _, n, _ in rs)} extra op passes; "
                  f"ratio median {np.median(v):.3f}, mean {v.mean():.3f}, "
                  f"> 1.03: {int(np.sum(v > 1.03))}, < 0.97: {int(np.sum(v < 0.97))}")
        else:
            print(f"  {p.name}: no extra passes")
    for (space, kind), v in sorted(by_kind.items()):
        if v:
            v = np.array(v)
            print(f"  {space} [{kind or '-'}] all: {len(v)} rows, ratio median {np.median(v):.3f}, "
                  f"mean {v.mean():.3f}, > 1.03: {int(np.sum(v > 1.03))}, "
                  f"< 0.97: {int(np.sum(v < 0.97))}")


def report_pairs(found, passes: int) -> None:
    print("2. A/B pairs per kind: ops outside +-5 % (latency_ms; rows from their sweeps alone);"
          " pairs of two instances of a kind are at levels of their own: scaled by their median "
          "ratio")
    groups = defaultdict(lambda: {"A": [], "B": []})
    for (folder, space, variant, which), p in found.items():
        groups[(space, _kind(variant))][which].append((folder, variant, p))
    for (space, kind), g in sorted(groups.items()):
        tot = {False: [0, 0, 0], True: [0, 0, 0]}
        for fa, va, a in g["A"]:
            for fb, vb, b in g["B"]:
                scale = (fa, va) != (fb, vb)
                m, n = misses(_rows(a), _rows(b), scale)
                s, _ = misses(sweeps_only(a, passes), sweeps_only(b, passes), scale)
                t = tot[scale]
                t[0], t[1], t[2] = t[0] + m, t[1] + s, t[2] + n
                print(f"  {a.parent.name}/{a.name} vs {b.parent.name}/{b.name}"
                      f"{' (scaled)' if scale else ''}: {m} / {n} (sweeps alone {s})")
        for scale, (m, s, n) in tot.items():
            if n:
                print(f"  {space} [{kind or '-'}]{' scaled pairs' if scale else ' own pairs'}: "
                      f"{m} of {n} op pairs outside +-5 % ({100 * (1 - m / n):.1f} % within); "
                      f"sweeps alone {s}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--passes", type=int, default=3, help="the builds' own passes (sweeps)")
    args = ap.parse_args(argv)
    found = {}
    for folder in args.folders:
        found.update({(str(folder), s, v, w): p for (s, v, w), p in tables(folder).items()})
    if not found:
        raise SystemExit(f"no SPACE-VARIANT-A/B.parquet tables in {', '.join(map(str, args.folders))}")
    report_extras(found, args.passes)
    report_pairs(found, args.passes)


if __name__ == "__main__":
    main()
