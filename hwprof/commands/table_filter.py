"""Keep the rows of a table (or fleet) that pass every given test.

  hwprof table filter tables/fleet/ --device pixel1 --out pixel1.parquet
  hwprof table filter t.parquet --kind mbconv,conv2d --status ok --out small.parquet
  hwprof table filter t.parquet --space proxyless-mobile --max-cv 0.1 --out clean.parquet
"""

VERB = "table filter"
HELP = "keep rows by kind, device, environment, status, source, spread or space"


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("table", help="a .parquet table or a fleet directory")
    p.add_argument("--out", required=True, help="the filtered .parquet table")
    p.add_argument("--kind", help="op kinds to keep, comma-separated")
    p.add_argument("--device", help="device fingerprints or names to keep, comma-separated")
    p.add_argument("--env", help="environment keys to keep, comma-separated")
    p.add_argument("--status", choices=("ok", "error"), help="keep rows with this status")
    p.add_argument("--source", help="sources to keep, e.g. measured,import:proxylessnas")
    p.add_argument("--max-cv", type=float, help="drop rows whose CV is above this")
    p.add_argument("--drop-unstable", action="store_true", help="drop rows flagged unstable")
    p.add_argument("--space", metavar="NAME|PATH",
                   help="keep only the ops the space's table needs (built-in name or space file)")
    add_force_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.fleet import load_table
    from hwprof.latency.table import check_writable, write_table
    from hwprof.latency.tableops import filter_table

    check_output(args.out, [args.table], force=args.force)
    check_writable(args.out)
    table = load_table(args.table)
    space = None
    if args.space:
        from hwprof.latency.spaces import get_space
        space = get_space(args.space)
    kinds = _csv(args.kind)
    if kinds:
        from hwprof.latency.specs import kinds as all_kinds
        bad = [k for k in kinds if k not in all_kinds()]
        if bad:
            raise UserError(f"unknown op kind(s) {bad}; expected: {', '.join(all_kinds())}")
    out = filter_table(table, kinds=kinds, devices=_csv(args.device), env_keys=_csv(args.env),
                       status=args.status, sources=_csv(args.source), max_cv=args.max_cv,
                       drop_unstable=args.drop_unstable, space=space)
    write_table(args.out, out)
    rep = {"rows_in": int(len(table.df)), "rows": int(len(out.df)), "out": args.out}
    if args.json:
        print_json(rep)
    else:
        print(f"kept {rep['rows']} of {rep['rows_in']} rows in {args.out}")
    return 0
