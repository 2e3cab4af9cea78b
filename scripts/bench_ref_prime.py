"""Whole networks against the table's plain sum, with the reference op primed 0, 1, 2 times.

A network session carries each network to the table's reference level by the
reference op timed right after it. After a long network the reference reads
cold (its data evicted), so the machine looks slower than it is and the network
is carried too far down. This measures the same random architectures with
``ref_prime_calls`` 0, 1, 2 ... (untimed reference calls before each timed
one), one session per setting, the settings alternating --rounds times, and
prints per session the table's sum / measured (median and range over the
networks), the wall time of the session and how far the machine moved in it.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_ref_prime.py \\
      --table T --space mbv2-cifar [--archs 6] [--calls 0,1,2] [--rounds 2] [--min-span 8]
"""

from __future__ import annotations

import argparse
import statistics
import time


def session(space, choices, table_meta, calls: int, min_span: float) -> tuple[list, float]:
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs
    t = time.time()
    res, _ = measure_archs(space, choices, get_backend("cpu"), table_meta=table_meta,
                           protocol={"min_span_s": min_span, "ref_prime_calls": calls})
    return res, time.time() - t


def line(calls: int, res: list, sums: list, wall: float) -> str:
    m = res[0].get("machine") or {}
    ratios = [s / r["latency_ms"] for s, r in zip(sums, res)]
    return (f"ref_prime_calls {calls}: sum/measured median {statistics.median(ratios):.3f} "
            f"({min(ratios):.3f}-{max(ratios):.3f}); session {wall:.1f} s; reference p5 "
            f"{m.get('p5_ms', 0):.3f} p95 {m.get('p95_ms', 0):.3f} ms (machine moved "
            f"{m.get('spread', 0):.2f}x); networks "
            + " ".join(f"{r['latency_ms']:.3f}" for r in res))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True, help="the space's table (its level and its sums)")
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--archs", type=int, default=6, help="random architectures (default 6)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--calls", default="0,1,2", help="ref_prime_calls settings to compare")
    ap.add_argument("--rounds", type=int, default=2, help="times the settings alternate")
    ap.add_argument("--min-span", type=float, default=8.0, help="seconds (the search's span)")
    a = ap.parse_args(argv)
    from hwprof.latency.endtoend import random_choices
    from hwprof.latency.model import LatencyModel
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table
    space, table = get_space(a.space), read_table(a.table)
    model = LatencyModel(table)
    choices = random_choices(space, a.archs, seed=a.seed)
    sums = [float(model.estimate_arch(space, c)["sum_ms"]) for c in choices]
    print("plain sums (ms): " + " ".join(f"{s:.3f}" for s in sums), flush=True)
    settings = [int(c) for c in a.calls.split(",")]
    for _ in range(a.rounds):
        for calls in settings:
            res, wall = session(space, choices, table.meta, calls, a.min_span)
            print(line(calls, res, sums, wall), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
