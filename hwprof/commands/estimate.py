"""Estimate the latency of a whole architecture from a table (and a predictor).

The estimate is the sum of the architecture's ops (from the table, else the
predictor), mapped through the calibration stored with the table or the
predictor by `hwprof calibrate` (end-to-end measurements of a few random
architectures); without a calibration it is the plain sum.

  hwprof estimate --arch arch.json --table tables/cpu.parquet
  hwprof estimate --arch arch.json --table tables/cpu.parquet --predictor cpu.predictor --json
"""

VERB = "estimate"
HELP = "estimated latency of a whole architecture (calibrated sum of ops)"


def add_arguments(p):
    p.add_argument("--arch", required=True, metavar="FILE", help="architecture JSON file")
    p.add_argument("--table", metavar="PATH", help="latency table")
    p.add_argument("--predictor", metavar="FILE", help="predictor for ops not in the table")
    p.add_argument("--no-calibration", action="store_true",
                   help="ignore any stored calibration (estimate = plain sum)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import print_json
    from hwprof.errors import UserError
    from hwprof.latency.arch import load_arch
    from hwprof.latency.loading import load_latency_model

    if not args.table and not args.predictor:
        raise UserError("give --table and/or --predictor to estimate from")
    space, choices, _ = load_arch(args.arch)
    model = load_latency_model(args.table, args.predictor, calibrate=not args.no_calibration)
    est = model.estimate_arch(space, choices)
    specs = space.arch_specs(choices)
    cal = model.calibration.for_specs(specs) if model.calibration is not None else None
    est["calibrated"] = cal is not None
    est["calibration"] = None if cal is None else {
        "space": cal.space, "slope": cal.slope, "intercept": cal.intercept, "n": cal.n,
        "fitted_at": cal.fitted_at}
    out = {"arch": args.arch, "space": space.name, **est}
    if args.json:
        print_json(out)
    else:
        how = (f"calibrated on {cal.n} end-to-end measurement(s)" if cal else
               "no calibration for this space: plain sum (run `hwprof calibrate`)")
        print(f"{space.name}: {est['estimate_ms']:.3f} ms estimated ({how}); sum of ops "
              f"{est['sum_ms']:.3f} ms ({est['from_table']} from the table, "
              f"{est['from_predictor']} predicted)")
    return 0
