"""Foundation benchmarks: repeatability, overhead, and cost vs NNablaNAS.

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_foundation.py \
        [--space mbv2-cifar] [--repeats 5] [--nnablanas-python /path/to/python]

1. Repeatability: the space's table built --repeats times in one run (fresh
   agent each; later builds adopt the first one's reference level, as
   `build-table --reference-from` does); share of ops whose row latencies
   (latency_ms) agree within +-5 % between builds 1 and 2, and the median
   |difference|. Each build prints how far the machine moved meanwhile.
2. Overhead: share of build wall time spent inside timed samples.
3. Cost vs NNablaNAS (when --nnablanas-python points at an environment with
   nnabla-nas==0.15.0): wall time of one pass over the same op set by both
   tools (NNablaNAS's Profiler, n_run=100, its defaults otherwise), the CV of
   each op's latency over --repeats independent passes, and ops reported as 0.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hwprof.latency.backends.agent.protocol import QUICK
from hwprof.latency.backends.bundle import local_agent_path
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table


def cv(xs):
    m = statistics.mean(xs)
    return statistics.stdev(xs) / m if m > 0 and len(xs) > 1 else float("nan")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def agreement(a, b, sigs):
    """Share of ops whose latencies in ``a`` and ``b`` agree within +-5 %, and every |diff|."""
    rel = [abs(a[s] - b[s]) / a[s] for s in sigs if a[s] > 0]
    return sum(r <= 0.05 for r in rel) / max(1, len(rel)), rel


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nnablanas-python", help="python of an env with nnabla-nas==0.15.0")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    ap.add_argument("--passes", type=int, default=1,
                    help="passes per hwprof build (build-table --passes); default 1")
    ap.add_argument("--keep", metavar="DIR",
                    help="keep hwprof's build tables (build1.parquet, ...) in DIR; default: a "
                         "temporary folder")
    ap.add_argument("--protocol", default="{}",
                    help='protocol overrides as JSON, e.g. \'{"target_ci": 0.015}\', or '
                         '"quick" (build-table --quick\'s settings)')
    args = ap.parse_args()
    protocol = dict(QUICK) if args.protocol == "quick" else json.loads(args.protocol)

    specs = get_space(args.space).table_specs()
    sigs = [s.signature for s in specs]
    print(f"space {args.space}: {len(specs)} ops; {args.repeats} hwprof builds")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hwprof-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    plans = tmp / "plans.json"
    plans.write_text(json.dumps({s.signature: s.plan() for s in specs}))
    builds, runs, nas_version = [], [], None
    # passes of the two tools alternate, so both see the same machine load
    level = elasticity = None
    for r in range(max(2, args.repeats)):
        out = tmp / f"build{r + 1}.parquet"
        if out.exists():
            sys.exit(f"{out} exists: --keep needs an empty folder")
        t0 = time.perf_counter()
        rep = build_table(specs, [get_backend("cpu")], out, quiet=True, log=lambda m: None,
                          protocol=protocol, passes=args.passes,
                          reference_level_ms=level, reference_elasticity=elasticity)
        wall = time.perf_counter() - t0
        level, elasticity = rep.reference_level_ms, rep.reference_elasticity
        df = read_table(out).df.set_index("signature")
        builds.append({"wall_s": wall, "sampled_s": rep.sampled_s, "errors": rep.errors,
                       "median": df["latency_ms"].to_dict(), "unstable": int(df["unstable"].sum()),
                       "machine": rep.machine})
        m = rep.machine or {}
        print(f"  hwprof build {r + 1}: {wall:.1f} s wall, {rep.sampled_s:.1f} s in timed samples, "
              f"{rep.errors} errors, {builds[-1]['unstable']} unstable rows; the machine moved "
              f"{m.get('spread', float('nan')):.2f}x (reference p95/p5)", flush=True)
        if args.nnablanas_python:
            script = Path(__file__).with_name("nnablanas_profile.py")
            p = subprocess.run([args.nnablanas_python, str(script), str(local_agent_path()),
                                str(plans), "1"], capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"nnabla-nas run failed:\n{p.stderr[-2000:]}")
            nas = json.loads(p.stdout)
            nas_version = nas["nnabla_nas"]
            runs += nas["runs"]
            print(f"  NNablaNAS pass {r + 1}: {runs[-1]['wall_s']:.1f} s wall", flush=True)

    within5, rel = agreement(builds[0]["median"], builds[1]["median"], sigs)
    figs = {"ops": len(specs), "repeatability_within_5pct": within5,
            "repeatability_median_abs_diff_pct": 100 * statistics.median(rel),
            "repeatability_p90_abs_diff_pct": 100 * pct(rel, 0.9)}
    figs["overhead_share_in_samples"] = (sum(x["sampled_s"] for x in builds)
                                         / sum(x["wall_s"] for x in builds))
    hw_cv = [cv([x["median"][s] for x in builds]) for s in sigs]
    figs["hwprof_wall_s_mean"] = statistics.mean(x["wall_s"] for x in builds)
    figs["hwprof_cv_median"] = statistics.median(hw_cv)
    figs["hwprof_cv_p90"] = pct(hw_cv, 0.9)
    figs["hwprof_zero_latencies"] = sum(v == 0 for x in builds for v in x["median"].values())
    print(f"\nrepeatability (builds 1 vs 2): {100 * within5:.1f} % of ops within +-5 %, "
          f"median |diff| {figs['repeatability_median_abs_diff_pct']:.2f} %, "
          f"p90 |diff| {figs['repeatability_p90_abs_diff_pct']:.2f} %")
    print(f"overhead: {100 * figs['overhead_share_in_samples']:.1f} % of build wall time is "
          f"inside timed samples")
    print(f"hwprof over {len(builds)} builds: wall {figs['hwprof_wall_s_mean']:.1f} s per pass, "
          f"per-op CV median {100 * figs['hwprof_cv_median']:.2f} %, "
          f"p90 {100 * figs['hwprof_cv_p90']:.2f} %, zero latencies {figs['hwprof_zero_latencies']}")

    if args.nnablanas_python:
        zeros = sum(v == 0 for r in runs for v in r["latency_ms"].values())
        nas_cv = [cv([r["latency_ms"][s] for r in runs]) for s in sigs
                  if all(r["latency_ms"][s] > 0 for r in runs)]
        figs.update({"nnablanas_version": nas_version,
                     "nnablanas_wall_s_mean": statistics.mean(r["wall_s"] for r in runs),
                     "nnablanas_cv_median": statistics.median(nas_cv),
                     "nnablanas_cv_p90": pct(nas_cv, 0.9), "nnablanas_zero_latencies": zeros})
        figs["speedup"] = figs["nnablanas_wall_s_mean"] / figs["hwprof_wall_s_mean"]
        nas5, nas_rel = agreement(runs[0]["latency_ms"], runs[1]["latency_ms"], sigs)
        figs["nnablanas_repeatability_within_5pct"] = nas5
        figs["nnablanas_repeatability_median_abs_diff_pct"] = 100 * statistics.median(nas_rel)
        ratio = [statistics.median(r["latency_ms"][s] for r in runs)
                 / statistics.median(x["median"][s] for x in builds) for s in sigs
                 if all(r["latency_ms"][s] > 0 for r in runs)]
        figs["nnablanas_over_hwprof_latency_median_ratio"] = statistics.median(ratio)
        relu6 = [s.signature for s in specs if s.kind == "relu6"]
        if relu6:
            figs["relu6_nnablanas_over_hwprof"] = statistics.median(
                statistics.median(r["latency_ms"][s] for r in runs)
                / statistics.median(x["median"][s] for x in builds) for s in relu6)
        print(f"\nNNablaNAS {nas_version} Profiler (n_run=100) over {len(runs)} passes: "
              f"wall {figs['nnablanas_wall_s_mean']:.1f} s per pass, per-op CV median "
              f"{100 * figs['nnablanas_cv_median']:.2f} %, p90 {100 * figs['nnablanas_cv_p90']:.2f} %, "
              f"zero latencies {zeros}; passes 1 vs 2: {100 * nas5:.1f} % of ops within +-5 %, "
              f"median |diff| {figs['nnablanas_repeatability_median_abs_diff_pct']:.2f} %")
        print(f"hwprof is {figs['speedup']:.2f}x faster per pass; NNablaNAS/hwprof latency median "
              f"ratio {figs['nnablanas_over_hwprof_latency_median_ratio']:.2f}"
              + (f"; on relu6 {figs['relu6_nnablanas_over_hwprof']:.2f} (it times zeros)"
                 if relu6 else ""))
        as_good = within5 >= nas5 and figs["hwprof_cv_median"] <= figs["nnablanas_cv_median"]
        print(f"cost goal (>= 5x faster, repeatability at least NNablaNAS's): "
              f"{figs['speedup']:.2f}x, repeatability {'as good or better' if as_good else 'WORSE'}"
              f" -> {'met' if figs['speedup'] >= 5 and as_good else 'not met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figs, indent=2))


if __name__ == "__main__":
    main()
