"""Predict the latency of op specs (JSON lines or a JSON array) with a predictor.

With --table, ops the table holds are answered from it and only the others
are predicted; every line says which.

  hwprof predict --predictor cpu.predictor --ops my_ops.json
  hwprof predict --predictor cpu.predictor --ops my_ops.json --table tables/cpu.parquet --json
"""

VERB = "predict"
HELP = "latency of op specs from a predictor (and optionally a table)"


def add_arguments(p):
    p.add_argument("--predictor", required=True, metavar="FILE", help="predictor file")
    p.add_argument("--ops", required=True, metavar="FILE",
                   help="op specs: JSON lines or a JSON array ('-' reads stdin)")
    p.add_argument("--table", metavar="PATH", help="answer ops the table holds from it")
    p.add_argument("--json", action="store_true", help="print a JSON array")


def run(args):
    import sys

    from hwprof.commands._common import print_json
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.specs import load_specs, read_ops_file

    specs = load_specs(sys.stdin.read(), "stdin") if args.ops == "-" else read_ops_file(args.ops)
    model = load_latency_model(args.table, args.predictor, calibrate=False)
    lat = model.latencies(specs)
    rows = [{"kind": s.kind, "signature": s.signature, "latency_ms": ms, "source": src,
             "spec": s.to_dict()} for s, (ms, src) in zip(specs, lat)]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['latency_ms']:10.4f} ms  {r['source']:<9}  {r['kind']:<9} "
                  f"{json_compact(r['spec'])}")
        print(f"{sum(r['latency_ms'] for r in rows):10.4f} ms  total of {len(rows)} op(s)")
    return 0


def json_compact(d):
    import json
    d = {k: v for k, v in d.items() if k not in ("dtype", "layout")}
    return json.dumps(d, separators=(",", ":"), sort_keys=True)
