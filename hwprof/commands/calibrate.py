"""Calibrate whole-network estimates against end-to-end measurements.

Ops timed one by one do not add up to the network (per-call overhead, cache
state, fusion). This measures a handful of random architectures of a space
end to end on the device, compares them with the plain sum the table (and
predictor) give, fits  end_to_end = slope * sum + intercept  on relative
errors, and stores it in the table's metadata (or, with --predictor and no
--table, in the predictor file), where `hwprof estimate` and
`load_latency_model` find it. One calibration per space; calibrating again
replaces it.

  hwprof calibrate --table tables/cpu.parquet --space mbv2-cifar --device cpu --archs 8
  hwprof calibrate --predictor cpu.predictor --space mbv2-mini --device cpu
"""

VERB = "calibrate"
HELP = "fit the whole-network calibration from end-to-end measurements"


def add_arguments(p):
    from hwprof.commands._common import add_backend_arguments, add_protocol_arguments
    p.add_argument("--table", metavar="PATH", help="latency table (the calibration is stored in it)")
    p.add_argument("--predictor", metavar="FILE", help="predictor for ops not in the table")
    p.add_argument("--space", default="mbv2-cifar", metavar="NAME|PATH",
                   help="search space whose architectures are measured: a built-in name or a "
                        "space file (default: mbv2-cifar)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="device of the table: cpu (default), cuda[:N], ssh://...")
    p.add_argument("--archs", type=int, default=8, metavar="N",
                   help="random architectures to measure end to end (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed for the architectures (default: 0)")
    p.add_argument("--dry-run", action="store_true", help="fit and print, store nothing")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    add_protocol_arguments(p, "network")
    add_backend_arguments(p)


def run(args):
    import sys

    from hwprof.commands._common import backend_options, print_json, print_level_note, protocol_of
    from hwprof.errors import UserError
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.calibrate import describe, measure_calibration, store_calibration
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import check_writable, read_table

    if not args.table and not args.predictor:
        raise UserError("give --table and/or --predictor: the calibration maps their sum of ops "
                        "to the end-to-end latency")
    if args.archs < 1:
        raise UserError(f"--archs must be at least 1, got {args.archs}")
    if args.table and not args.dry_run:
        check_writable(args.table)
    space = get_space(args.space)
    model = load_latency_model(args.table, args.predictor, calibrate=False)
    print_level_note(model)
    backend = get_backend(args.device, backend_options(args))
    expect = model.device_fingerprint or (model.predictor.meta.get("device_fingerprint")
                                          if model.predictor is not None else None)
    if not args.json:
        print(f"measuring {args.archs} architecture(s) end to end on {backend.label}, "
              f"interleaved beside the reference op", file=sys.stderr)
    cal, _, _ = measure_calibration(
        space, model, backend, archs=args.archs, seed=args.seed, protocol=protocol_of(args),
        table_meta=read_table(args.table).meta if args.table else None,
        expect_fingerprint=expect, log=None if args.json else lambda m: print(m, file=sys.stderr))
    where = None if args.dry_run else store_calibration(cal, args.table, args.predictor)
    if args.json:
        print_json({**cal.to_dict(), "stored_in": where})
    else:
        print(describe(cal) + (f"; stored in {where}" if where else " (not stored: --dry-run)"))
    return 0
