#!/usr/bin/env python
"""How a network's latency holds when the table's level lies outside the machine's states.

Measures one random architecture of a space end to end ``--times`` times over ``--gap``
seconds (as ``bench_protocol.py`` does, against ``--table``'s reference level), keeps every
session's paired samples, and re-estimates all of them at a range of levels, from inside the
states the machine visited to 25 % below the fastest: with the elasticity fitted on each
session's samples (agent v7's fallback when too few samples are near the level) and as the
ratio to the reference (agent v8's). Prints the spread (max/min over the sessions) per level
and rule, and how far the machine moved. Run under the benchmark lock:

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_far_level.py \\
      --table tables/cpu-mbv2-cifar.parquet --times 10 --gap 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

RULES = ("fitted", "ratio")


def measure(space_name: str, table: str, times: int, gap_s: float) -> list[dict]:
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs, random_choices
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table
    space = get_space(space_name)
    choice = random_choices(space, 1, seed=7)
    meta = read_table(table).meta
    start, runs = time.time(), []
    for k in range(times):
        wait = start + k * gap_s / max(1, times) - time.time()
        if wait > 0:
            time.sleep(wait)
        r = measure_archs(space, choice, get_backend("cpu"), table_meta=meta)[0][0]
        runs.append({"samples": [float(x) for x in r["samples_ms"]],
                     "refs": [float(x) for x in r["sample_ref_ms"]], "machine": r["machine"]})
        m = r["machine"] or {}
        print(f"  session {k + 1}/{times} at {time.time() - start:.0f} s: {r['latency_ms']:.3f} ms "
              f"at the table's level; reference p5 {m.get('p5_ms', 0):.3f}, "
              f"p95 {m.get('p95_ms', 0):.3f} ms", flush=True)
    return runs


MIN_NEAR = 8  # refstats.estimate's min_near: fewer samples near the level are carried from far


def _far(r: dict, level: float) -> bool:
    from hwprof.latency.backends.agent import refstats
    return refstats.estimate(r["samples"], r["refs"], level)["ref_near"] < MIN_NEAR


def spread_at(runs: list[dict], level: float, rule: str) -> float:
    """Spread of the sessions' latencies at ``level``: carried as ratios (agent v8's rule far
    from the level), or with each session's fitted elasticity where too few samples are near
    the level (agent v7's rule; near it both use the fitted one)."""
    from hwprof.latency.backends.agent import refstats
    lat = []
    for r in runs:
        fixed = None
        if rule == "ratio":
            fixed = 1.0
        elif _far(r, level):
            fixed = refstats.elasticity(r["samples"], r["refs"])
        lat.append(refstats.estimate(r["samples"], r["refs"], level,
                                     fixed_elasticity=fixed)["latency_ms"])
    return max(lat) / min(lat)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", required=True, help="the table whose level the sessions use")
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--times", type=int, default=10)
    ap.add_argument("--gap", type=float, default=300.0, help="seconds the sessions spread over")
    args = ap.parse_args(argv)
    runs = measure(args.space, args.table, args.times, args.gap)
    refs = sorted(x for r in runs for x in r["refs"])
    p5, p50, p95 = (refs[int(q * (len(refs) - 1))] for q in (0.05, 0.5, 0.95))
    print(f"machine: reference p5 {p5:.3f}, median {p50:.3f}, p95 {p95:.3f} ms "
          f"({p95 / p5:.2f}x) over all sessions")
    levels = [p50, statistics.mean([p5, p50]), p5, p5 / 1.1, p5 / 1.15, p5 / 1.2, p5 / 1.25]
    for level in levels:
        near = sum(not _far(r, level) for r in runs)
        figs = "; ".join(f"{rule} {spread_at(runs, level, rule):.3f}" for rule in RULES)
        print(f"level {level:.3f} ms ({level / p5:.2f} x p5; {near}/{len(runs)} sessions with "
              f"8+ samples near it): spread {figs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
