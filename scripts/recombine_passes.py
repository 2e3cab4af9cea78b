#!/usr/bin/env python
"""Offline: how two builds of one space agree under different ways of combining passes.

Reads kept tables of ``bench_protocol.py`` runs (``--out-dir DIR``: every ``*-A.parquet``
beside its ``*-B.parquet``, variants included; B built with A's reference level) and, from
each row's pass latencies (``pass_medians_ms``), counts per pair the ops outside +-5 % of
each other with the row latency taken as: the median pass (the rule before agent v8), the
geometric mean of all passes (agent v8 to 2026-12-05), the geometric mean of their lower
half (the rule since, ``hwprof.latency.passes.row_latency``), the lowest pass, and the
geometric mean of the passes within 5-15 % of their median; then the totals over every
pair. Nothing is measured, and the passes are the same for every rule (which ops got extra
passes does not depend on the rule); the machine's movement is that of the builds (printed
by ``bench_protocol.py``).

  .venv/bin/python scripts/recombine_passes.py /tmp/bp /tmp/bp-evening
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwprof.latency.passes import geometric_mean, lower_median, row_latency

RULES = {"median pass": lower_median, "mean of all": geometric_mean,
         "lower half": row_latency, "lowest": min}
TOL = 0.05


def _trimmed(tol):
    def rule(p):
        m = lower_median(p)
        return geometric_mean([x for x in p if abs(x / m - 1) <= tol])
    return rule


def _passes(path):
    from hwprof.latency.table import read_table
    df = read_table(path).df
    df = df[(df["status"] == "ok") & df["pass_medians_ms"].notna()]
    return {s: [float(x) for x in p] for s, p in zip(df["signature"], df["pass_medians_ms"])}


def misses(a: dict, b: dict, rule) -> tuple[int, int, float]:
    """Ops of both builds outside +-5 % of each other under ``rule``, the ops compared, and the
    largest difference."""
    common = sorted(set(a) & set(b))
    diffs = [abs(rule(b[s]) / rule(a[s]) - 1) for s in common]
    return sum(d > TOL for d in diffs), len(diffs), max(diffs)


def pairs(dirs, spaces) -> list[tuple[str, Path, Path]]:
    """reestimate_passes.py's kept A/B pairs, of the given spaces only."""
    from reestimate_passes import pairs as kept_pairs  # a script beside this one
    return [(name, pa, pb) for name, pa, pb in kept_pairs(dirs)
            if any(pa.name.startswith(s + "-") for s in spaces)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", help="bench_protocol.py --out-dir directories")
    ap.add_argument("--spaces", default="mbv2-cifar,mbv2-mini")
    args = ap.parse_args(argv)
    rules = dict(RULES, **{f"trimmed {t:.0%}": _trimmed(t) for t in (0.05, 0.10, 0.15)})
    found = pairs(args.dirs, args.spaces.split(","))
    if not found:
        print("error: no *-A.parquet beside a *-B.parquet of those spaces in " + ", ".join(args.dirs),
              file=sys.stderr)
        return 2
    total = {name: [0, 0, 0] for name in rules}  # misses, ops, pairs without a miss
    for pair, pa, pb in found:
        a, b = _passes(pa), _passes(pb)
        figs = []
        for name, rule in rules.items():
            k, n, worst = misses(a, b, rule)
            total[name][0] += k
            total[name][1] += n
            total[name][2] += k == 0
            figs.append(f"{name} {k} (max {100 * worst:.1f} %)")
        print(f"{pair} ({n} ops), outside ±5 %: "
              + "; ".join(figs))
    print(f"\nover {len(found)} pairs: op pairs outside ±5 % (pairs with none)")
    for name, (k, n, clean) in total.items():
        print(f"  {name:<13} {k:>4} of {n} ({100 * (n - k) / n:.2f} % within; {clean} of {len(found)} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
