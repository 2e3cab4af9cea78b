"""Cost of the default `hwprof search` command, and quality vs random architectures.

1. Runs the default command (`mbv2-mini`, MNIST 5k, default epochs and
   retraining) once per algorithm as a subprocess and prints its wall time
   (goal <= 10 min including the retrain), the latency-term share of the
   search steps (goal <= 2 %) and the searched network's test accuracy.
2. Quality: draws 10 random architectures whose estimated latency fits the
   same budget, retrains each exactly like the searched one (same epochs,
   data, seed) and prints the best test accuracy vs the searched ones
   (goal: searched >= best random).

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_search_cost.py \
      --table /tmp/cpu-mini.parquet --budget-quantile 50
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--space", default="mbv2-mini")
    ap.add_argument("--budget-ms", type=float, help="default: --budget-quantile of random archs")
    ap.add_argument("--budget-quantile", type=float, default=50)
    ap.add_argument("--algos", default="proxyless,darts")
    ap.add_argument("--randoms", type=int, default=10)
    ap.add_argument("--retrain-epochs", type=int, default=4, help="the command's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-search", action="store_true", help="reuse reports in --out")
    ap.add_argument("--out", default="/tmp/bench-search-cost")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)

    from bench_search_budget import budgets

    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space

    space = get_space(a.space)
    model = load_latency_model(a.table)
    budget = a.budget_ms or budgets(space, model, [a.budget_quantile])[0][0]
    print(f"budget {budget:.3f} ms (p{a.budget_quantile:g} of {space.name} on {a.table})", flush=True)
    out = Path(a.out)
    results = {"budget_ms": budget, "search": {}, "random": []}
    for algo in a.algos.split(","):
        d = out / algo
        if not a.skip_search:
            cmd = [sys.executable, "-m", "hwprof", "search", "--table", a.table, "--space", a.space,
                   "--latency-budget", f"{budget:.4f}ms", "--algo", algo, "--data", "mnist",
                   "--seed", str(a.seed), "--out", str(d)]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if p.returncode != 0:
                print(p.stdout[-2000:], p.stderr[-2000:])
                return 1
            (d / "stdout.txt").write_text(p.stdout)
            (d / "wall_seconds.txt").write_text(f"{wall}\n")
        wall = float((d / "wall_seconds.txt").read_text())
        rep = json.loads((d / "report.json").read_text())
        results["search"][algo] = {"wall_seconds": wall, **{k: rep[k] for k in (
            "test_accuracy", "predicted_ms", "measured_ms", "search_seconds", "retrain_seconds",
            "latency_term_share", "latency_term_seconds", "step_seconds", "choices", "epochs")}}
        print(f"{algo:9s} wall {wall:6.1f} s (search {rep['search_seconds']:.1f} s, retrain "
              f"{rep['retrain_seconds']:.1f} s, {rep['epochs']} epochs)  latency term "
              f"{100 * rep['latency_term_share']:.3f} % of step time  test acc "
              f"{rep['test_accuracy']:.4f}  predicted {rep['predicted_ms']:.3f} ms  measured "
              f"{rep['measured_ms']} ms", flush=True)

    # quality: random architectures under the same budget, same retraining
    import nnabla as nn
    import numpy as np

    from hwprof.search.data import load_data
    from hwprof.search.supernet import SuperNet
    from hwprof.search.train import train_child

    data = load_data("mnist", space.input, space.classes, seed=a.seed)
    rng = random.Random(1000 + a.seed)
    picked = []
    while len(picked) < a.randoms:
        ch = [rng.choice(lay.candidates) for lay in space.layers]
        if model.estimate_arch(space, ch)["estimate_ms"] <= budget and ch not in picked:
            picked.append(ch)
    for i, ch in enumerate(picked):
        nn.clear_parameters()
        nn.seed(a.seed)
        r = np.random.RandomState(a.seed)
        net = SuperNet(space, r, scope="child")
        res = train_child(net, ch, data, a.retrain_epochs, r)
        est = model.estimate_arch(space, ch)["estimate_ms"]
        results["random"].append({"choices": ch, "estimate_ms": est, **res})
        print(f"random {i + 1:2d}: test acc {res['test_accuracy']:.4f}  est {est:.3f} ms  "
              f"{' '.join(ch)}", flush=True)
    best = max(r["test_accuracy"] for r in results["random"])
    print(f"best of {a.randoms} random archs under the budget: {best:.4f}")
    for algo, s in results["search"].items():
        print(f"searched ({algo}): {s['test_accuracy']:.4f}  "
              f"{'>=' if s['test_accuracy'] >= best else '<'} best random")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
