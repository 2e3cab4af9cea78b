"""Latency of op specs (JSON lines or a JSON array) from a table, a predictor, or both.

Ops the table holds are answered from it, the others by the predictor when one
is given. With a table alone every op the table lacks is listed as missing and
the sum of the answered ops is printed; nothing stops at the first miss.

  hwprof predict --table tables/cpu.parquet --ops my_ops.json
  hwprof predict --predictor cpu.predictor --ops my_ops.json
  hwprof predict --predictor cpu.predictor --ops my_ops.json --table tables/cpu.parquet --json

--json prints one object: {"total_ms": sum of the answered ops, "ops": [{"kind",
"signature", "latency_ms" (null when missing), "source": "table"|"predictor"|"missing",
"spec"}, ...], "missing": [index of each unanswered op]}. Exit code 0 when every op
is answered, 1 when some are missing (the summary is printed either way). With
--predictor every op also has "latency_low_ms"/"latency_high_ms" (the predictor's 90 %
interval; a table row's own value; null when missing) and the object has
"total_low_ms"/"total_high_ms" (the interval of the sum; see
hwprof/latency/predictors/intervals.py).
"""

VERB = "predict"
HELP = "latency of op specs from a table and/or a predictor (lists the ops neither holds)"


def add_arguments(p):
    p.add_argument("--ops", required=True, metavar="FILE",
                   help="op specs: JSON lines or a JSON array ('-' reads stdin)")
    p.add_argument("--table", metavar="PATH", help="answer the ops this table holds from it")
    p.add_argument("--predictor", metavar="FILE",
                   help="predictor (from `hwprof fit`) for ops not in the table")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    import sys

    from hwprof.commands._common import print_json, print_level_note
    from hwprof.errors import UserError
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.model import answered_sum
    from hwprof.latency.specs import load_specs, read_ops_file

    if not args.table and not args.predictor:
        raise UserError("give --table and/or --predictor to answer the ops from")
    specs = load_specs(sys.stdin.read(), "stdin") if args.ops == "-" else read_ops_file(args.ops)
    model = load_latency_model(args.table, args.predictor, calibrate=False)
    print_level_note(model)
    answers = model.answers(specs)
    missing = [i for i, a in enumerate(answers) if a.latency_ms is None]
    out = {"total_ms": answered_sum(answers), "ops": [a.to_dict() for a in answers],
           "missing": missing}
    if args.predictor:  # 90 % intervals of predicted ops (issue 17); a table row: its value
        from hwprof.latency.predictors.intervals import answer_bounds, answers_interval
        for op, (low, high) in zip(out["ops"], answer_bounds(model.predictor, answers)):
            op["latency_low_ms"], op["latency_high_ms"] = low, high
        out["total_low_ms"], out["total_high_ms"] = answers_interval(model.predictor, answers)
    if args.json:
        print_json(out)
    else:
        for a in answers:
            ms = f"{a.latency_ms:10.4f} ms" if a.latency_ms is not None else f"{'-':>10s}   "
            print(f"{ms}  {a.source:<9}  {a.spec.kind:<9} {json_compact(a.spec.to_dict())}")
        what = (f"partial sum of {len(answers) - len(missing)} of {len(answers)} op(s); "
                f"{len(missing)} missing (not in the table"
                + ("" if args.predictor else "; pass --predictor to predict them") + ")"
                if missing else f"total of {len(answers)} op(s)")
        print(f"{out['total_ms']:10.4f} ms  {what}")
    return 1 if missing else 0


def json_compact(d):
    import json
    d = {k: v for k, v in d.items() if k not in ("dtype", "layout")}
    return json.dumps(d, separators=(",", ":"), sort_keys=True)
