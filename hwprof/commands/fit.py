"""Fit a latency predictor on a table: one regressor per op kind, on log latency.

For every kind, a random forest, gradient boosting, a linear model on log
features and a linear model with boosted residuals are compared by K-fold
cross-validation (mean absolute percentage error); the best is refitted on all rows and saved with skops
(no pickle) together with the hwprof and scikit-learn versions.

  hwprof fit --table tables/cpu-sample.parquet --out cpu.predictor
  hwprof fit --table a.parquet --table b.parquet --kinds conv2d,mbconv --out cpu.predictor
  hwprof fit --transfer-from cpu.predictor --table board-50-ops.parquet --out board.predictor
  hwprof fit --table train.parquet --out cpu.predictor --learning-curve curve.png

Kinds of the table with too few rows to fit are skipped with a note (an
imported table's few whole-network rows, say); naming such a kind in --kinds
is an error. --transfer-from adapts a predictor of another device with the few
rows of --table (a learned correction of its predictions; see
hwprof/latency/predictors/transfer.py). Every prediction carries a 90 %
interval from the model's cross-validated (or leave-one-out) errors.
Several --table of one device must be at one reference level (`hwprof table merge
--rescale` or `hwprof table rescale` puts them there); the predictor keeps that level, and
`hwprof evaluate` says when a table it is judged on sits at another.
--learning-curve says, per kind, whether a longer build should still make the
model more accurate (its cross-validated accuracy on 1/4 ... 4/4 of the rows).
"""

VERB = "fit"
HELP = "fit a latency predictor (per-kind regressors) on a table"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("--table", action="append", required=True, metavar="PATH",
                   help="table(s) to fit on (repeat to combine; one device and environment)")
    p.add_argument("--out", required=True, metavar="FILE", help="predictor file to write")
    p.add_argument("--kinds", metavar="K1,K2", help="op kinds to fit (default: every kind in "
                   "the table; each needs enough rows)")
    p.add_argument("--models", metavar="M1,M2", default="rf,gbr,linear,linear+gbr,linear+gbr-sq",
                   help="candidate models compared per kind (default: rf,gbr,linear,linear+gbr,"
                        "linear+gbr-sq: the last two are ridge plus boosted trees on its "
                        "residuals, with the Huber and with the squared loss)")
    p.add_argument("--cv", type=int, default=5, metavar="K", help="cross-validation folds (5)")
    p.add_argument("--scoring", default="mape", choices=("mape", "rmspe"),
                   help="what the cross-validation minimises to pick a model (default: mape)")
    p.add_argument("--min-rows", type=int, default=20, metavar="N",
                   help="fewest rows a kind may be fitted on (default: 20)")
    p.add_argument("--target", default="latency_ms",
                   choices=("latency_ms", "median_ms", "min_ms", "p10_ms", "mean_ms"),
                   help="table column to learn (default: latency_ms, the row's latency at the "
                        "table's reference level; median_ms etc. are raw statistics)")
    p.add_argument("--device-fingerprint", metavar="FP",
                   help="fit on this device's rows when the table holds several")
    p.add_argument("--env-key", metavar="KEY",
                   help="fit on this environment's rows when the table holds several")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--max-ci", type=float, default=0.2, metavar="FRAC",
                   help="leave out rows whose latency's 95 %% CI is wider than +-FRAC of it "
                        "(default: 0.2; 0 or less keeps every row)")
    p.add_argument("--transfer-from", metavar="FILE",
                   help="adapt this predictor (fitted on another device) to the device of "
                        "--table, which needs only a few measured ops (about 50)")
    p.add_argument("--learning-curve", nargs="?", const=True, default=None, metavar="PNG",
                   help="also refit each kind's model on 1/4, 1/2 and 3/4 of its rows and print "
                        "its cross-validated accuracy on each: whether measuring more "
                        "configurations should still help (points per doubling of the rows); "
                        "costs about a third of the fit again. With PNG, also plot it there")
    add_force_argument(p, "--out and the --learning-curve plot")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the fit report as JSON")


