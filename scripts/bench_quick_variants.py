#!/usr/bin/env python
"""Quick-protocol variants side by side: what a few seconds of measuring can repeat.

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_quick_variants.py \\
        [--space mbv2-cifar] [--rounds 6] [--variants 'name={json};...'] [--keep DIR]

Each variant is ``build-table --quick``'s settings (protocol.QUICK) with the JSON's keys
overridden; one round builds the space once with every variant in turn (each build its own
agent process, all at the first build's reference level), so every variant sees the same
machine. Per variant it prints the mean wall time of a build, the per-op CV of the row latency
over its builds (median and p90; the figure ``bench_foundation.py`` sets against NNablaNAS),
the same for the raw median, and the median within-build standard error of an op's latency
(1.2533 sd / sqrt(n) of its samples carried to the level, relative): when the CV over builds
does not shrink as the samples grow, what limits it is not the sample count. Every build prints
how far the machine moved while it ran (the reference's p95/p5).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

# sibling scripts (this folder is on sys.path when a script is run, as bench_protocol.py does)
from bench_foundation import cv, pct
from reestimate_passes import parse_estimators

from hwprof.latency.backends.agent.protocol import QUICK
from hwprof.latency.backends.agent.refstats import adjusted
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table

VARIANTS = ('quick={};no-warmup={"warmup_s": 0.0};'
            'samples-16-32={"min_samples": 16, "max_samples": 32, "time_cap_s": 0.2};'
            'samples-24-32={"min_samples": 24, "max_samples": 32, "time_cap_s": 0.2};'
            'instances-2={"instances": 2};primed={"prime_ms": 0.3};elasticity-0.5={"elasticity": 0.5}')


def within_se(samples, refs, level, e) -> float:
    """Relative standard error of one op's latency in one build, from its carried samples."""
    adj = adjusted(samples, refs, level, e)
    if len(adj) < 3:
        return float("nan")
    return 1.2533 * statistics.stdev(adj) / math.sqrt(len(adj)) / statistics.median(adj)


def summary(name: str, builds: list[dict]) -> str:
    sigs = sorted(set.intersection(*(set(b["latency"]) for b in builds)))
    cvs = [cv([b["latency"][s] for b in builds]) for s in sigs]
    raw = [cv([b["median"][s] for b in builds]) for s in sigs]
    ses = [x for b in builds for x in b["se"] if not math.isnan(x)]
    n = statistics.median(x for b in builds for x in b["n"])
    return (f"{name}: wall {statistics.mean(b['wall_s'] for b in builds):.2f} s "
            f"({statistics.mean(b['sampled_s'] for b in builds):.2f} s in samples), "
            f"{n:.0f} samples per op; per-op CV over {len(builds)} builds median "
            f"{100 * statistics.median(cvs):.2f} %, p90 {100 * pct(cvs, 0.9):.2f} % (raw median "
            f"{100 * statistics.median(raw):.2f} %); within-build standard error median "
            f"{100 * statistics.median(ses):.2f} %")


def one_build(specs, out: Path, protocol: dict, level):
    t0 = time.perf_counter()
    rep = build_table(specs, [get_backend("cpu")], out, quiet=True, log=lambda m: None,
                      protocol=protocol, passes=1, reference_level_ms=level)
    wall = time.perf_counter() - t0
    df = read_table(out).df
    ok = df[df["status"] == "ok"]
    b = {"wall_s": wall, "sampled_s": rep.sampled_s, "level": rep.reference_level_ms,
         "latency": dict(zip(ok["signature"], ok["latency_ms"])),
         "median": dict(zip(ok["signature"], ok["median_ms"])),
         "n": [int(v) for v in ok["n_samples"]],
         "se": [within_se(list(r.samples_ms), list(r.sample_ref_ms), float(r.ref_level_ms),
                          float(r.ref_elasticity)) for r in ok.itertuples()],
         "spread": (rep.machine or {}).get("spread", float("nan"))}
    return b


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--rounds", type=int, default=6, help="builds per variant (default 6)")
    ap.add_argument("--variants", default=VARIANTS,
                    help="name={protocol overrides as JSON};... on top of --quick's settings "
                         "(default: %(default)s)")
    ap.add_argument("--keep", metavar="DIR", help="keep the tables here (default: a temporary "
                    "folder)")
    args = ap.parse_args(argv)
    try:
        variants = parse_estimators(args.variants, what="variant")
    except ValueError as e:
        sys.exit(f"--variants: {e}")
    if args.rounds < 2:
        sys.exit("--rounds: at least 2 builds per variant are needed for a CV")
    specs = get_space(args.space).table_specs()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hwprof-quick-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"space {args.space}: {len(specs)} ops; {len(variants)} variants x {args.rounds} builds")
    level, builds = None, {k: [] for k in variants}
    for r in range(args.rounds):
        for name, over in variants.items():
            out = tmp / f"{name}-{r + 1}.parquet"
            if out.exists():
                sys.exit(f"{out} exists: --keep needs an empty folder")
            b = one_build(specs, out, {**QUICK, **over}, level)
            level = b["level"]
            builds[name].append(b)
            print(f"  round {r + 1} {name}: {b['wall_s']:.2f} s wall; the machine moved "
                  f"{b['spread']:.2f}x (reference p95/p5)", flush=True)
    spreads = [b["spread"] for bs in builds.values() for b in bs]
    print(f"\nthe machine moved {min(spreads):.2f}-{max(spreads):.2f}x within the builds")
    for name, bs in builds.items():
        print(summary(name, bs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
