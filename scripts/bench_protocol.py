#!/usr/bin/env python
"""Does a measurement hold when the machine changes speed? (issue: the measurement protocol)

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_protocol.py \
        [--spaces mbv2-cifar,mbv2-mini] [--gap 600] [--e2e-times 10] [--archs 20] \
        [--out-dir /tmp/bench-protocol]

1. Repeatability: every space's table is built (A), then again at least --gap
   seconds later (B, a new table that adopts A's reference level with
   --reference-from, and B', fully independent with a level of its own).
   Share of ops whose row latency (``latency_ms``, what search uses) agrees
   within +-5 %, beside the raw median of the old protocol's statistic.
   At the very end, once everything measured is written, the same passes are
   derived again under other estimators (fixed or pooled elasticities,
   near-level samples chosen by their neighbours' reference;
   scripts/reestimate_passes.py), side by side on the very same samples.
2. Whole networks: during the gap, one random architecture of the first space
   is measured end to end --e2e-times times (spread evenly over the gap) at
   table A's reference level: max/min of those latencies.
3. Table sum vs end to end: --archs random architectures per space measured
   end to end at the table's level, against the plain sum of their ops and
   against the calibrated estimate (calibration fitted on --calib-archs other
   architectures): share within +-5 % and +-10 %.

Every figure is printed with how far the machine moved while it was measured
(the reference op's p95/p5 spread) and the raw figures go to OUT/bench.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# a sibling script (scripts/ is on the path when run as a script), imported now so that a run
# analyses its tables with the code it measured them with, even if the file changes meanwhile
import reestimate_passes


def _machine(m: dict | None) -> str:
    if not m:
        return "machine: n/a"
    return (f"machine moved {m['spread']:.2f}x (reference p5 {m['p5_ms']:.4f} ms, "
            f"p95 {m['p95_ms']:.4f} ms)")


# variant keys that are build options rather than agent protocol settings
BUILD_KEYS = ("passes", "extra_passes", "max_pass_se", "extra_context")


def _build(space, out, level=None, protocol=None, elasticity=None):
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table
    from hwprof.latency.spaces import get_space
    out = Path(out)
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    from hwprof.latency.backends.agent.protocol import BUILD_EXTRA_PASSES, BUILD_PASSES
    protocol = dict(protocol or {})
    build = {"passes": BUILD_PASSES, "extra_passes": BUILD_EXTRA_PASSES,
             **{k: protocol.pop(k) for k in BUILD_KEYS if k in protocol}}
    rep = build_table(get_space(space).table_specs(), [get_backend("cpu")], out, quiet=True,
                      log=lambda m: None, reference_level_ms=level, protocol=protocol or None,
                      reference_elasticity=elasticity,
                      **build)
    wall = time.perf_counter() - t0
    extra = f", {rep.extra_ops} extra op passes" if rep.extra_ops else ""
    print(f"  {space}: built {out.name} in {wall:.1f} s{extra}, level "
          f"{rep.reference_level_ms:.4f} ms; {_machine(rep.machine)}", flush=True)
    return {"path": str(out), "wall_s": wall, "level_ms": rep.reference_level_ms,
            "elasticity": rep.reference_elasticity,
            "machine": rep.machine, "at": time.time(), "extra_ops": rep.extra_ops}


def _agreement(a_path, b_path, col):
    from hwprof.latency.table import read_table
    a = read_table(a_path).df.set_index("signature")
    b = read_table(b_path).df.set_index("signature").loc[a.index]
    r = (b[col] / a[col]).to_numpy(dtype=float)
    d = np.abs(r - 1)
    return {"within_5": float(np.mean(d <= 0.05)), "within_10": float(np.mean(d <= 0.10)),
            "median_abs_diff": float(np.median(d)), "p90_abs_diff": float(np.quantile(d, 0.9)),
            "max_abs_diff": float(d.max()), "median_ratio": float(np.median(r)), "ops": len(r)}


def _measure(space_name, choices, table_path, seed=0):
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table
    res, _ = measure_archs(get_space(space_name), choices, get_backend("cpu"), seed=seed,
                           table_meta=read_table(table_path).meta)
    return res


def e2e_over_time(space, table, times, gap_s):
    from hwprof.latency.endtoend import random_choices
    from hwprof.latency.spaces import get_space
    choice = random_choices(get_space(space), 1, seed=7)
    start, out = time.time(), []
    for k in range(times):
        wait = start + k * gap_s / max(1, times) - time.time()
        if wait > 0:
            time.sleep(wait)
        r = _measure(space, choice, table)[0]
        out.append({"latency_ms": r["latency_ms"], "median_ms": r["median_ms"],
                    "at": time.time() - start, "machine": r["machine"]})
        print(f"    e2e {k + 1}/{times} at {out[-1]['at']:.0f} s: {r['latency_ms']:.3f} ms "
              f"(raw median {r['median_ms']:.3f}); {_machine(r['machine'])}", flush=True)
    lat = [o["latency_ms"] for o in out]
    raw = [o["median_ms"] for o in out]
    return {"choices": choice[0], "runs": out, "spread": max(lat) / min(lat),
            "raw_spread": max(raw) / min(raw)}


def sum_vs_e2e(space_name, table, n, n_calib):
    from hwprof.latency.endtoend import random_choices
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.predictors.calibration import fit_calibration
    from hwprof.latency.spaces import get_space
    space = get_space(space_name)
    model = load_latency_model(table, None, calibrate=False)
    archs = random_choices(space, n + n_calib, seed=11)
    calib, evals = archs[:n_calib], archs[n_calib:]
    res = _measure(space_name, archs, table)
    meas = np.array([r["latency_ms"] for r in res])
    sums = np.array([model.estimate_arch(space, c)["sum_ms"] for c in archs])
    cal = fit_calibration(list(sums[:n_calib]), list(meas[:n_calib]), space=space.name,
                          stem_signature=space.arch_specs(calib[0])[0].signature, choices=calib)
    calibrated = cal.slope * sums[n_calib:] + cal.intercept
    out = {"machine": res[0]["machine"], "slope": cal.slope, "intercept": cal.intercept}
    for name, est in (("plain", sums[n_calib:]), ("calibrated", calibrated)):
        d = np.abs(est / meas[n_calib:] - 1)
        out[name] = {"within_5": float(np.mean(d <= 0.05)), "within_10": float(np.mean(d <= 0.10)),
                     "median_abs_diff": float(np.median(d)),
                     "median_ratio": float(np.median(est / meas[n_calib:]))}
    print(f"  {space_name}: {len(evals)} archs, plain sum within +-5 % "
          f"{100 * out['plain']['within_5']:.0f} %, +-10 % {100 * out['plain']['within_10']:.0f} % "
          f"(median sum/measured {out['plain']['median_ratio']:.3f}); calibrated on {n_calib} "
          f"others: +-5 % {100 * out['calibrated']['within_5']:.0f} %, +-10 % "
          f"{100 * out['calibrated']['within_10']:.0f} %; {_machine(out['machine'])}", flush=True)
    return out


def _variants(text):
    """``name=JSON;name=JSON`` -> {name: protocol overrides}; none given: one unnamed variant."""
    if not text:
        return {"": None}
    out = {}
    for part in text.split(";"):
        key, _, js = part.partition("=")
        out[key.strip()] = json.loads(js) if js.strip() else None
    return out


def _repeat(s, v, a, name, protocol, own_level=True):
    """Build B (and B') of space ``s`` under variant ``v`` and compare with A."""
    b = _build(s, name(s, v, "B"), level=a["level_ms"], protocol=protocol,
               elasticity=a.get("elasticity"))
    rep = {"variant": v, "protocol": protocol, "A": a, "B": b,
           "minutes_apart": (b["at"] - a["at"]) / 60,
           "latency": _agreement(a["path"], b["path"], "latency_ms"),
           "raw_median": _agreement(a["path"], b["path"], "median_ms")}
    own = ""
    if own_level:
        b2 = _build(s, name(s, v, "B2"), protocol=protocol)
        rep["B_own_level"] = b2
        rep["latency_own_level"] = _agreement(a["path"], b2["path"], "latency_ms")
        own = (f"; with B's own level {100 * rep['latency_own_level']['within_5']:.1f} % (levels "
               f"{a['level_ms']:.4f} vs {b2['level_ms']:.4f})")
    lat = rep["latency"]
    print(f"  {s}{' [' + v + ']' if v else ''}: {rep['minutes_apart']:.1f} min apart; latency_ms "
          f"within +-5 %: {100 * lat['within_5']:.1f} % of {lat['ops']} (median |diff| "
          f"{100 * lat['median_abs_diff']:.2f} %, p90 {100 * lat['p90_abs_diff']:.2f} %, max "
          f"{100 * lat['max_abs_diff']:.1f} %){own}; raw median_ms "
          f"{100 * rep['raw_median']['within_5']:.1f} %; builds {a['wall_s']:.0f} s / "
          f"{b['wall_s']:.0f} s", flush=True)
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", default="mbv2-cifar,mbv2-mini")
    ap.add_argument("--gap", type=float, default=600.0, help="seconds between builds A and B")
    ap.add_argument("--e2e-times", type=int, default=10)
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--calib-archs", type=int, default=8)
    ap.add_argument("--out-dir", default="/tmp/bench-protocol")
    ap.add_argument("--variants", default="",
                    help="compare protocols side by side: 'name=JSON;name=JSON' (agent protocol "
                         "overrides, e.g. 'one={\"instances\": 1};two={}', and the build options "
                         f"{', '.join(BUILD_KEYS)}); their A builds alternate, then their B "
                         "builds")
    ap.add_argument("--no-own-level", action="store_true",
                    help="skip B' (the independent build at a level of its own)")
    ap.add_argument("--sum-only", action="store_true",
                    help="only part 4, on the A tables already in --out-dir")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spaces = args.spaces.split(",")
    if args.sum_only:
        figs = {s: sum_vs_e2e(s, str(out / f"{s}-A.parquet"), args.archs, args.calib_archs)
                for s in spaces}
        (out / "bench_sum.json").write_text(json.dumps(figs, indent=1, default=str))
        return
    figs: dict = {"spaces": spaces, "gap_s": args.gap}

    variants = _variants(args.variants)
    runs = [(s, v) for s in spaces for v in variants]

    def name(s, v, which):
        return out / f"{s}{'-' + v if v else ''}-{which}.parquet"
    print("1. builds A" + (f" (protocol variants {', '.join(variants)}, alternating)"
                           if len(variants) > 1 else ""), flush=True)
    a = {(s, v): _build(s, name(s, v, "A"), protocol=variants[v]) for s, v in runs}
    first = a[runs[0]]
    if args.e2e_times > 0:
        print(f"2. the same architecture of {spaces[0]} end to end, {args.e2e_times} times over "
              f"{args.gap:.0f} s", flush=True)
        figs["e2e"] = e2e_over_time(spaces[0], first["path"], args.e2e_times, args.gap)
        print(f"  spread max/min {figs['e2e']['spread']:.3f} (raw medians "
              f"{figs['e2e']['raw_spread']:.3f})", flush=True)
    time.sleep(max(0.0, first["at"] + args.gap - time.time()))  # each B >= gap after its A
    print("3. builds B (A's reference level)" + ("" if args.no_own_level else
                                                " and B' (a level of its own)"), flush=True)
    figs["repeat"] = {}
    for s, v in runs:
        figs["repeat"][f"{s}{' ' + v if v else ''}"] = _repeat(
            s, v, a[(s, v)], name, variants[v], own_level=not args.no_own_level)
    (out / "bench.json").write_text(json.dumps(figs, indent=1, default=str))
    print("4. table sum vs end to end", flush=True)
    figs["sum_vs_e2e"] = {s: sum_vs_e2e(s, a[(s, next(iter(variants)))]["path"], args.archs,
                                        args.calib_archs)
                          for s in spaces} if args.archs > 0 else {}
    (out / "bench.json").write_text(json.dumps(figs, indent=1, default=str))
    print(f"figures in {out / 'bench.json'}")
    # offline, after everything measured is written: it cannot lose a measurement
    print("5. the same A and B passes derived again under other estimators "
          "(scripts/reestimate_passes.py)", flush=True)
    reestimate_passes.main([str(out)])


if __name__ == "__main__":
    main()
