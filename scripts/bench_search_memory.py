"""Peak memory of a ProxylessNAS search step vs a DARTS step on mbv2-cifar (goal: <= 50 %).

Each algorithm runs in its own process: build the learner, run a few weight
+ architecture steps on MNIST batches, and report the peak resident memory
(ru_maxrss) and its growth over the process's memory after the setup (data
loaded, parameters created, before the first step). Latency values do not
change memory; with no table given, every candidate's latency is taken from
its analytic MAC count (1 ms per GMAC) so the script needs no mbv2-cifar table.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_search_memory.py --batch 32
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(algo: str, space_name: str, batch: int, steps: int, table: str | None) -> dict:
    import time

    import nnabla as nn
    import numpy as np

    from hwprof.latency.spaces import get_space
    from hwprof.search.data import load_data
    from hwprof.search.latency_loss import LatencyLoss, LatencyTable2D
    from hwprof.search.registry import get_strategy

    space = get_space(space_name)
    if table:
        from hwprof.latency.loading import load_latency_model
        lut = LatencyTable2D.from_model(space, load_latency_model(table))
    else:
        names = [list(lay.candidates) for lay in space.layers]
        ms = [np.array([0.0 if space.candidate_spec(li, n) is None
                        else space.candidate_spec(li, n).features()["macs"] / 1e6 for n in nm])
              for li, nm in enumerate(names)]
        fixed = sum(s.features()["macs"] for s in space.fixed_specs) / 1e6
        lut = LatencyTable2D(names, ms, fixed, {"macs": 1})
    lo, hi = lut.range_ms()
    data = load_data("mnist", space.input, space.classes, seed=0, limit=1000)
    nn.seed(0)
    rng = np.random.RandomState(0)
    ln = get_strategy(algo).learner_class(space, lut, LatencyLoss(lut, (lo + hi) / 2), data, rng, batch=batch)
    base = rss_mb()
    base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    for i in range(steps):
        b = slice(i * batch, (i + 1) * batch)
        ln.weight_step(data.x_train[b], data.y_train[b], 1.0)
        ln.arch_step(data.x_val[b], data.y_val[b], 1.0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"algo": algo, "space": space_name, "batch": batch, "steps": steps,
            "rss_after_setup_mb": base, "peak_before_steps_mb": base_max, "peak_mb": peak,
            "step_growth_mb": peak - base, "seconds_per_step": (time.perf_counter() - t0) / steps}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--table", help="latency table of the space (optional)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.space, a.batch, a.steps, a.table)))
        return 0
    res = {}
    for algo in ("proxyless", "darts"):
        cmd = [sys.executable, __file__, "--child", algo, "--space", a.space, "--batch", str(a.batch),
               "--steps", str(a.steps)] + (["--table", a.table] if a.table else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stderr[-3000:])
            return 1
        res[algo] = json.loads(p.stdout.strip().splitlines()[-1])
        r = res[algo]
        print(f"{algo:9s} {a.space} batch {a.batch}: peak RSS {r['peak_mb']:.0f} MB, after setup "
              f"{r['rss_after_setup_mb']:.0f} MB, growth during steps {r['step_growth_mb']:.0f} MB, "
              f"{r['seconds_per_step']:.1f} s per weight+arch step", flush=True)
    p, d = res["proxyless"], res["darts"]
    print(f"ProxylessNAS / DARTS: peak RSS {100 * p['peak_mb'] / d['peak_mb']:.1f} %, growth during "
          f"steps {100 * p['step_growth_mb'] / d['step_growth_mb']:.1f} %")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
