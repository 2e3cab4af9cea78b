"""Check a table (or fleet) for problems; exit 1 when it has errors.

  hwprof table validate tables/pixel1.parquet
  hwprof table validate tables/pixel1.parquet --space proxyless-mobile --json

Errors: duplicate keys, specs that do not parse or do not hash to their
signature, ok rows without a positive median, medians outside [min, max],
failed rows that carry a latency. Warnings: error rows, unstable rows, devices or environments missing
from the metadata, stale analytic features, and with --space the ops of that
space the table lacks.
"""

VERB = "table validate"
HELP = "check a table for errors and gaps (exit 1 on errors)"


def add_arguments(p):
    p.add_argument("table", help="a .parquet table or a fleet directory")
    p.add_argument("--space", metavar="NAME|PATH",
                   help="also report which ops of this space (built-in name or space file) "
                        "have no row")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import print_json
    from hwprof.latency.fleet import load_table
    from hwprof.latency.tableops import validate

    space = None
    if args.space:
        from hwprof.latency.spaces import get_space
        space = get_space(args.space)
    res = validate(load_table(args.table), space=space)
    res["table"] = args.table
    res["valid"] = not res["errors"]
    if args.json:
        print_json(res)
    else:
        print(f"{args.table}: {res['rows']} rows, {len(res['errors'])} errors, "
              f"{len(res['warnings'])} warnings")
        for e in res["errors"]:
            print(f"  error: {e}")
        for w in res["warnings"]:
            print(f"  warning: {w}")
        if "space" in res:
            sp = res["space"]
            print(f"  space {sp['name']}: {sp['needed'] - sp['missing']} of {sp['needed']} ops "
                  f"present")
    return 0 if res["valid"] else 1
