"""Measure a whole architecture end to end on a device.

The architecture file (JSON with "space" and "choices", as `hwprof spaces
--json` names the candidates) is built as one nnabla network and timed by
the same agent and protocol as single ops, on any device.

  hwprof measure-arch --arch arch.json --device cpu
  hwprof measure-arch --arch arch.json --device ssh://pi@board --json
"""

VERB = "measure-arch"
HELP = "end-to-end latency of a whole architecture on a device"


def add_arguments(p):
    from hwprof.commands._common import add_backend_arguments, add_protocol_arguments
    p.add_argument("--arch", required=True, metavar="FILE", help="architecture JSON file")
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
    from hwprof.latency.arch import load_arch
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs, result_summary
    from hwprof.latency.table import read_table

    space, choices, _ = load_arch(args.arch)
    backend = get_backend(args.device, backend_options(args))
    meta = read_table(args.table).meta if args.table else None
    results, hello = measure_archs(space, [choices], backend, protocol=protocol_of(args),
                                   seed=args.seed, table_meta=meta)
    out = {"arch": args.arch, "space": space.name, "device": backend.label,
           "device_fingerprint": hello.get("fingerprint_id"), **result_summary(results[0])}
    if args.json:
        print_json(out)
    else:
        m = out["machine"] or {}
        print(f"{space.name} on {backend.label}: {out['latency_ms']:.3f} ms "
              f"(95% CI {out['latency_ci_low_ms']:.3f}-{out['latency_ci_high_ms']:.3f}) at "
              f"reference level {out['ref_level_ms']:.4f} ms ({out['level_source']}); raw median "
              f"{out['median_ms']:.3f} ms, n={out['n_samples']}"
              + (", unstable" if out["unstable"] else "")
              + f"; the machine moved {m.get('spread', float('nan')):.2f}x (reference p95/p5)")
    return 0
