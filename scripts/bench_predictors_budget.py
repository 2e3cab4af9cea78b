#!/usr/bin/env python
"""Issue 17's predictor benchmark, on tables measured beforehand (nothing measured here).

Reads the tables the README's commands build (``hwprof build-table``: budgeted
adaptive training tables, a multi-pass held-out table of sampled configs, the
real-CNN layers table, and two tables of a second device: a few ops for the
transfer and a full one to judge it), fits and reports:

1. held-out sampled configs: the share within +-10 % per kind, beside the
   labels' own noise floor (each op's passes against each other) and the
   measuring minutes each training table took (from the builds' JSON reports);
2. held-out real-CNN layers (:mod:`hwprof.latency.predictors.realnets`): the
   same, per kind, and per network the layer sum with its interval;
3. transfer: ``fit --transfer-from`` on the second device's few rows, judged on
   its full table (within +-10 %, Spearman), beside the untouched predictor;
4. intervals: how many held-out ops fall inside their 90 % interval, and how
   many networks' layer sums inside theirs (and inside the alternatives:
   sum of per-op bounds, quadrature).

Every figure is printed with how far the machine moved while its table was
measured (the reference op's p95/p5 spread). Refitting needs no lock; the
measuring commands do (see the README).

  .venv/bin/python scripts/bench_predictors_budget.py --dir /tmp/pred
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = ("conv2d", "dwconv2d", "mbconv")


def _table(path):
    from hwprof.latency.table import read_table
    return read_table(path)


def _movement(table) -> str:
    from hwprof.latency.machine import combined_movement
    m = combined_movement(table.meta.get("timelines", []))
    return f"machine {m['spread']:.2f}x" if m and m.get("spread") else "machine: not recorded"


def _pairwise_floor(df) -> dict:
    """Per kind: share of (op, pass i, pass j) pairs whose single-pass medians agree within
    +-10 % (+-5 %): the noise of a one-pass label on this machine."""
    import numpy as np
    out = {}
    for kind, g in df.groupby("kind"):
        rel = []
        for p in g["pass_medians_ms"]:
            if p is None or len(p) < 2:
                continue
            p = np.asarray(p, float)
            for i in range(len(p)):
                for j in range(i + 1, len(p)):
                    rel.append(abs(p[i] / p[j] - 1))
        if rel:
            rel = np.array(rel)
            out[kind] = {"within_10": float(np.mean(rel <= 0.10)),
                         "within_5": float(np.mean(rel <= 0.05)), "pairs": int(rel.size)}
    return out


def _consistent(df) -> set:
    """Signatures whose passes all lie within 5 % of their median (measured consistently)."""
    import numpy as np
    keep = set()
    for sig, p in zip(df["signature"], df["pass_medians_ms"]):
        if p is not None and len(p) >= 2:
            p = np.asarray(p, float)
            if np.all(np.abs(p / np.median(p) - 1) <= 0.05):
                keep.add(sig)
    return keep


def _median_label(frame, df):
    """Per kind and overall: the share within +-10 % against the median of the op's passes
    (the mean of the two for 2 passes; a table's latency_ms is the geometric mean of their
    lower half since 2026-12-05, of all of them from agent v8, the lower median before)."""
    import numpy as np
    by_sig = df.set_index("signature")["pass_medians_ms"]
    mid = np.array([float(np.median(p)) if p is not None and len(p) else np.nan
                    for p in by_sig.loc[frame["signature"]]])
    ok = np.abs(frame["pred_ms"].to_numpy() / mid - 1) <= 0.10
    kinds = frame["kind"].to_numpy()
    per = ", ".join(f"{k} {100 * np.mean(ok[kinds == k]):.1f} %" for k in sorted(set(kinds)))
    return f"against the median of each op's passes: ±10 % {100 * np.mean(ok):.1f} % ({per})"


def _report(name, frame, floor, movement, consistent=None):
    from hwprof.latency.predictors.evaluate import evaluate_frame
    rep = evaluate_frame(frame)
    print(f"\n== {name} ({movement})")
    print(f"{'kind':<10}{'n':>5}{'±10%':>8}{'±5%':>8}{'RMSPE':>8}{'bias':>7}   labels' floor ±10% "
          "(pairs)" + ("   ±10% on consistent rows (n)" if consistent is not None else ""))
    for kind, r in list(rep["kinds"].items()) + [("overall", rep["overall"])]:
        f = floor.get(kind)
        fl = f"{100 * f['within_10']:.1f}% ({f['pairs']})" if f else "-"
        line = (f"{kind:<10}{r['n']:>5}{100 * r['within_10']:>7.1f}%{100 * r['within_5']:>7.1f}%"
                f"{100 * r['rmspe']:>7.1f}%{_bias(frame, kind):>7.3f}   {fl:<24}")
        if consistent is not None:
            sub = frame[frame["signature"].isin(consistent)]
            if kind != "overall":
                sub = sub[sub["kind"] == kind]
            if len(sub):
                import numpy as np
                w = float(np.mean(np.abs(sub["pred_ms"] / sub["true_ms"] - 1) <= 0.10))
                line += f"   {100 * w:.1f}% ({len(sub)})"
        print(line)
    return rep


def _bias(frame, kind: str) -> float:
    """The median of predicted / measured over a kind's rows (all rows for "overall"): a
    predictor can be right on its training rows' cross-validation and off by a common
    factor on a table measured at another time."""
    import numpy as np
    sub = frame if kind == "overall" else frame[frame["kind"] == kind]
    return float(np.median(sub["pred_ms"].to_numpy() / sub["true_ms"].to_numpy()))


def _training_cv(pred) -> None:
    """Each kind's training rows, predicted out of fold: how far their own labels let a
    model go, beside what the held-out tables show."""
    for kind, acc in sorted(pred.meta["cv_accuracy"].items()):
        print(f"  {kind}: training rows' cross-validation within ±10 % "
              f"{100 * acc['within_10']:.1f} % (MAPE {100 * acc['mape']:.1f} %, n {acc['n']})")


def _intervals(pred, frame) -> float:
    import numpy as np

    from hwprof.latency.specs import parse_spec
    specs = [parse_spec(json.loads(s)) for s in frame["spec"]]
    _, lo, hi = pred.predict_intervals(specs)
    t = frame["true_ms"].to_numpy()
    return float(np.mean((t >= lo) & (t <= hi)))


def _untrained_sum(pred, specs, predicted, lut) -> str:
    """Predicted over measured for the network's layers that are not training rows (a layer
    the predictor was fitted on is predicted in-sample), and how many those are."""
    trained = set(pred.meta.get("training_signatures") or [])
    keep = [i for i, s in enumerate(specs) if s.signature not in trained]
    if len(keep) == len(specs):
        return ""
    if not keep:
        return f"  (all {len(specs)} layers are training rows)"
    ratio = sum(predicted[i] for i in keep) / sum(lut[specs[i].signature] for i in keep)
    n = len(specs) - len(keep)
    rows = "1 is a training row" if n == 1 else f"{n} are training rows"
    return f"  ({rows}; the other {len(keep)}: {100 * (ratio - 1):+.1f} %)"


def _network_sums(pred, real_df):
    """Per real network: measured vs predicted sum of its listed layers, and whether the
    measured sum lies in the sum's interval (RHO), the quadrature one and the sum of bounds;
    where some layers are training rows, also the sum over the others."""
    import numpy as np

    from hwprof.latency.predictors.intervals import sum_interval
    from hwprof.latency.predictors.realnets import NETWORKS
    from hwprof.latency.specs import parse_spec
    lut = dict(zip(real_df["signature"], real_df["latency_ms"].astype(float)))
    rows = []
    for name, build in NETWORKS.items():
        specs = [parse_spec(r) for r in build()]
        if not all(s.signature in lut and pred.can_predict(s) for s in specs):
            continue
        true = sum(lut[s.signature] for s in specs)
        p, lo, hi = pred.predict_intervals(specs)
        total, low, high = sum_interval(p, lo, hi)
        _, ql, qh = sum_interval(p, lo, hi, rho=0.0)
        _, bl, bh = sum_interval(p, lo, hi, rho=1.0)
        rows.append((name, len(specs), true, total, low, high, low <= true <= high,
                     ql <= true <= qh, bl <= true <= bh, _untrained_sum(pred, specs, p, lut)))
    print("\n== real networks: sum of their listed layers (conv2d / dwconv2d / mbconv), measured "
          "vs predicted with the 90 % interval of the sum")
    for name, n, true, total, low, high, inside, _, _, untrained in rows:
        print(f"{name:<20}{n:>4} layers  measured {true:8.2f} ms  predicted {total:8.2f} ms "
              f"({100 * (total / true - 1):+5.1f} %)  interval {low:8.2f}-{high:8.2f}"
              f"{'' if inside else '  (outside)'}{untrained}")
    if rows:
        cov = [np.mean([r[i] for r in rows]) for i in (6, 7, 8)]
        print(f"networks inside the interval: rho=0.1 {100 * cov[0]:.0f} %, quadrature (rho=0) "
              f"{100 * cov[1]:.0f} %, sum of per-op bounds (rho=1) {100 * cov[2]:.0f} % "
              f"of {len(rows)}")


def _transfer(pred, few_path, full_path):
    import numpy as np
    from scipy.stats import spearmanr

    from hwprof.latency.predictors.evaluate import prediction_frame
    from hwprof.latency.predictors.transfer import transferred
    few, full = _table(few_path), _table(full_path)
    pred_t = transferred(pred, few.df, source=str(few_path), from_path="bench.predictor",
                         log=lambda m: print(f"  {m}"))
    df = full.df[~full.df["signature"].isin(set(few.df["signature"]))]
    moved = f"{_movement(few)} / {_movement(full)}"
    print(f"\n== transfer: {pred_t.meta['transfer']['rows']} ops of the new device "
          f"({few_path}) -> its full table {full_path}, {len(df)} ops ({moved})")
    _print_floor("the new device's labels", _pairwise_floor(df))
    from hwprof.latency.predictors.predictor import fit_predictor
    try:  # the alternative to a transfer: a new predictor fitted on the few rows alone
        scratch = fit_predictor(few.df, cv=3, min_rows=10, kinds=sorted(set(few.df["kind"])))
    except Exception as e:  # noqa: BLE001 - reported, the benchmark goes on
        print(f"  (a predictor fitted on the few rows alone failed: {e})")
        scratch = None
    variants = [("device A's predictor as it is", pred), ("transferred", pred_t)]
    if scratch is not None:
        variants.append(("fitted on the few rows alone", scratch))
    for label, p in variants:
        frame, _ = prediction_frame(p, df, "latency_ms")
        rel = np.abs(frame["pred_ms"] / frame["true_ms"] - 1)
        rho = spearmanr(frame["pred_ms"], frame["true_ms"]).correlation
        per = ", ".join(f"{k} {100 * np.mean(rel[frame['kind'] == k] <= 0.10):.1f}%"
                        for k in sorted(set(frame["kind"])))
        print(f"{label:<32} ±10 %: {100 * np.mean(rel <= 0.10):5.1f} % ({per}); "
              f"Spearman {rho:.3f}; n {len(frame)}")
        if label == "transferred":
            print(f"  transferred intervals: {100 * _intervals(p, frame):.1f} % of ops inside "
                  f"their 90 % interval")
    return pred_t


def _print_floor(what: str, floor: dict) -> None:
    """The labels' own noise beside a figure: no predictor can agree with a table better
    than the table agrees with itself."""
    if not floor:
        print(f"  {what}: floor not known (one pass per op; build with --passes 2 to know it)")
    for kind, f in sorted(floor.items()):
        print(f"  {what}, floor: the same {kind} op's passes within ±10 % for "
              f"{100 * f['within_10']:.1f} % (±5 %: {100 * f['within_5']:.1f} %; "
              f"{f['pairs']} pairs)")


def _minutes(d: Path):
    for kind in KINDS:
        f = d / f"train-{kind}.json"
        if f.exists() and f.read_text().strip():
            r = json.loads(f.read_text())
            print(f"  {kind}: {r['measured']} ops measured in {r['wall_s'] / 60:.1f} min")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp/pred", help="where the measured tables are")
    ap.add_argument("--out", default=None, help="predictor file to write (default: DIR/bench.predictor)")
    ap.add_argument("--models", default="rf,gbr,linear,linear+gbr,linear+gbr-sq")
    ap.add_argument("--parts", default="nnabla,threads",
                    help="nnabla: fit on train-*.parquet, judge on the held-out, real and second-device "
                         "tables; threads: one runtime's transfer from 1 to 2 threads (--threads-runtime); "
                         "transfer: the nnabla -> second device transfer alone, from DIR/bench.predictor "
                         "(or --out) saved by an earlier nnabla part")
    ap.add_argument("--second", default="torch", metavar="NAME",
                    help="the second device's tables for the transfer: DIR/NAME-few.parquet and "
                         "DIR/NAME-full.parquet (default: torch; e.g. ort for the onnxruntime "
                         "runtime)")
    ap.add_argument("--threads-runtime", default="torch", metavar="NAME",
                    help="the runtime of the threads part: DIR/train-NAME.parquet (1 thread) and "
                         "DIR/NAME2-few.parquet, DIR/NAME2-full.parquet (2 threads), and if present "
                         "DIR/NAME-full.parquet (1 thread, held out: the 1-thread predictor judged on "
                         "its own device); default torch, e.g. ort for the onnxruntime runtime")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    d = Path(args.dir)
    if "nnabla" in parts:
        _nnabla(d, args)
    if "threads" in parts:
        _threads(d, args)
    if "transfer" in parts:   # only the nnabla -> second device transfer, from a saved predictor
        from hwprof.latency.predictors.persist import load_predictor
        pred = load_predictor(args.out or d / "bench.predictor")
        _transfer(pred, d / f"{args.second}-few.parquet", d / f"{args.second}-full.parquet")
    return 0


def _threads(d: Path, args):
    """A second device of the same runtime: the runtime with 2 threads, from its 1-thread
    predictor (train-RT.parquet) and 50 rows (RT2-few.parquet), judged on RT2-full.parquet."""
    from hwprof.latency.predictors.predictor import fit_predictor
    rt = args.threads_runtime
    paths = [d / f for f in (f"train-{rt}.parquet", f"{rt}2-few.parquet", f"{rt}2-full.parquet")]
    if not all(p.exists() for p in paths):
        print(f"\n(no threads transfer: needs {', '.join(p.name for p in paths)} in {d})")
        return
    train = _table(paths[0])
    report = d / f"train-{rt}.json"
    if report.exists() and report.read_text().strip():
        r = json.loads(report.read_text())
        print(f"  {rt} 1-thread training: {r['measured']} ops measured in "
              f"{r['wall_s'] / 60:.1f} min")
    print(f"\n== the {rt} runtime, 1 thread -> 2 threads: 1-thread predictor from {paths[0]} "
          f"({len(train.df)} rows, {_movement(train)})")
    pred = fit_predictor(train.df, candidates=args.models.split(","), sources=[str(paths[0])],
                         log=lambda m: print(f"  fit {m}"))
    _training_cv(pred)
    own = d / f"{rt}-full.parquet"  # held-out ops of the 1-thread device, if measured
    if own.exists():
        _own_device(pred, own)
    _transfer(pred, paths[1], paths[2])


def _own_device(pred, path):
    """The source predictor on held-out ops of its own device: what a transfer starts from."""
    from hwprof.latency.predictors.evaluate import evaluate_frame, prediction_frame
    table = _table(path)
    frame, _ = prediction_frame(pred, table.df, "latency_ms")
    r = evaluate_frame(frame)["overall"]
    print(f"  on its own device's held-out ops ({path.name}, {r['n']}, {_movement(table)}): "
          f"±10 % {100 * r['within_10']:.1f} %, ±5 % {100 * r['within_5']:.1f} %")
    _print_floor("  their labels", _pairwise_floor(table.df))


def _nnabla(d: Path, args):
    import pandas as pd

    from hwprof.latency.predictors.evaluate import prediction_frame
    from hwprof.latency.predictors.persist import save_predictor
    from hwprof.latency.predictors.predictor import fit_predictor

    trains = [d / f"train-{k}.parquet" for k in KINDS if (d / f"train-{k}.parquet").exists()]
    print("training tables (measuring time per kind, from the builds' reports):")
    _minutes(d)
    tables = [_table(p) for p in trains]
    for p, t in zip(trains, tables):
        print(f"  {p}: {len(t.df)} rows, {_movement(t)}")
    df = pd.concat([t.df for t in tables], ignore_index=True)
    pred = fit_predictor(df, candidates=args.models.split(","), sources=[str(p) for p in trains],
                         log=lambda m: print(f"  fit {m}"))
    save_predictor(args.out or d / "bench.predictor", pred)
    _training_cv(pred)
    trained = set(pred.meta["training_signatures"])
    held = _table(d / "heldout.parquet")
    hdf = held.df[~held.df["signature"].isin(trained)]
    frame, _ = prediction_frame(pred, hdf, "latency_ms")
    _report("held-out sampled configs (seed 2; label = median of its passes)", frame,
            _pairwise_floor(hdf), _movement(held), _consistent(hdf))
    print(_median_label(frame, hdf))
    print(f"held-out ops inside their 90 % interval: {100 * _intervals(pred, frame):.1f} %")
    if (d / "real.parquet").exists():
        real = _table(d / "real.parquet")
        rdf = real.df[~real.df["signature"].isin(trained)]
        rframe, _ = prediction_frame(pred, rdf, "latency_ms")
        _report("held-out real-CNN layers", rframe, _pairwise_floor(rdf), _movement(real),
                _consistent(rdf))
        print(_median_label(rframe, rdf))
        print(f"real layers inside their 90 % interval: {100 * _intervals(pred, rframe):.1f} %")
        _network_sums(pred, real.df)
    few, full = d / f"{args.second}-few.parquet", d / f"{args.second}-full.parquet"
    if few.exists() and full.exists():
        _transfer(pred, few, full)


if __name__ == "__main__":
    sys.exit(main())
