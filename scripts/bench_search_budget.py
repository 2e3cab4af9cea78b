"""Budget satisfaction of `hwprof search` on a CPU table.

For budgets at the 25th, 50th and 75th percentile of the space's estimated
latency over random architectures, run a short search with each algorithm,
measure the exported network end to end on the CPU and print measured/budget
(goal: 0.8 <= ratio <= 1.05 in every case).

Run under the benchmark lock, with a table of the space (and optionally a
calibration stored in it by `hwprof calibrate`):

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_search_budget.py \
      --table /tmp/cpu-mini.parquet --space mbv2-mini --epochs 3 --retrain-epochs 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np


def budgets(space, model, quantiles, n=2000, seed=0):
    rng = random.Random(seed)
    ests = []
    for _ in range(n):
        ch = [rng.choice(lay.candidates) for lay in space.layers]
        ests.append(model.estimate_arch(space, ch)["estimate_ms"])
    return [float(np.percentile(ests, q)) for q in quantiles], (min(ests), max(ests))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--space", default="mbv2-mini")
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--algos", default="proxyless,darts")
    ap.add_argument("--quantiles", default="25,50,75")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--retrain-epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/bench-search-budget")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)

    from hwprof.commands.search import measure_end_to_end, table_device
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.search.data import load_data
    from hwprof.search.runner import run_search

    space = get_space(a.space)
    model = load_latency_model(a.table)
    device = table_device(a.table)
    qs = [float(q) for q in a.quantiles.split(",")]
    bs, (lo, hi) = budgets(space, model, qs)
    cal = model.calibration is not None
    print(f"space {space.name}, table {a.table} (device {device}, calibrated: {cal}); estimated "
          f"latency over 2000 random archs {lo:.3f}..{hi:.3f} ms; budgets "
          + ", ".join(f"p{q:g}={b:.3f} ms" for q, b in zip(qs, bs)))
    data = load_data(a.data, space.input, space.classes, seed=a.seed)
    rows = []
    for algo in a.algos.split(","):
        for q, b in zip(qs, bs):
            notes: list = []
            t0 = time.perf_counter()
            rep = run_search(space, model, data, b, f"{a.out}/{algo}-p{q:g}", algo=algo,
                             epochs=a.epochs, retrain_epochs=a.retrain_epochs, seed=a.seed,
                             measure=lambda s, notes=notes: measure_end_to_end(device, s, notes,
                                                                  model.device_fingerprint),
                             log=lambda m: None)
            m = rep["measured_ms"]
            ratio = None if m is None else m / b
            ok = ratio is not None and 0.8 <= ratio <= 1.05
            rows.append({"algo": algo, "quantile": q, "budget_ms": b, "predicted_ms": rep["predicted_ms"],
                         "measured_ms": m, "ratio": ratio, "ok": ok, "choices": rep["choices"],
                         "seconds": time.perf_counter() - t0, "notes": notes})
            print(f"{algo:9s} p{q:<3g} budget {b:.3f} ms  predicted {rep['predicted_ms']:.3f} ms  "
                  f"measured {'n/a' if m is None else f'{m:.3f}'} ms  measured/budget "
                  f"{'n/a' if ratio is None else f'{ratio:.3f}'}  {'OK' if ok else 'MISS'}", flush=True)
    n_ok = sum(r["ok"] for r in rows)
    print(f"budget satisfaction: {n_ok}/{len(rows)} within [0.8, 1.05] x budget")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "calibrated": cal, "range_ms": [lo, hi]}, f, indent=2)
    return 0 if n_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
