#!/usr/bin/env python
"""Offline: two builds of the same ops at different reference levels, row by row.

Two tables of the same ops built apart (hours, or on another day) each carry their rows to
their own reference level, so they differ by a common factor. Every row of both is derived
again from its kept samples under each estimator (as ``reestimate_passes.py`` does; an
estimator's ``"elasticity": "fit"`` fits each table's own on all its passes, extra ones too;
``{}`` keeps what each table says: its stored elasticity, else the protocol's), and the share
of ops whose ratio B/A lies within +-5 % (+-10 %) of the median ratio is printed: how well the
two builds repeat once the level is divided out. Nothing is measured.

  .venv/bin/python scripts/cross_build.py A.parquet B.parquet \\
      --estimators 'e0.5={"elasticity": 0.5};fit={"elasticity": "fit"};e1={"elasticity": 1.0}'
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from reestimate_passes import derive, fitted, load, parse_estimators


def agreement(a: tuple, b: tuple, over: dict) -> dict:
    """B/A of the common rows under ``over`` (each table's own fit for "fit"), around its
    median."""
    (ca, ra), (cb, rb) = a, b
    oa, _ = fitted(over, ra, ca)
    ob, _ = fitted(over, rb, cb)
    common = sorted(set(ra) & set(rb))
    ratios = [derive(rb[s][2], rb[s][1], {**cb, **ob}) / derive(ra[s][2], ra[s][1], {**ca, **oa})
              for s in common]
    mid = statistics.median(ratios)
    dev = sorted(abs(r / mid - 1) for r in ratios)
    return {"n": len(ratios), "median_ratio": mid, "within_5": sum(d <= 0.05 for d in dev) / len(dev),
            "within_10": sum(d <= 0.10 for d in dev) / len(dev), "median_dev": dev[len(dev) // 2],
            "elasticity_a": oa.get("elasticity", ca["elasticity"]),
            "elasticity_b": ob.get("elasticity", cb["elasticity"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="the first build's table")
    ap.add_argument("b", type=Path, help="the second build's table (the same ops)")
    ap.add_argument("--estimators", default='e0.5={"elasticity": 0.5};fit={"elasticity": "fit"}',
                    help="name={protocol overrides as JSON};... (default: %(default)s)")
    args = ap.parse_args(argv)
    from hwprof.errors import UserError
    try:  # a bad estimator or an unreadable table: one line, exit 2
        ests = parse_estimators(args.estimators)
        a, b = load(args.a), load(args.b)
    except (ValueError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not set(a[1]) & set(b[1]):
        print(f"error: {args.a} and {args.b} have no ops in common (with every pass's samples)",
              file=sys.stderr)
        return 2
    for name, over in ests.items():
        f = agreement(a, b, over)
        print(f"{name:>8} (elasticity {f['elasticity_a']:g} / {f['elasticity_b']:g}): {f['n']} ops, "
              f"median B/A {f['median_ratio']:.4f}; within +-5 % of it {100 * f['within_5']:.1f} %, "
              f"+-10 % {100 * f['within_10']:.1f} %, median deviation {100 * f['median_dev']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
