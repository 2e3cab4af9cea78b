"""Estimate the latency of a whole network from a table (and a predictor).

The network is an architecture of a space (--arch arch.json) or a model file
(--model net.nnp, or net.onnx through nnabla's converter, the 'onnx' extra),
lowered to hwprof op specs: conv, depthwise conv, BN, ReLU/ReLU6/h-swish,
pooling, affine, add, concat, squeeze-and-excite and MBConv blocks.

The estimate is the sum of the ops (from the table, else the predictor),
mapped through the calibration stored with the table or the predictor by
`hwprof calibrate` (end-to-end measurements of a few random architectures of
the space whose stem the network shares); without a calibration it is the
plain sum. A table alone is enough: ops it does not hold are listed as
missing and the sum is partial; functions of a model file that no op kind
describes are listed as unsupported, with the reason.

  hwprof estimate --arch arch.json --table tables/cpu.parquet
  hwprof estimate --model net.nnp --table tables/cpu.parquet --json
  hwprof estimate --model mobilenet.onnx --table tables/cpu.parquet --predictor cpu.predictor

--json prints one object with estimate_ms, sum_ms (the sum of the answered ops),
calibrated, calibration (the one applied: slope, intercept, n, added_by_searches,
sum_rmspe, calibrated_rmspe, agent_version, fitted_at, out_of_date: why it is out of
date, or null; the text output says so in a line),
from_table and from_predictor (counts), missing (ops neither the table
nor a predictor answers) and unsupported (model files: {name, op, reason}); with
--predictor also sum_low_ms/sum_high_ms and estimate_low_ms/estimate_high_ms (90 %
interval; null for a predictor file without intervals); with
--model also "ops", each op with its latency, source and the file's functions it
stands for. Exit code 0 when every op is answered, 1 when the sum is partial.
"""

VERB = "estimate"
HELP = "estimated latency of a whole network: an arch.json or a .nnp/.onnx model file"


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", metavar="FILE", help="architecture JSON file (space + choices)")
    src.add_argument("--model", metavar="FILE",
                     help="model file: nnabla .nnp, or .onnx (needs the 'onnx' extra)")
    p.add_argument("--table", metavar="PATH", help="latency table")
    p.add_argument("--predictor", metavar="FILE", help="predictor for ops not in the table")
    p.add_argument("--network", metavar="NAME",
                   help="--model: the network of the file to estimate (default: the one its "
                        "executor runs)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="--model: batch size where the file leaves it open (default: 1)")
    p.add_argument("--no-calibration", action="store_true",
                   help="ignore any stored calibration (estimate = plain sum)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import print_json, print_level_note
    from hwprof.errors import UserError
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.predictors.calibration import RENEW, describe

    if not args.table and not args.predictor:
        raise UserError("give --table and/or --predictor to estimate from")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    model = load_latency_model(args.table, args.predictor, calibrate=not args.no_calibration)
    print_level_note(model)
    out = _of_model(args, model) if args.model else _of_arch(args, model)
    specs = out.pop("_specs")
    cal = model.calibration.for_specs(specs) if model.calibration else None
    out["calibrated"] = cal is not None
    out["calibration"] = None if cal is None else describe(cal)
    if args.predictor:  # 90 % interval (issue 17; see hwprof/latency/predictors/intervals.py)
        from hwprof.latency.predictors.intervals import answers_interval, estimate_interval
        low, high = answers_interval(model.predictor, model.answers(specs))
        out["sum_low_ms"], out["sum_high_ms"] = low, high
        out["estimate_low_ms"], out["estimate_high_ms"] = estimate_interval(
            out["sum_ms"], low, high, cal)
    if args.json:
        print_json(out)
    else:
        _print(out, cal, _calibration_advice(model))
        if cal is not None and out["calibration"]["out_of_date"]:
            print(f"  calibration out of date: {out['calibration']['out_of_date']}; {RENEW}")
        if out.get("estimate_low_ms") is not None:
            print(f"  90 % interval {out['estimate_low_ms']:.3f}-{out['estimate_high_ms']:.3f} ms "
                  f"(predicted ops' errors, correlated 0.1 between ops, and the calibration's)")
    return 0 if not out["missing"] and not out["unsupported"] else 1


def _of_arch(args, model) -> dict:
    from hwprof.latency.arch import load_arch

    space, choices, _ = load_arch(args.arch)
    specs = space.arch_specs(choices)
    est = model.estimate_specs(specs, strict=False)
    answers = est.pop("answers")
    est["missing"] = [{"index": i, "kind": answers[i].spec.kind,
                       "signature": answers[i].spec.signature} for i in est["missing"]]
    return {"arch": args.arch, "space": space.name, "name": space.name, **est,
            "unsupported": [], "complete": not est["missing"], "_specs": specs}


def _of_model(args, model) -> dict:
    from hwprof.errors import UserError
    from hwprof.latency.modelfile import lower_file
    from hwprof.latency.modelfile.estimate import estimate_lowered, known_to

    lowered = lower_file(args.model, network=args.network, batch=args.batch,
                         known=known_to(model))
    if not lowered.ops:
        raise UserError(f"{args.model}: the network has no functions to estimate")
    est = estimate_lowered(model, lowered)
    return {"model": args.model, "network": lowered.network, "name": args.model, **est,
            "_specs": lowered.specs}


def _calibration_advice(model) -> str:
    """What to say when no calibration applies: calibrate, unless hwprof cannot reach the
    device (an imported table, e.g. a phone's published LUT)."""
    from hwprof.latency.adapters.common import imported_device

    if model.table is not None and imported_device(model.table.meta, model.device_fingerprint):
        return ("an imported table: its device is not one hwprof can reach, so it cannot be "
                "calibrated here; the estimate is the plain sum of the source's latencies")
    return "no calibration for this network: plain sum (run `hwprof calibrate`)"


def _print(out: dict, cal, advice: str) -> None:
    how = f"calibrated on {cal.n} end-to-end measurement(s)" if cal else advice
    partial = "" if out["complete"] else "partial "
    print(f"{out['name']}: {out['estimate_ms']:.3f} ms estimated ({how}); {partial}sum of ops "
          f"{out['sum_ms']:.3f} ms ({out['from_table']} from the table, "
          f"{out['from_predictor']} predicted, {len(out['missing'])} missing"
          + (f", {len(out['unsupported'])} unsupported" if out.get("model") else "") + ")")
    for m in out["missing"]:
        print(f"  missing      op {m['index']}: {m['kind']} {m['signature']}"
              + (f" ({', '.join(m['functions'][:3])})" if m.get("functions") else ""))
    for u in out["unsupported"]:
        print(f"  unsupported  {u['name']} ({u['op']}): {u['reason']}")
    if out["missing"]:
        print("  (ops missing from the table: pass --predictor to predict them, or measure "
              "them with `hwprof build-table --ops`)")
