"""Evaluate a predictor on a (held-out) table: RMSE, RMSPE, share within ±5/10/15 %.

  hwprof evaluate --predictor cpu.predictor --table heldout.parquet
  hwprof evaluate --predictor cpu.predictor --table heldout.parquet --json --plot parity.png

--json prints {"overall": {...}, "kinds": {kind: {...}}}; every block has n,
rmse_ms, rmspe, mape, within_5, within_10, within_15 (fractions in 0..1), spearman
(rank correlation of predictions and measurements) and inside_interval (share of the
rows inside their 90 % prediction interval; absent for older predictor files).
Held-out real-CNN layers: measure them with `hwprof build-table --real-layers` and
evaluate on that table.
Rows whose kind the predictor has no model for are left out (and listed).
A table that holds the predictor's device at another reference level than it was fitted at
gets a note (`level_note` in --json): its latencies then hold a common factor against the
predictions; `hwprof table rescale` puts it at the predictor's level.
"""

VERB = "evaluate"
HELP = "accuracy of a predictor on a measured table (+ parity plot)"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("--predictor", required=True, metavar="FILE", help="predictor file")
    p.add_argument("--table", required=True, metavar="PATH", help="measured table to compare with")
    p.add_argument("--target", choices=("latency_ms", "median_ms", "min_ms", "p10_ms", "mean_ms"),
                   help="table column to compare with (default: the column the predictor "
                        "was fitted on)")
    p.add_argument("--exclude-trained", action="store_true",
                   help="leave out rows the predictor was trained on (same signature)")
    p.add_argument("--plot", metavar="PNG", help="write a parity plot")
    add_force_argument(p, "--plot")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    import sys

    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.predictors.evaluate import evaluate_frame, format_report, prediction_frame
    from hwprof.latency.predictors.persist import load_predictor
    from hwprof.latency.table import read_table

    if args.plot:
        check_output(args.plot, [args.predictor, args.table], force=args.force, flag="--plot")
    pred = load_predictor(args.predictor)
    table = read_table(args.table)
    df = table.df
    if args.exclude_trained:
        df = df[~df["signature"].isin(set(pred.meta.get("training_signatures") or []))]
    target = args.target or pred.meta.get("target", "median_ms")
    frame, skipped = prediction_frame(pred, df, target)
    if frame.empty:
        raise UserError(f"{args.table} has no measured rows of the kinds the predictor knows "
                        f"({', '.join(pred.kinds)})")
    report = evaluate_frame(frame)
    report["target"] = target
    report["skipped_kinds"] = skipped
    report["level_note"] = _level_note(pred, table, args.table, target)
    if args.plot:
        from hwprof.latency.predictors.plotting import parity_plot
        parity_plot(frame, args.plot)
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
        if report["level_note"]:
            print(f"hwprof: note: {report['level_note']}", file=sys.stderr)
        if skipped:
            print(f"left out kinds with no model: {', '.join(skipped)}", file=sys.stderr)
        if args.plot:
            print(f"parity plot: {args.plot}")
    return 0


def _level_note(pred, table, path: str, target: str):
    """Where the table holds the predictor's device at another reference level than it was
    fitted at, a note saying so (the figures then hold a common factor); else None."""
    if target != "latency_ms":
        return None
    from hwprof.latency.levelmerge import predictor_level_note
    return predictor_level_note(pred, table, path)
