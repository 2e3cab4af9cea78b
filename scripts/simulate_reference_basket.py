#!/usr/bin/env python
"""Offline: would a reference made of several ops have moved less between two builds than the one op did?

Reads pairs of kept tables (``bench_protocol.py --out-dir DIR``: ``*-A.parquet`` beside
``*-B.parquet``, B built at A's reference level). Every row's ``latency_ms`` is the op's
latency against the build's reference op; the common shift of B against A (the median of
log B/A over the ops) is how far that reference moved against everything else between
the builds. Dividing each build's rows by the geometric mean of ``--k`` of its own ops
instead is what a reference made of those ops would have given (their samples were timed
in the same rounds, beside the same reference); the script draws ``--draws`` random
sets of k ops per pair and prints, for the ops outside each set, the share within +-5 %
and the common shift left, beside the single reference's. Nothing is measured; how much
the machine moved is what ``bench_protocol.py`` printed for those builds.

  .venv/bin/python scripts/simulate_reference_basket.py /tmp/bp /tmp/bp2 [--k 3] [--draws 300]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

from reestimate_passes import TOL, pairs  # a sibling script: scripts/ is on the path when run


def shifts(pa: Path, pb: Path) -> list[float]:
    """log(B / A) of ``latency_ms`` for the ops both tables measured (status ok)."""
    import pandas as pd
    a, b = (pd.read_parquet(p) for p in (pa, pb))
    a, b = (t[t.status == "ok"].set_index("signature").latency_ms for t in (a, b))
    common = a.index.intersection(b.index)
    return [math.log(b[s] / a[s]) for s in common]


def within(logs) -> float:
    return sum(abs(math.exp(v) - 1) <= TOL for v in logs) / len(logs)


def basket(sh: list[float], k: int, draws: int, rng: random.Random) -> dict:
    """Share within +-5 % and |common shift| of the other ops, over ``draws`` random k-sets."""
    shares, common = [], []
    for _ in range(draws):
        pick = set(rng.sample(range(len(sh)), k))
        ref = sum(sh[i] for i in pick) / k
        rest = [v - ref for i, v in enumerate(sh) if i not in pick]
        shares.append(within(rest))
        common.append(abs(statistics.median(rest)))
    shares.sort()
    common.sort()
    return {"within_median": statistics.median(shares), "within_p10": shares[len(shares) // 10],
            "shift_median": statistics.median(common), "shift_p90": common[9 * len(common) // 10]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--k", type=int, default=3, help="ops in a simulated reference (default 3)")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    found = pairs(a.dirs)
    if not found:
        print(f"error: no *-A.parquet / *-B.parquet pairs in {', '.join(a.dirs)}", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)
    print(f"pair: the build's reference op (within +-5 %, common B/A shift) | a reference of "
          f"{a.k} of the table's ops, {a.draws} draws (within: median, p10; |shift|: median, p90)")
    for name, pa, pb in found:
        sh = shifts(pa, pb)
        if len(sh) <= a.k:
            print(f"{name}: only {len(sh)} ops in common, skipped")
            continue
        r = basket(sh, a.k, a.draws, rng)
        print(f"{name}: {100 * within(sh):.1f} %, {100 * statistics.median(sh):+.2f} % | "
              f"{100 * r['within_median']:.1f} %, {100 * r['within_p10']:.1f} %; "
              f"{100 * r['shift_median']:.2f} %, {100 * r['shift_p90']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
