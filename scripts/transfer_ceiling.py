#!/usr/bin/env python
"""How far a transfer can get between two devices at best (issue 17), from tables of the same ops.

``hwprof fit --transfer-from`` multiplies device A's predictions by a correction learned from
a few of device B's rows. Its error is A's predictor's error compounded with the correction's.
This script removes the first: given a table of A and a table of B holding the same ops (e.g.
both built with ``--sample 200 --seed 4``), it puts A's *measured* latencies in place of its
predictor (what a perfect one would say, up to A's own label noise), fits the transfer's own
correction (``predictors/transfer.py``: the ridge, and the per-kind forest where it wins) on N
of B's rows and judges it on the others. Drawn ``--draws`` times for ``--few`` rows, and once
in ``--folds``-fold cross-validation (all the other rows train: what many more measured rows
would buy). Nothing is measured here.

Beside it: both tables' labels' own floor (each op's passes against each other, as the
predictor benchmark prints it) and how far the machine moved while each was measured. If the
figure from A's measured latencies stays well below a goal, no predictor of A reaches the goal
on this pair of devices, whatever it is trained on.

  .venv/bin/python scripts/transfer_ceiling.py --a /tmp/s31/ort/ort-full.parquet \\
      --b /tmp/s31/ort/ort2-full.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hwprof.latency.specs import stored_specs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predictors_budget import _movement, _pairwise_floor, _print_floor, _table  # noqa: E402


class MeasuredA:
    """Device A's measured latencies standing in for its predictor (what a perfect one would
    say); the kind features are hwprof's own, so the transfer's forests see what they see."""

    def __init__(self, df):
        ok = df[(df["status"] == "ok") & df["latency_ms"].notna()]
        self.lat = dict(zip(stored_specs(ok["spec"]), ok["latency_ms"].astype(float)))
        self.kinds = sorted({s.kind for s in self.lat})

    def can_predict(self, spec) -> bool:
        return spec in self.lat

    def _predict(self, specs, corrected: bool = False) -> np.ndarray:
        return np.array([self.lat[s] for s in specs], float)

    def _features(self, kind, specs) -> np.ndarray:
        from hwprof.latency.predictors.features import feature_matrix
        return feature_matrix(specs)[0]


def judged(a: MeasuredA, train, test) -> np.ndarray:
    """|pred / true - 1| on ``test`` of the correction fitted on ``train`` (B's rows)."""
    from hwprof.latency.predictors.transfer import correction, fit_transfer
    forests, state = fit_transfer(a, train)
    specs = stored_specs(test["spec"])
    pred = a._predict(specs)
    out = np.empty(len(specs))
    kinds = np.array([s.kind for s in specs])
    for kind in set(kinds):
        idx = np.flatnonzero(kinds == kind)
        ks = [specs[i] for i in idx]
        forest = forests.get(kind)
        factor = correction(state, ks, pred[idx], forest,
                            a._features(kind, ks) if forest is not None else None)
        out[idx] = pred[idx] * factor
    return np.abs(out / test["latency_ms"].to_numpy(float) - 1)


def _common(a_path, b_path):
    ta, tb = _table(a_path), _table(b_path)
    a = MeasuredA(ta.df)
    ok = tb.df[(tb.df["status"] == "ok") & tb.df["latency_ms"].notna()]
    ok = ok.drop_duplicates("signature", keep="last")
    keep = [a.can_predict(s) for s in stored_specs(ok["spec"])]
    return ta, tb, a, ok[keep].reset_index(drop=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="device A's table (the transfer's source)")
    ap.add_argument("--b", required=True, help="device B's table of the same ops")
    ap.add_argument("--few", type=int, default=50, help="B's rows the correction learns from")
    ap.add_argument("--draws", type=int, default=20, help="random draws of the few rows")
    ap.add_argument("--folds", type=int, default=10, help="folds of the all-rows figure")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    ta, tb, a, b = _common(args.a, args.b)
    if len(b) < args.few + 10:
        print(f"only {len(b)} ops in both tables; need more than {args.few + 10}")
        return 2
    print(f"{len(b)} ops in both tables; A {args.a} ({_movement(ta)}), B {args.b} "
          f"({_movement(tb)})")
    _print_floor("A's labels", _pairwise_floor(ta.df[ta.df["signature"].isin(set(b["signature"]))]))
    _print_floor("B's labels", _pairwise_floor(b))
    ratio = b["latency_ms"].to_numpy(float) / a._predict(stored_specs(b["spec"]))
    print(f"B / A per op: median {np.median(ratio):.3f}, p5-p95 {np.percentile(ratio, 5):.3f}-"
          f"{np.percentile(ratio, 95):.3f}")
    rng = np.random.default_rng(args.seed)
    shares = []
    for _ in range(args.draws):
        idx = rng.permutation(len(b))
        rel = judged(a, b.iloc[idx[:args.few]], b.iloc[idx[args.few:]])
        shares.append(100 * np.mean(rel <= 0.10))
    print(f"device A's measured latencies in place of its predictor, transferred with {args.few} "
          f"of B's rows, judged on the other {len(b) - args.few}: within ±10 % "
          f"{np.mean(shares):.1f} % (mean of "
          f"{args.draws} draws; min {min(shares):.1f}, max {max(shares):.1f})")
    rel = np.empty(len(b))
    folds = np.array_split(rng.permutation(len(b)), args.folds)
    for f in folds:
        train = b.drop(index=f)
        rel[f] = judged(a, train, b.iloc[f])
    print(f"... with all the other rows ({args.folds}-fold, {len(b) - len(folds[0])} rows each): "
          f"within ±10 % {100 * np.mean(rel <= 0.10):.1f} %, ±5 % {100 * np.mean(rel <= 0.05):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
