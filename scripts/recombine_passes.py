#!/usr/bin/env python
"""Offline: how two builds of one space agree under different ways of combining passes.

Reads kept tables of a ``bench_protocol.py`` run (``--out-dir DIR``: SPACE-A.parquet and
SPACE-B.parquet, B built with A's reference level) and, from each row's pass latencies
(``pass_medians_ms``), prints the share of ops within +-5 % between A and B with the row
latency taken as the median pass (the rule before agent v8), the geometric mean of the passes
(the rule since), and the geometric mean of the passes within 5-15 % of their median. Nothing
is measured; the machine's movement is that of the builds (printed by ``bench_protocol.py``).

  .venv/bin/python scripts/recombine_passes.py /tmp/bp /tmp/bp-evening
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwprof.latency.passes import geometric_mean, lower_median

RULES = {"median pass": lower_median, "geometric mean": geometric_mean}


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


def agreement(a: dict, b: dict, rule) -> tuple[float, float, int]:
    common = sorted(set(a) & set(b))
    diffs = [abs(rule(b[s]) / rule(a[s]) - 1) for s in common]
    return sum(d <= 0.05 for d in diffs) / len(diffs), max(diffs), len(diffs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", help="bench_protocol.py --out-dir directories")
    ap.add_argument("--spaces", default="mbv2-cifar,mbv2-mini")
    args = ap.parse_args(argv)
    rules = dict(RULES, **{f"trimmed {t:.0%}": _trimmed(t) for t in (0.05, 0.10, 0.15)})
    for d in args.dirs:
        for space in args.spaces.split(","):
            pa, pb = Path(d) / f"{space}-A.parquet", Path(d) / f"{space}-B.parquet"
            if not (pa.exists() and pb.exists()):
                continue
            a, b = _passes(pa), _passes(pb)
            figs = []
            for name, rule in rules.items():
                share, worst, n = agreement(a, b, rule)
                figs.append(f"{name} {100 * share:.1f} % (max {100 * worst:.1f} %)")
            print(f"{d} {space} ({n} ops), A vs B within ±5 %: " + "; ".join(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
