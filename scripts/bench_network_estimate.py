#!/usr/bin/env python
"""Network-level benchmark: calibrated estimates vs end-to-end measurement.

1. Measures (or reuses) the lookup table of a space (default mbv2-cifar).
2. Calibrates: measures --n-calib random architectures end to end (seed A) and
   fits end_to_end = slope * sum + intercept (stored in the table, as
   `hwprof calibrate` does).
3. Evaluates on --n-eval other random architectures (seed B) measured end to
   end: share within +-10 % and Spearman rank correlation of the calibrated
   estimate, and of the plain (uncalibrated) sum of ops.
With --predictor, the same again with every op of a kind the predictor
knows (the MBConv blocks, convolutions) taken from the predictor instead of
the table: the network estimate from generalised ops.

Goal (issue 3): >= 95 % within +-10 % and Spearman >= 0.95 over 30 archs.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_network_estimate.py \
      --table /tmp/bench/mbv2-cifar.parquet --n-calib 8 --n-eval 30 --out-dir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _accuracy(pred, true):
    import numpy as np
    from scipy.stats import spearmanr

    from hwprof.latency.predictors.evaluate import accuracy
    acc = accuracy(pred, true)
    acc["spearman"] = float(spearmanr(np.asarray(pred), np.asarray(true)).statistic)
    return acc


def _line(name, acc):
    return (f"{name:<48} RMSPE {100 * acc['rmspe']:5.1f} %   ±5 %: {100 * acc['within_5']:5.1f} %"
            f"   ±10 %: {100 * acc['within_10']:5.1f} %   Spearman {acc['spearman']:.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True, help="the space's table (built if missing)")
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--predictor", help="also estimate with ops of known kinds predicted")
    ap.add_argument("--n-calib", type=int, default=8)
    ap.add_argument("--n-eval", type=int, default=30)
    ap.add_argument("--seed-calib", type=int, default=0)
    ap.add_argument("--seed-eval", type=int, default=1)
    ap.add_argument("--time-cap", type=float, default=None,
                    help="protocol time cap (s) for the ops table and the networks "
                         "(default: the protocol's 2 s)")
    ap.add_argument("--no-store", action="store_true", help="do not store the calibration")
    ap.add_argument("--out-dir", default=None, help="write bench_network.json here")
    args = ap.parse_args(argv)

    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table
    from hwprof.latency.endtoend import measure_archs, random_choices
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.model import LatencyModel
    from hwprof.latency.predictors.calibration import (
        CalibrationSet,
        fit_calibration,
        store_in_meta,
    )
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table, write_table

    t0 = time.time()
    space = get_space(args.space)
    protocol = {"time_cap_s": args.time_cap} if args.time_cap else {}
    backend = get_backend("cpu")
    rep = build_table(space.table_specs(), [backend], args.table, protocol=protocol, quiet=True,
                      log=lambda m: None)
    print(f"table {args.table}: measured {rep.measured}, reused {rep.skipped}", file=sys.stderr)
    model = load_latency_model(args.table, calibrate=False)

    total = space.describe()["n_architectures"]
    calib = random_choices(space, args.n_calib, args.seed_calib)
    taken = {tuple(c) for c in calib}
    evals = [c for c in random_choices(space, min(total, args.n_eval + args.n_calib),
                                       args.seed_eval) if tuple(c) not in taken][: args.n_eval]

    def progress(what):
        def cb(i, spec, res):
            print(f"  {what} {i + 1}: {res['median_ms']:.3f} ms", file=sys.stderr)
        return cb

    print(f"measuring {len(calib)} calibration architectures end to end", file=sys.stderr)
    cal_res, hello = measure_archs(space, calib, backend, protocol=protocol,
                                   seed=args.seed_calib, progress=progress("calib"))
    cal_sums = [model.estimate_arch(space, c)["sum_ms"] for c in calib]
    cal = fit_calibration(cal_sums, [r["median_ms"] for r in cal_res], space=space.name,
                          stem_signature=space.arch_specs(calib[0])[0].signature,
                          choices=calib, device_fingerprint=hello.get("fingerprint_id"))
    print(f"calibration: end_to_end = {cal.slope:.4f} * sum {cal.intercept:+.4f} ms",
          file=sys.stderr)
    if not args.no_store:
        table = read_table(args.table)
        store_in_meta(table.meta, cal)
        write_table(args.table, table)

    print(f"measuring {len(evals)} evaluation architectures end to end", file=sys.stderr)
    ev_res, _ = measure_archs(space, evals, backend, protocol=protocol, seed=args.seed_eval,
                              progress=progress("eval"))
    measured = [r["median_ms"] for r in ev_res]
    model.calibration = CalibrationSet([cal])
    est = [model.estimate_arch(space, c) for c in evals]
    rows = {"sum_ms": [e["sum_ms"] for e in est], "estimate_ms": [e["estimate_ms"] for e in est]}
    results = {"table sum (uncalibrated)": _accuracy(rows["sum_ms"], measured),
               "table sum, calibrated": _accuracy(rows["estimate_ms"], measured)}

    if args.predictor:
        from hwprof.latency.predictors.persist import load_predictor
        pred = load_predictor(args.predictor)
        tab = read_table(args.table)
        tab.df = tab.df[~tab.df["kind"].isin(pred.kinds)]
        pmodel = LatencyModel(tab, pred)
        p_cal_sums = [pmodel.estimate_arch(space, c)["sum_ms"] for c in calib]
        p_cal = fit_calibration(p_cal_sums, [r["median_ms"] for r in cal_res], space=space.name,
                                stem_signature=cal.stem_signature)
        pmodel.calibration = CalibrationSet([p_cal])
        p_est = [pmodel.estimate_arch(space, c) for c in evals]
        rows["pred_sum_ms"] = [e["sum_ms"] for e in p_est]
        rows["pred_estimate_ms"] = [e["estimate_ms"] for e in p_est]
        results[f"predicted {'/'.join(pred.kinds)}, uncalibrated"] = _accuracy(
            rows["pred_sum_ms"], measured)
        results[f"predicted {'/'.join(pred.kinds)}, calibrated"] = _accuracy(
            rows["pred_estimate_ms"], measured)

    print()
    print(f"{space.name}: {len(evals)} random architectures measured end to end "
          f"({min(measured):.2f}..{max(measured):.2f} ms), calibration from {len(calib)} others "
          f"(slope {cal.slope:.4f}, intercept {cal.intercept:+.4f} ms)")
    for name, acc in results.items():
        print(_line(name, acc))
    main_acc = results["table sum, calibrated"]
    ok = main_acc["within_10"] >= 0.95 and main_acc["spearman"] >= 0.95
    print(f"goal (calibrated: >= 95 % within ±10 %, Spearman >= 0.95): "
          f"{'MET' if ok else 'NOT MET'}")
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report = {"space": space.name, "n_calib": len(calib), "n_eval": len(evals),
                  "calibration": cal.to_dict(), "results": results, "measured_ms": measured,
                  "archs": evals, **rows, "time_cap_s": args.time_cap,
                  "elapsed_s": time.time() - t0}
        (out / "bench_network.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {out}/bench_network.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
