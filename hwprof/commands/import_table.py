"""Import another project's latency table as an hwprof table.

  hwprof import proxylessnas mobile.yaml --device-name pixel1 --out tables/pixel1.parquet
  hwprof import csv their.csv --map latency=lat,kind=op,in_channels=c,in_h=h,kernel=k \\
      --unit us --device-name jetson --out t.parquet
  hwprof import json rows.json --device-name pi4 --out t.parquet --json

proxylessnas (alias ofa) reads the ProxylessNAS / Once-for-All lookup-table yaml
({count, mean, var|std} per layer key, in ms). csv and json read one op per row
through --map FIELD=COLUMN (fields: see tables/IMPORT.md) and --unit. Keys or
rows that cannot be mapped are listed, never dropped silently. Every imported row
keeps its original key in `source_key`; the device gets a fingerprint hashed from
--device-name (default: the file name without extension).
"""

VERB = "import"
HELP = "import a ProxylessNAS/OFA LUT yaml or a CSV/JSON table"
FORMATS = ("proxylessnas", "ofa", "csv", "json")
SHOWN_UNMAPPED = 50  # keys listed in the text report; --json lists all


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("format", choices=FORMATS, help="source format")
    p.add_argument("file", help="the file to import")
    p.add_argument("--out", required=True, help="the .parquet table to write")
    p.add_argument("--device-name", metavar="NAME",
                   help="the device the numbers were measured on, e.g. pixel1 (default: file stem)")
    p.add_argument("--runtime", metavar="NAME", help="runtime the source used, e.g. tflite")
    p.add_argument("--unit", default="ms", choices=("ms", "us", "s"),
                   help="unit of the source latencies (default: ms)")
    p.add_argument("--map", metavar="FIELD=COL,...",
                   help="csv/json: which column holds each hwprof field")
    p.add_argument("--const", metavar="FIELD=VALUE,...",
                   help="csv/json: fields fixed for every row, e.g. kind=conv2d,batch=1")
    p.add_argument("--flavor", default="auto", choices=("auto", "proxylessnas", "ofa"),
                   help="LUT key convention (default: auto-detect from se/hs fields and std)")
    add_force_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from pathlib import Path

    from hwprof.commands._common import check_output, print_json
    from hwprof.errors import UserError
    from hwprof.latency.table import check_writable, write_table

    out = Path(args.out)
    check_output(out, [args.file], force=args.force)
    check_writable(out)
    device = args.device_name or Path(args.file).stem
    if args.format in ("proxylessnas", "ofa"):
        if args.map or args.const:
            raise UserError("--map and --const apply to csv/json imports only")
        from hwprof.latency.adapters import proxylessnas
        flavor = "ofa" if args.format == "ofa" and args.flavor == "auto" else args.flavor
        _say_reading(args)
        res = proxylessnas.import_file(args.file, device_name=device, flavor=flavor,
                                       unit=args.unit, runtime=args.runtime, quiet=args.quiet)
    else:
        if args.flavor != "auto":
            raise UserError("--flavor applies to proxylessnas/ofa imports only")
        from hwprof.latency.adapters import tabular
        res = tabular.import_file(args.file, fmt=args.format, device_name=device,
                                  colmap=tabular.parse_pairs(args.map, "--map"),
                                  const=tabular.parse_pairs(args.const, "--const"),
                                  unit=args.unit, runtime=args.runtime)
    if res.imported == 0:
        first = res.unmapped[0] if res.unmapped else {"key": "-", "reason": "the file is empty"}
        raise UserError(f"nothing in {args.file} could be imported ({len(res.unmapped)} keys "
                        f"unmapped; first {first['key']!r}: {first['reason']})")
    write_table(out, res.table)
    fp = res.table.df["device_fingerprint"].iloc[0]
    report = {"imported": res.imported, "unmapped": [u["key"] for u in res.unmapped],
              "unmapped_reasons": res.unmapped, "out": str(out),
              "device": device, "device_fingerprint": fp,
              "source": res.table.meta["import"]["source"], "unit": args.unit}
    if args.json:
        print_json(report)
        return 0
    print(f"imported {res.imported} rows from {args.file} into {out} as device {device} "
          f"({fp}, {report['source']})")
    if res.unmapped:
        print(f"{len(res.unmapped)} key(s) not mapped:")
        for u in res.unmapped[:SHOWN_UNMAPPED]:
            print(f"  {u['key']}: {u['reason']}")
        if len(res.unmapped) > SHOWN_UNMAPPED:
            print(f"  ... and {len(res.unmapped) - SHOWN_UNMAPPED} more (--json lists every key "
                  f"with its reason)")
    return 0


def _say_reading(args) -> None:
    """A line on stderr before a large file is read (reading has no progress bar)."""
    import os
    import sys
    try:
        size = os.path.getsize(args.file)
    except OSError:
        return
    if size > 5 * 1024 * 1024 and not args.quiet:
        print(f"hwprof: reading {args.file} ({size / 1024 ** 2:.0f} MB)", file=sys.stderr)
