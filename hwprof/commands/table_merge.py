"""Merge latency tables (or fleet directories) into one table, deduplicated by key.

  hwprof table merge a.parquet b.parquet --out ab.parquet
  hwprof table merge run1.parquet run2.parquet --on-conflict mean --out cpu.parquet
  hwprof table merge cpu.parquet pi.parquet --allow-mixed --out both.parquet
  hwprof table merge monday.parquet friday.parquet --rescale --out week.parquet

Rows with the same key (op signature, device fingerprint, environment) that agree
are kept once. When they disagree --on-conflict decides: error (default: refuse),
keep-first, keep-last, min, max, or mean (see tables/IMPORT.md). An ok row always
beats an error row. Rows of different devices or runtime environments are refused
unless --allow-mixed (or write a fleet: `hwprof export --format fleet`).

Every latency is the op's at its table's reference level (the state of the machine the
build measured against). Tables holding one device at different levels are refused:
their rows differ by a common factor before any op does. --rescale carries the later
tables' rows of that device to the first table's level (from their kept samples, with the
first table's elasticity) before merging. The merged table keeps the levels, so it can be
extended and adopted (--reference-from) like a built one.
"""

VERB = "table merge"
HELP = "merge tables, deduplicated by key, with an explicit conflict policy"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument
    from hwprof.latency.conflicts import POLICIES

    p.add_argument("tables", nargs="+", help=".parquet tables or fleet directories")
    p.add_argument("--out", required=True, help="the merged .parquet table")
    p.add_argument("--on-conflict", default="error", choices=tuple(POLICIES),
                   help="what to do when inputs disagree about one op: " + "; ".join(
                       f"{name}: {pol.help}" for name, pol in POLICIES.items()))
    p.add_argument("--allow-mixed", action="store_true",
                   help="allow rows of several devices / runtime environments in one table")
    p.add_argument("--rescale", action="store_true",
                   help="carry rows measured at another reference level (or elasticity) than "
                        "the first table's for the same device to the first table's, instead "
                        "of refusing them")
    add_force_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import check_output, print_json
    from hwprof.latency.fleet import load_table
    from hwprof.latency.table import check_writable, write_table
    from hwprof.latency.tableops import merge

    check_output(args.out, args.tables, force=args.force)
    check_writable(args.out)
    tables = [load_table(t) for t in args.tables]
    rep = merge(tables, on_conflict=args.on_conflict, allow_mixed=args.allow_mixed,
                sources=args.tables, rescale=args.rescale)
    write_table(args.out, rep.table)
    out = {**rep.as_dict(), "out": args.out, "policy": args.on_conflict}
    if args.json:
        print_json(out)
    else:
        print(f"merged {rep.inputs} tables ({rep.rows_in} rows) into {args.out}: {out['rows']} "
              f"rows; {rep.duplicates} duplicate rows dropped, {rep.conflicts} conflicts "
              f"resolved by {args.on_conflict}"
              + (f"; {rep.rescaled} rows carried to the first table's reference level"
                 if rep.rescaled else ""))
    return 0
