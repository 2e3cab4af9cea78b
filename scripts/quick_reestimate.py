#!/usr/bin/env python
"""Quick builds kept whole, then derived again offline: what limits --quick's repeatability.

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/quick_reestimate.py \\
        [--space mbv2-cifar] [--rounds 8] [--keep DIR] [--from DIR]

Each round opens a fresh agent with ``build-table --quick``'s settings and measures the
space's ops as one group (as a quick build does), at the first round's reference level; the
agent's whole answer is kept (every sample, its time, and the reference's full timeline, which
a table thins to 0.5-s points) as DIR/rN.json. Then every round is derived again under several
rules, and per rule the per-op CV of the latency over the rounds is printed (median and p90),
with the median within-round standard error (1.2533 sd / sqrt(n) of an op's carried samples):
when the two are alike, what limits the CV is the samples' own scatter, not the reference.
``--from DIR`` derives rounds kept by an earlier run without measuring.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import statistics
import sys
import time
from pathlib import Path

# sibling scripts (this folder is on sys.path when a script is run)
from bench_foundation import cv, pct
from bench_quick_variants import within_se

from hwprof.latency.backends.agent import refstats
from hwprof.latency.backends.agent.protocol import QUICK
from hwprof.latency.machine import movement


def capture(space: str, rounds: int, out: Path) -> None:
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.spaces import get_space
    specs = get_space(space).table_specs()
    level = None
    for r in range(rounds):
        t0 = time.perf_counter()
        sess = get_backend("cpu").open({"runtime": "nnabla", "device": "cpu", "seed": r,
                                        "protocol": dict(QUICK)})
        try:
            ans = sess.measure_group("g", [(s.signature, s.plan()) for s in specs],
                                     level_ms=level, seed=r)
        finally:
            sess.close()
        refs = [v for _, v in ans["timeline"]]
        level = level or refstats.level_of(refs)
        ans.update(level_ms=level, wall_s=time.perf_counter() - t0)
        (out / f"r{r}.json").write_text(json.dumps(ans))
        print(f"  round {r + 1}: {ans['wall_s']:.2f} s, {len(refs)} reference samples; the "
              f"machine moved {movement(refs)['spread']:.3f}x (reference p95/p5)", flush=True)


def smoothed(timeline, at_s, half_s: float) -> list[float]:
    """The reference's median within +-half_s of each time in ``at_s``."""
    ts = [t for t, _ in timeline]
    out = []
    for a in at_s:
        lo, hi = bisect.bisect_left(ts, a - half_s), bisect.bisect_right(ts, a + half_s)
        vals = [v for _, v in timeline[lo:hi]] or [timeline[min(lo, len(ts) - 1)][1]]
        out.append(statistics.median(vals))
    return out


def trimmed(xs, share: float) -> float:
    xs = sorted(xs)
    k = int(share * len(xs))
    return statistics.mean(xs[k:len(xs) - k] or xs)


def rules(level: float):
    """name -> f(result, timeline): the op's latency in one round."""
    def carried(e, refs_of=lambda r, tl: r["refs_ms"], stat=None):
        def f(r, tl):
            y, x = r["samples_ms"], refs_of(r, tl)
            if stat is None:
                return refstats.estimate(y, x, level, fixed_elasticity=e)["latency_ms"]
            return stat(refstats.adjusted(y, x, level, e))
        return f
    return {"as built (elasticity 1)": carried(1.0),
            "reference median +-50 ms": carried(1.0, lambda r, tl: smoothed(tl, r["at_s"], 0.05)),
            "elasticity 0.5": carried(0.5),
            "trimmed mean 20 %": carried(1.0, stat=lambda a: trimmed(a, 0.2)),
            "raw median": lambda r, tl: statistics.median(r["samples_ms"])}


def derive(rounds: list[dict]) -> None:
    level = rounds[0]["level_ms"]
    ok = [{r["id"]: r for r in a["results"] if r["status"] == "ok"} for a in rounds]
    ids = sorted(set.intersection(*(set(o) for o in ok)))
    for name, f in rules(level).items():
        cvs = [cv([f(o[i], a["timeline"]) for o, a in zip(ok, rounds)]) for i in ids]
        print(f"  {name:26s} per-op CV over {len(rounds)} rounds median "
              f"{100 * statistics.median(cvs):.2f} %, p90 {100 * pct(cvs, 0.9):.2f} %")
    se = [within_se(o[i]["samples_ms"], o[i]["refs_ms"], level, 1.0) for o in ok for i in ids]
    se = [x for x in se if not math.isnan(x)]  # ops with fewer than 3 samples
    print(f"  within-round standard error of an op's latency (as built): median "
          f"{100 * statistics.median(se):.2f} %")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--rounds", type=int, default=8, help="quick builds (default 8)")
    ap.add_argument("--keep", metavar="DIR", help="where the rounds are kept (an empty folder)")
    ap.add_argument("--from", dest="src", metavar="DIR", help="derive the rounds kept here")
    args = ap.parse_args(argv)
    if args.src:
        paths = sorted(Path(args.src).glob("r*.json"), key=lambda p: int(p.stem[1:]))
        if len(paths) < 2:
            sys.exit(f"--from: {args.src} holds {len(paths)} kept round(s); 2 or more are needed")
    else:
        if args.rounds < 2 or not args.keep:
            sys.exit("--keep DIR and --rounds 2 or more are needed to measure")
        out = Path(args.keep)
        out.mkdir(parents=True, exist_ok=True)
        if any(out.glob("r*.json")):
            sys.exit(f"--keep: {out} already holds rounds; give an empty folder")
        print(f"{args.rounds} quick rounds of {args.space}, each a fresh agent")
        capture(args.space, args.rounds, out)
        paths = sorted(out.glob("r*.json"), key=lambda p: int(p.stem[1:]))
    derive([json.loads(p.read_text()) for p in paths])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