def run(args):
    import sys

    import pandas as pd

    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.predictors.persist import save_predictor
    from hwprof.latency.predictors.predictor import fit_predictor
    from hwprof.latency.table import check_writable, read_table

    if args.cv < 2:
        raise UserError(f"--cv must be at least 2, got {args.cv}")
    check_output(args.out, args.table, force=args.force)
    check_writable(args.out)
    plot = args.learning_curve if isinstance(args.learning_curve, str) else None
    if plot:
        check_output(plot, args.table + [args.out], force=args.force, flag="--learning-curve")
    tables = [read_table(t) for t in args.table]
    levels = _training_levels(tables, args)
    frames = [t.df for t in tables]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    kinds = None
    if args.kinds:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        if not kinds:
            raise UserError("--kinds is empty")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    log = None if (args.quiet or args.json) else (lambda m: print(m, file=sys.stderr))
    if args.transfer_from:
        if args.learning_curve:
            raise UserError("--learning-curve goes with a fit of its own, not with "
                            "--transfer-from (a transfer's few rows are all it has)")
        return _transfer(args, df, log, levels)
    pred = fit_predictor(df, kinds=kinds, candidates=models, cv=args.cv, min_rows=args.min_rows,
                         target=args.target, scoring=args.scoring, random_state=args.seed,
                         max_ci=args.max_ci if args.max_ci > 0 else None,
                         sources=args.table,
                         device_fingerprint=args.device_fingerprint, env_key=args.env_key,
                         log=log if log else lambda m: (m.startswith("note:") and print(
                             f"hwprof: {m}", file=sys.stderr)))
    _record_levels(pred, levels)
    curve = _learning_curve(args, pred, df) if args.learning_curve else None
    save_predictor(args.out, pred)
    report = {"out": args.out, **pred.describe()}
    if curve is not None:
        report["learning_curve"] = curve
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"wrote {args.out}: " + ", ".join(
            f"{k} -> {v['model']} (CV MAPE {100 * v['cv'][v['model']]['mape']:.1f} %, ±10 %: "
            f"{100 * v['cv'][v['model']]['within_10']:.0f} %)" for k, v in report["kinds"].items()))
        if curve is not None:
            from hwprof.latency.predictors.learning import format_curve
            print("\n".join(format_curve(curve)))
    return 0


def _learning_curve(args, pred, df) -> dict:
    """Each kind's cross-validated accuracy on nested subsets of its rows; kept in the
    predictor's metadata too."""
    import sys

    from hwprof.latency.predictors.learning import learning_curve
    from hwprof.latency.predictors.predictor import training_rows
    if not (args.quiet or args.json):
        print("learning curve: refitting each kind on parts of its rows ...", file=sys.stderr)
    curve = learning_curve(pred, training_rows(pred, df, args.target), target=args.target,
                           cv=args.cv, seed=args.seed)
    pred.meta["learning_curve"] = curve
    if isinstance(args.learning_curve, str):
        from hwprof.latency.predictors.plotting import learning_curve_plot
        learning_curve_plot(curve, args.learning_curve)
    return curve


def _training_levels(tables, args) -> dict:
    """The reference level of each device key the tables hold (refused where two tables hold
    one at different levels: their latencies differ by a common factor). Raw-statistic targets
    (median_ms, ...) are no level's, so they are not checked."""
    if args.target != "latency_ms":
        return {}
    from hwprof.latency.levelmerge import agreed_levels
    return agreed_levels(tables, args.table,
                         "put them at one level first (`hwprof table merge A B --rescale --out "
                         "AB.parquet`, or `hwprof table rescale B --reference-from A`)")


def _record_levels(pred, levels) -> None:
    """Keep the level the predictor's device was fitted at, so that `evaluate` can say when a
    table it is judged on sits at another."""
    from hwprof.latency.levelmerge import level_record
    from hwprof.latency.reference import level_key
    key = level_key(pred.meta.get("device_fingerprint"), pred.meta.get("env_key"))
    pred.meta["reference_levels"] = level_record(levels, key)


def _transfer(args, df, log, levels):
    import sys

    from hwprof.commands._common import print_json
    from hwprof.latency.predictors.persist import load_predictor, save_predictor
    from hwprof.latency.predictors.transfer import transferred

    if args.device_fingerprint or args.env_key:
        df = df[(df["device_fingerprint"] == args.device_fingerprint) if args.device_fingerprint
                else df["device_fingerprint"].notna()]
        if args.env_key:
            df = df[df["env_key"] == args.env_key]
    base = load_predictor(args.transfer_from)
    pred = transferred(base, df, target=args.target, source=",".join(args.table),
                       from_path=args.transfer_from,
                       log=log or (lambda m: None))
    _record_levels(pred, levels)
    save_predictor(args.out, pred)
    t = pred.meta["transfer"]
    report = {"out": args.out, "transfer_from": args.transfer_from, "rows": t["rows"],
              "kinds": t["kinds"], "alpha": t["alpha"], "loo_accuracy": t["loo_accuracy"],
              "base_accuracy": t["base_accuracy"], "interval": t["interval"],
              "skipped_kinds": t["skipped_kinds"]}
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"wrote {args.out}: {args.transfer_from} adapted with {t['rows']} rows; "
              f"leave-one-out within ±10 %: {100 * t['loo_accuracy']['within_10']:.0f} % "
              f"(uncorrected: {100 * t['base_accuracy']['within_10']:.0f} %)")
        if t["skipped_kinds"]:
            print(f"left out rows of kinds the predictor cannot answer: "
                  f"{', '.join(t['skipped_kinds'])}", file=sys.stderr)
    return 0
