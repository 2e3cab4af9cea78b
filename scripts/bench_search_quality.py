"""Search quality at equal compute: every registered strategy, several seeds, one budget.

On one space and data set, at one latency budget (the CLI's ``mid``), each
strategy searches with the same compute budget (``--epochs`` training epochs
over the train split: random search and evolution spend them on trials of
``--trial-epochs`` epochs, SPOS on its supernet, the one-shot strategies on
their supernets), for ``--seeds`` seeds. Every answer goes through the same
runner: derivation under the budget (the table's calibrated whole-network
estimate; nothing is measured end to end here), then retraining from scratch
for ``--retrain-epochs`` epochs, scored on the held-out test split.

Printed per strategy: test accuracy mean and 95 % t-interval over the seeds,
estimate/budget of the answers, search and wall seconds per run, and whether
the interval lies above random search's (non-overlapping). While the runs go,
a probe times a fixed nnabla convolution every 2 s; its spread (p95/p5) says
how much the machine's speed moved.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_search_quality.py \\
      --table /tmp/mini.parquet --seeds 5 --epochs 4 --retrain-epochs 3 --limit 2000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    a = _args(argv)
    if a.summarise:
        return summarise_file(a.summarise)
    from hwprof.commands.search import mid_budget
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.search.registry import strategy_names

    space = get_space(a.space)
    model = load_latency_model(a.table)
    budget = a.budget_ms or mid_budget(space, model)
    names = strategy_names() if a.strategies == "all" else a.strategies.split(",")
    calibrated = getattr(model, "calibration", None) is not None
    print(f"{space.name}, data {a.data} (limit {a.limit or 'none'}), budget {budget:.3f} ms "
          f"('mid' of {a.table}, {'calibrated' if calibrated else 'table sum'} estimate); "
          f"{a.epochs} search epochs, {a.retrain_epochs} retrain epochs, seeds "
          f"{a.seed0}..{a.seed0 + a.seeds - 1}, {a.jobs} runs at a time", flush=True)
    last = [n for n in a.last.split(",") if n in names] if a.last else []
    tasks = [(name, s) for group in ([n for n in names if n not in last], last)
             for s in range(a.seed0, a.seed0 + a.seeds) for name in group]
    if a.rows:
        with open(a.rows, "a") as f:
            f.write(json.dumps({"budget_ms": budget, "table": a.table, "limit": a.limit,
                                "epochs": a.epochs, "retrain_epochs": a.retrain_epochs}) + "\n")
    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    rows = _run_all(a, tasks, budget)
    total = time.perf_counter() - t0
    probe.stop()
    summary = summarise(rows, names, budget)
    _print(summary, rows, total, probe.movement())
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "budget_ms": budget, "rows": rows,
                                            "summary": summary, "total_seconds": total,
                                            "machine": probe.movement()}, indent=2) + "\n")
    return 0


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", help="latency table of the space (Parquet)")
    ap.add_argument("--space", default="mbv2-mini")
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--limit", type=int, default=2000,
                    help="examples kept of the data (60/20/20 train/val/test; 0: all)")
    ap.add_argument("--budget-ms", type=float, help="default: the CLI's 'mid'")
    ap.add_argument("--strategies", default="all", help="comma-separated names (default: all)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--last", metavar="NAMES",
                    help="strategies whose runs go after every seed of the others (the costly "
                         "ones, so that a stopped run has the others complete)")
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=4, help="compute budget of every strategy")
    ap.add_argument("--trial-epochs", type=int, default=1, help="random/evolution epochs per trial")
    ap.add_argument("--retrain-epochs", type=int, default=3)
    ap.add_argument("--option", action="append", default=[], metavar="STRATEGY:K=V",
                    help="a --strategy-option for one strategy, e.g. spos:images=200")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (processes)")
    ap.add_argument("--out", default="/tmp/bench-search-quality")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--rows", metavar="FILE",
                    help="append each finished run to FILE as a JSON line (survives an interruption)")
    ap.add_argument("--summarise", metavar="FILE",
                    help="only print the summary of a --rows FILE (e.g. of an interrupted run)")
    a = ap.parse_args(argv)
    if not a.table and not a.summarise:
        ap.error("--table is required")
    return a


def summarise_file(path) -> int:
    lines = [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
    head = lines[0]
    rows = [ln for ln in lines[1:] if "strategy" in ln]
    names = sorted({r["strategy"] for r in rows})
    print(f"{len(rows)} runs from {path}: {head}")
    _print(summarise(rows, names, head["budget_ms"]), rows, None, None)
    return 0


def strategy_options(a, name: str) -> dict:
    from hwprof.search.registry import get_strategy
    known = getattr(get_strategy(name), "option_help", None) or {}
    opts = {}
    if "trial_epochs" in known:
        opts["trial_epochs"] = str(a.trial_epochs)
    if "workers" in known:
        opts["workers"] = "1"   # the runs themselves go in parallel
    for o in a.option:
        who, _, kv = o.partition(":")
        if who == name:
            k, _, v = kv.partition("=")
            opts[k] = v
    return opts


def _run_all(a, tasks, budget) -> list[dict]:
    from tqdm import tqdm
    rows = []
    jobs = [(a.table, a.space, a.data, a.limit, budget, name, seed, a.epochs, a.retrain_epochs,
             strategy_options(a, name), str(Path(a.out) / f"{name}-s{seed}")) for name, seed in tasks]
    import multiprocessing as mp
    with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(one_run, *j): j for j in jobs}
        for f in tqdm(as_completed(futs), total=len(futs), desc="runs", unit="run"):
            r = f.result()
            rows.append(r)
            if a.rows:
                with open(a.rows, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
            print(f"  {r['strategy']:10s} seed {r['seed']}: test acc {r['test_accuracy']:.4f}  "
                  f"{r['estimate_ms']:.3f} ms ({r['estimate_over_budget']:.3f} of budget)  "
                  f"search {r['search_seconds']:.0f} s  wall {r['wall_seconds']:.0f} s", flush=True)
    return sorted(rows, key=lambda r: (r["strategy"], r["seed"]))


def one_run(table, space_name, data_name, limit, budget, name, seed, epochs, retrain, options,
            out) -> dict:
    """One search through the runner in a fresh process; its log goes to OUT/log.txt."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["TQDM_DISABLE"] = "1"   # the runs' own progress bars would interleave
    logging.getLogger("nnabla").setLevel(logging.WARNING)
    import nnabla as nn

    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.search.data import load_data
    from hwprof.search.runner import run_search
    # a worker process runs several searches: the runner retrains in scope "child" without
    # clearing it, so a run would start its retraining from the previous run's weights
    nn.clear_parameters()
    space = get_space(space_name)
    data = load_data(data_name, space.input, space.classes, seed=0, limit=limit or None)
    Path(out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(Path(out) / "log.txt", "w") as f:
        def log(m):
            f.write(m + "\n")
        rep = run_search(space, load_latency_model(table), data, budget, out, algo=name,
                         epochs=epochs, retrain_epochs=retrain, seed=seed, measure=None, log=log,
                         strategy_options=options, max_rounds=1)
    est = rep.get("predicted_ms")
    return {"strategy": name, "seed": seed, "test_accuracy": rep.get("test_accuracy"),
            "val_accuracy": rep.get("val_accuracy"), "estimate_ms": est,
            "estimate_over_budget": est / budget if est else None, "choices": rep.get("choices"),
            "strategy_choices": rep.get("strategy_choices"), "kind": rep.get("strategy_kind"),
            "search_seconds": rep["search_seconds"], "retrain_seconds": rep.get("retrain_seconds"),
            "wall_seconds": time.perf_counter() - t0, "result": rep["result"]}


def t_interval(xs) -> tuple[float, float, float]:
    """(mean, low, high) of the 95 % t-interval of the mean."""
    from scipy import stats
    xs = np.asarray(xs, dtype=float)
    m = float(xs.mean())
    if len(xs) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(xs) - 1) * xs.std(ddof=1) / np.sqrt(len(xs)))
    return m, m - h, m + h


