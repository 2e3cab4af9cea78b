"""Measure a whole network end to end on a device.

The network is an architecture of a space (--arch arch.json, as `hwprof spaces
--json` names the candidates) or a model file (--model net.nnp, or net.onnx with
the 'onnx' extra) lowered to op specs. It is built as one nnabla network from
those specs (random weights and inputs, the file's shapes and hyper-parameters)
and timed by the same agent and protocol as single ops, on any device.

A model file is measured when its lowered ops form one chain (each op takes the
previous op's output; the residual of an MBConv block is part of the block), as
the networks of hwprof's spaces do; a file with functions no op kind describes,
or with branches other than MBConv residuals, is refused with the reason.

  hwprof measure-arch --arch arch.json --device cpu
  hwprof measure-arch --model net.nnp --device cpu --json
  hwprof measure-arch --arch arch.json --device ssh://pi@board --json
"""

VERB = "measure-arch"
HELP = "end-to-end latency of a whole network (arch.json or .nnp/.onnx) on a device"


def add_arguments(p):
    from hwprof.commands._common import add_backend_arguments, add_protocol_arguments
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", metavar="FILE", help="architecture JSON file")
    src.add_argument("--model", metavar="FILE",
                     help="model file: nnabla .nnp, or .onnx (needs the 'onnx' extra)")
    p.add_argument("--network", metavar="NAME",
                   help="--model: the network of the file (default: the one its executor runs)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda[:N] or ssh://[user@]host[:port]")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--table", metavar="FILE",
                   help="report the latency at this table's reference level, comparable with "
                        "the table's sum of ops (default: the session's own reference median)")
    add_protocol_arguments(p, "network")
    add_backend_arguments(p)


def run(args):
    from hwprof.commands._common import backend_options, print_json, protocol_of
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_specs, result_summary
    from hwprof.latency.table import read_table

    if args.model:
        name, network, head = args.model, _model_network(args), {"model": args.model}
    else:
        from hwprof.latency.arch import load_arch
        space, choices, _ = load_arch(args.arch)
        name, network, head = space.name, space.arch_network(choices), {
            "arch": args.arch, "space": space.name}
    meta = read_table(args.table).meta if args.table else None
    backend = get_backend(args.device, backend_options(args))
    results, hello = measure_specs([network], backend, protocol=protocol_of(args),
                                   seed=args.seed, table_meta=meta)
    out = {**head, "device": backend.label, "device_fingerprint": hello.get("fingerprint_id"),
           "n_ops": len(network["ops"]), **result_summary(results[0])}
    if args.json:
        print_json(out)
    else:
        m = out["machine"] or {}
        print(f"{name} on {backend.label}: {out['latency_ms']:.3f} ms "
              f"(95% CI {out['latency_ci_low_ms']:.3f}-{out['latency_ci_high_ms']:.3f}) at "
              f"reference level {out['ref_level_ms']:.4f} ms ({out['level_source']}); raw median "
              f"{out['median_ms']:.3f} ms, n={out['n_samples']}"
              + (", unstable" if out["unstable"] else "")
              + f"; the machine moved {m.get('spread', float('nan')):.2f}x (reference p95/p5)")
    return 0


def _model_network(args):
    """The ``sequence`` spec of a model file's lowered ops, or a UserError saying why not."""
    from hwprof.errors import SpecError, UserError
    from hwprof.latency.modelfile import lower_file
    from hwprof.latency.specs import parse_spec

    lowered = lower_file(args.model, network=args.network)
    bad = lowered.unsupported
    if bad:
        first = bad[0]
        raise UserError(f"{args.model}: {len(bad)} function(s) have no hwprof op kind, so the "
                        f"network cannot be rebuilt to measure; first {first['name']} "
                        f"({first['op']}): {first['reason']}")
    specs = lowered.specs
    if not specs:
        raise UserError(f"{args.model}: the network has no functions to measure")
    try:
        return parse_spec({"kind": "sequence", "input": specs[0].input,
                           "ops": [s.to_dict() for s in specs]})
    except SpecError as e:
        raise UserError(f"{args.model}: its ops are not one chain, which is what measure-arch "
                        f"rebuilds ({e})") from None
