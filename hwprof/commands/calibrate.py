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
    p.add_argument("--space", default="mbv2-cifar", metavar="NAME",
                   help="search space whose architectures are measured (default: mbv2-cifar)")
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

    from hwprof.commands._common import backend_options, print_json, protocol_of
    from hwprof.errors import UserError
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs, random_choices
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.predictors.calibration import fit_calibration, store_in_meta
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import check_writable, read_table, write_table

    if not args.table and not args.predictor:
        raise UserError("give --table and/or --predictor: the calibration maps their sum of ops "
                        "to the end-to-end latency")
    if args.archs < 1:
        raise UserError(f"--archs must be at least 1, got {args.archs}")
    if args.table and not args.dry_run:
        check_writable(args.table)
    space = get_space(args.space)
    model = load_latency_model(args.table, args.predictor, calibrate=False)
    choices = random_choices(space, args.archs, args.seed)
    sums = [model.estimate_arch(space, c)["sum_ms"] for c in choices]  # fails before measuring
    backend = get_backend(args.device, backend_options(args))

    expect = model.device_fingerprint or (model.predictor.meta.get("device_fingerprint")
                                          if model.predictor is not None else None)
    meta = read_table(args.table).meta if args.table else None
    if not args.json:
        print(f"measuring {len(choices)} architecture(s) end to end on {backend.label}, "
              f"interleaved beside the reference op", file=sys.stderr)
    results, hello = measure_archs(space, choices, backend, protocol=protocol_of(args),
                                   seed=args.seed, expect_fingerprint=expect, table_meta=meta)
    if not args.json:
        for i, res in enumerate(results):
            print(f"  arch {i + 1}/{len(choices)}: sum {sums[i]:.3f} ms, end to end "
                  f"{res['latency_ms']:.3f} ms", file=sys.stderr)
    fp = hello.get("fingerprint_id")
    cal = fit_calibration(sums, [r["latency_ms"] for r in results], space=space.name,
                          stem_signature=space.arch_specs(choices[0])[0].signature,
                          choices=choices, device_fingerprint=fp)
    where = None
    if not args.dry_run:
        if args.table:
            table = read_table(args.table)
            store_in_meta(table.meta, cal)
            write_table(args.table, table)
            where = args.table
        else:
            from hwprof.latency.predictors.persist import load_predictor, update_meta
            meta = dict(load_predictor(args.predictor).meta)
            store_in_meta(meta, cal)
            update_meta(args.predictor, calibrations=meta["calibrations"])
            where = args.predictor
    out = {**cal.to_dict(), "stored_in": where}
    if args.json:
        print_json(out)
    else:
        print(f"{space.name}: end_to_end = {cal.slope:.4f} * sum {cal.intercept:+.4f} ms "
              f"from {cal.n} architecture(s); RMSPE of the plain sum {100 * cal.sum_rmspe:.1f} %, "
              f"calibrated {100 * cal.calibrated_rmspe:.1f} %"
              + (f"; stored in {where}" if where else " (not stored: --dry-run)"))
    return 0
