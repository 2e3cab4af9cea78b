"""Carry a table's rows to another table's reference level (and elasticity).

  hwprof table rescale train.parquet --reference-from heldout.parquet --out train-at.parquet
  hwprof table rescale old.parquet --reference-from new.parquet --out old-at-new.parquet --json

Every latency is the op's at its table's reference level, carried there with the table's
elasticity. Two tables of one device built at different levels (two sessions that found the
machine in different states) differ by a common factor before any op does: carry one to the
other's level before comparing, fitting on both or searching with both. Each row's passes are
derived again from their kept samples at the new level with the new elasticity; a row without
samples is scaled by (new level / its level) ** e. Both tables must hold one level, of the
same device and environment (filter first). Nothing is measured.
"""

VERB = "table rescale"
HELP = "carry a table's rows to another table's reference level, from their kept samples"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("table", help="the .parquet table (or fleet directory) to carry")
    p.add_argument("--reference-from", required=True, metavar="TABLE",
                   help="the table whose reference level and elasticity the rows are carried to")
    p.add_argument("--out", required=True, help="the carried .parquet table")
    add_force_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.fleet import load_table
    from hwprof.latency.levelmerge import one_level, rescale_table
    from hwprof.latency.table import check_writable, write_table

    check_output(args.out, [args.table, args.reference_from], force=args.force)
    check_writable(args.out)
    table = load_table(args.table)
    key, src = one_level(table, args.table)
    ref_key, target = one_level(load_table(args.reference_from),
                                f"--reference-from {args.reference_from}")
    if key != ref_key:
        raise UserError(f"{args.table} holds device/environment {key}, {args.reference_from} "
                        f"{ref_key}: a level is a time of the reference op on one device in one "
                        f"environment, so rows are carried only between tables of the same one")
    out, n = rescale_table(table, key, src, target, f"carried from {src.level_ms:.6g} ms to the "
                                                    f"level of {args.reference_from}")
    write_table(args.out, out)
    rep = {"rows": int(len(out.df)), "rescaled": n, "from": src.describe(),
           "to": target.describe(), "out": args.out}
    if args.json:
        print_json(rep)
    else:
        print(f"{n} of {rep['rows']} rows carried from {rep['from']} to {rep['to']} "
              f"into {args.out}")
    return 0