def summarise(rows, names, budget) -> dict:
    out = {}
    for name in names:
        rs = [r for r in rows if r["strategy"] == name and r["test_accuracy"] is not None]
        if not rs:
            continue
        m, lo, hi = t_interval([r["test_accuracy"] for r in rs])
        ratio = [r["estimate_over_budget"] for r in rs]
        out[name] = {"n": len(rs), "kind": rs[0]["kind"], "mean": m, "ci": [lo, hi],
                     "estimate_over_budget_mean": float(np.mean(ratio)),
                     "estimate_over_budget_max": float(np.max(ratio)),
                     "search_seconds": float(np.mean([r["search_seconds"] for r in rs])),
                     "wall_seconds": float(np.mean([r["wall_seconds"] for r in rs]))}
    base = out.get("random")
    for name, s in out.items():
        comparable = base is not None and name != "random" and s["n"] > 1 and base["n"] > 1
        s["beats_random"] = bool(s["ci"][0] > base["ci"][1]) if comparable else None
    return out


def _print(summary, rows, total, machine) -> None:
    print(f"\n{'strategy':10s} {'kind':11s} {'n':>2s}  test accuracy (95 % CI)        "
          f"est/budget (max)  search s  wall s/run  beats random")
    for name, s in summary.items():
        beats = {None: "(baseline)" if name == "random" else "-", True: "YES",
                 False: "no (overlap)"}[s["beats_random"]]
        print(f"{name:10s} {s['kind'] or '?':11s} {s['n']:2d}  {s['mean']:.4f} "
              f"[{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]  {s['estimate_over_budget_mean']:.3f} "
              f"({s['estimate_over_budget_max']:.3f})     {s['search_seconds']:7.1f}  "
              f"{s['wall_seconds']:9.1f}  {beats}")
    winners = [n for n, s in summary.items() if s["beats_random"]]
    print(f"\nbeats random search with non-overlapping 95 % CIs: "
          f"{', '.join(winners) if winners else 'none'}")
    wall = "?" if total is None else f"{total / 60:.1f}"
    print(f"total wall {wall} min; estimate/budget is the latency model's (calibrated) "
          f"whole-network estimate, not an end-to-end measurement")
    if machine:
        print(f"machine: probe conv {machine['p50_ms']:.3f} ms median, p5 {machine['p5_ms']:.3f} "
              f"p95 {machine['p95_ms']:.3f} ms: moved {machine['spread']:.2f}x (p95/p5) over "
              f"{machine['n']} probes")


class Probe:
    """Times a fixed nnabla convolution (1x24x16x16, 3x3 to 72 channels; median of 10 calls)
    every ``every`` seconds in a thread, to show how the machine's speed moved."""

    def __init__(self, every: float = 2.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import nnabla as nn
        import nnabla.functions as F
        rng = np.random.RandomState(0)
        x = nn.Variable.from_numpy_array(rng.randn(1, 24, 16, 16).astype(np.float32))
        w = nn.Variable.from_numpy_array(rng.randn(72, 24, 3, 3).astype(np.float32))
        y = F.convolution(x, w, pad=(1, 1))
        while not self._stop.wait(self.every):
            ts = []
            for _ in range(10):
                t = time.perf_counter()
                y.forward()
                ts.append(time.perf_counter() - t)
            self.samples.append(1e3 * float(np.median(ts)))

    def movement(self) -> dict | None:
        from hwprof.latency.machine import movement
        m = movement(self.samples)
        return None if m is None else {**m, "n": len(self.samples)}


if __name__ == "__main__":
    sys.exit(main())
