"""Export an hwprof table (or a fleet directory) to another format.

  hwprof export tables/pixel1.parquet --format proxylessnas --out pixel1.yaml
  hwprof export tables/cpu.parquet --format proxylessnas --space mbv2-cifar --out cpu.yaml
  hwprof export t.parquet --format csv --out t.csv
  hwprof export t.parquet --format json --out t.json
  hwprof export tables/pi.parquet --format fleet --out tables/fleet/

proxylessnas writes the ProxylessNAS LUT yaml (var); ofa the Once-for-All form
(std, expand = middle channels, se/hs fields). Every row a key describes exactly
gets that key: mbconv rows expanded_conv keys, fused fixed layers (sequence rows,
as imported or as a proxyless-mobile table holds them) Conv/Conv_1/Conv_2/Logits.
With --space, a space that keeps its first conv, feature mix and classifier as
separate ops has them composed from their ops' rows. Rows no key can express are
listed. fleet adds the table's devices to a
partitioned Parquet directory (one partition per device fingerprint); an existing
fleet directory is added to without --force. An existing --out file is replaced
only with --force, and never when it is the input.
"""

VERB = "export"
HELP = "export a table as ProxylessNAS/OFA yaml, CSV, JSON, or into a fleet directory"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("table", help="a .parquet table or a fleet directory")
    p.add_argument("--format", required=True, choices=("proxylessnas", "ofa", "csv", "json", "fleet"))
    p.add_argument("--out", required=True, help="file to write (a directory for fleet)")
    p.add_argument("--space", metavar="NAME|PATH",
                   help="proxylessnas/ofa: compose the fixed layers of this space (a built-in "
                        "name or a space file)")
    p.add_argument("--mode", default="replace", choices=("replace", "upsert"),
                   help="fleet: replace each device's partition, or update it by key")
    add_force_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.fleet import load_table

    if args.space and args.format not in ("proxylessnas", "ofa"):
        raise UserError("--space applies to --format proxylessnas/ofa only")
    check_output(args.out, [args.table], force=args.force, dir_ok=args.format == "fleet")
    table = load_table(args.table)
    report = {"out": args.out, "format": args.format}
    if args.format in ("proxylessnas", "ofa"):
        from hwprof.latency.adapters import proxylessnas
        from hwprof.latency.spaces import get_space
        space = get_space(args.space) if args.space else None
        flavor = "ofa" if args.format == "ofa" else "proxylessnas"
        lut, skipped = proxylessnas.export_lut(table, flavor=flavor, space=space)
        if not lut:
            raise UserError(f"no row of {args.table} can be written as a LUT key "
                            f"({len(skipped)} skipped)")
        proxylessnas.write_lut(args.out, lut)
        report.update({"keys": len(lut), "skipped": len(skipped), "skipped_rows": skipped})
    elif args.format in ("csv", "json"):
        from hwprof.latency.adapters import tabular
        fn = tabular.export_csv if args.format == "csv" else tabular.export_json
        report["rows"] = fn(table, args.out)
    else:
        from hwprof.latency.fleet import write_fleet
        report["partitions"] = write_fleet(args.out, table, mode=args.mode)
        report["rows"] = sum(report["partitions"].values())
    if args.json:
        print_json(report)
    elif args.format == "fleet":
        for fp, n in report["partitions"].items():
            print(f"{args.out}: device {fp}: {n} rows ({args.mode})")
    elif "keys" in report:
        print(f"wrote {report['keys']} keys to {args.out}; {report['skipped']} rows not "
              f"expressible as LUT keys" + (" (--json lists them)" if report["skipped"] else ""))
    else:
        print(f"wrote {report['rows']} rows to {args.out}")
    return 0
