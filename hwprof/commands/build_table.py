"""Measure ops on a device into a Parquet latency table.

The ops come from a search space (--space, default mbv2-cifar), an ops file
(--ops: JSON lines or a JSON array of op specs) or random realistic
configurations (--sample N, optionally --kinds and --adaptive). Every result is
checkpointed into --out as it arrives: an interrupted build (Ctrl-C, kill -9,
dropped link) is resumed by running the same command again, and ops already in
the table are not measured again unless --remeasure is given. Error rows are
retried.

  hwprof build-table --device cpu --space mbv2-cifar --out tables/cpu.parquet
  hwprof build-table --device cpu --ops my_ops.json --out my.parquet
  hwprof build-table --device cuda:0 --runtime torch --space mbv2-cifar --out tables/gpu.parquet
  hwprof build-table --device ssh://pi@b1 --device ssh://pi@b2 --out tables/pi.parquet
"""

VERB = "build-table"
HELP = "measure ops on a device into a latency table"


def add_arguments(p):
    from hwprof.commands._common import add_backend_arguments, add_protocol_arguments
    _add_what_arguments(p)
    _add_pass_arguments(p)
    _add_output_arguments(p)
    add_protocol_arguments(p)
    add_backend_arguments(p)


def _add_what_arguments(p):
    """Which device, and which ops: a space's, a file's, sampled configs or real layers."""
    p.add_argument("--device", action="append", metavar="DEVICE",
                   help="cpu (default), cuda[:N] or ssh://[user@]host[:port]; repeat to share "
                        "the work across boards of one kind")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--space", metavar="NAME|PATH",
                     help="measure every op the space's lookup table needs: a built-in name or "
                          "a space file (default: mbv2-cifar; see `hwprof spaces`)")
    src.add_argument("--ops", metavar="FILE", help="JSON lines or JSON array of op specs")
    src.add_argument("--sample", type=int, metavar="N",
                     help="measure N random configurations per kind, drawn from a prior of mobile CNN "
                          "layers")
    src.add_argument("--real-layers", nargs="?", const="all", metavar="NET1,NET2",
                     help="measure the conv2d/dwconv2d/mbconv layers of published CNNs (ResNet-18/50, "
                          "MobileNetV1/V2/V3, MnasNet, EfficientNet-B0, ShuffleNetV2; see "
                          "hwprof/latency/predictors/realnets.py): a held-out set for predictors")
    p.add_argument("--kinds", metavar="K1,K2",
                   help="op kinds for --sample (default: conv2d,dwconv2d,mbconv)")
    p.add_argument("--adaptive", action="store_true",
                   help="with --sample and --predictor: draw the N configs near those the "
                        "predictor gets most wrong")
    p.add_argument("--predictor", metavar="FILE",
                   help="predictor file for --adaptive (without one, --adaptive needs --minutes and "
                        "learns from the rows as they are measured)")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="time budget for measuring: no new group of ops is started once M minutes "
                        "have passed (or would pass during it); rows measured are kept. With "
                        "--sample --adaptive (no --predictor) the configurations are chosen in "
                        "rounds, half where a model of the rows so far is least sure")


def _add_pass_arguments(p):
    """How many times each op is measured: sweeps, extra sweeps for disagreeing rows."""
    from hwprof.latency.backends.agent.protocol import BUILD_EXTRA_PASSES, BUILD_PASSES
    from hwprof.latency.passes import PASS_SE
    p.add_argument("--passes", type=int, metavar="K",
                   help="measure every op K times, in K sweeps over the ops, each in a fresh "
                        "agent process (later sweeps in a shuffled order); a row's latency is the "
                        "geometric mean of the lower half of its passes: an op's latency moves "
                        "from one process to the next, a few per cent for most ops and to a "
                        "slow level 5-15 %% up for some, now and then. A table built with fewer passes "
                        "gets only the passes it lacks "
                        f"(default: {BUILD_PASSES} for a space's table; 1 with --quick, "
                        "--sample or --real-layers, where more ops beat more passes)")
    p.add_argument("--extra-passes", type=int, metavar="E",
                   help="after the --passes sweeps, up to E more, one at a time and each in a "
                        "fresh process, for the ops whose passes still disagree: those whose "
                        "passes scatter with a standard error (of their mean log latency) above "
                        f"--pass-se (default: {BUILD_EXTRA_PASSES} when an op is measured in 2 "
                        "passes or more, as a space's table is; 0 with --quick or one pass, as "
                        "--sample and --real-layers are unless --passes says otherwise)")
    p.add_argument("--pass-se", type=float, default=PASS_SE, metavar="FRAC",
                   help="the standard error of a row's passes above which --extra-passes "
                        f"measures it again (default: {PASS_SE:g}, i.e. {100 * PASS_SE:g} %%)")


def _add_output_arguments(p):
    """Where rows go and how the build behaves: the table file, batch, level, report."""
    p.add_argument("--batch", type=int, metavar="N", help="override the space's batch size")
    p.add_argument("--out", metavar="PATH",
                   help="table file (default: tables/<device>-<space>.parquet)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for random inputs and sampling (default: 0)")
    p.add_argument("--remeasure", action="store_true",
                   help="measure again ops already in the table (rows are replaced)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="allow devices with different fingerprints in one build, or rows of "
                        "another runtime (nnabla/torch) for the same device in one table")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")
    p.add_argument("--group-ops", type=int, default=None, metavar="N",
                   help="ops measured together, interleaved, in one group (at most; default: "
                        "100, and about 1 GiB of tensors and convolution workspace); rows reach "
                        "the table group by group")
    p.add_argument("--reference-from", metavar="TABLE",
                   help="a new table adopts this table's reference level, and the elasticity "
                        "its op samples are carried there with, so the two tables' latencies "
                        "are comparable row by row (default: the centre of the reference op's "
                        "fastest state holding >= 25 %% of its samples over the first group of "
                        "ops, and with --passes >= 2 an elasticity fitted on the build's own "
                        "passes); an existing --out table keeps its own level, and the build "
                        "says so (`hwprof table rescale` carries a table to another's level)")


def _specs(args):
    from pathlib import Path

    from hwprof.errors import UserError
    from hwprof.latency.specs import read_ops_file, unique

    if args.ops:
        path = Path(args.ops)
        return unique(read_ops_file(path)), path.stem
    if args.real_layers:
        from hwprof.latency.predictors.realnets import real_layers
        nets = None if args.real_layers == "all" else [
            n.strip() for n in args.real_layers.split(",") if n.strip()]
        kinds = None
        if args.kinds:
            from hwprof.latency.sampling import parse_kinds
            kinds = parse_kinds(args.kinds)
        return [s for _, s in real_layers(nets, **({"kinds": kinds} if kinds else {}))], "real"
    if args.sample is not None:
        if args.sample < 1:
            raise UserError("--sample must be at least 1")
        from hwprof.latency.sampling import parse_kinds, sample_specs
        kinds = parse_kinds(args.kinds)
        if args.adaptive:
            if not args.predictor:
                if args.minutes is None:
                    raise UserError("--adaptive needs --predictor FILE (the model to improve) or "
                                    "--minutes M (learn from the rows as they are measured)")
                return None, "adaptive"
            from hwprof.latency.predictors.adaptive import adaptive_specs
            return adaptive_specs(args.predictor, args.sample, kinds, args.seed), "adaptive"
        return sample_specs(args.sample, kinds, args.seed), "sample"
    if args.kinds or args.adaptive:
        raise UserError("--kinds and --adaptive go with --sample N (--kinds also with "
                        "--real-layers)")
    from hwprof.latency.spaces import get_space
    space = get_space(args.space or "mbv2-cifar", batch=args.batch)
    return space.table_specs(), space.name


def _reference_from(path, protocol: dict) -> tuple[float, float | None, dict]:
    """The one reference level of another table (--reference-from), the elasticity its rows
    are carried with (None: the protocol's), and ``protocol`` asking for the reference op
    that table was measured against."""
    from hwprof.errors import UserError
    from hwprof.latency.reference import protocol_for
    from hwprof.latency.table import read_table
    meta = read_table(path).meta
    levels = (meta.get("reference") or {}).get("levels") or {}
    if len(levels) != 1:
        raise UserError(f"--reference-from {path}: the table holds {len(levels)} reference levels "
                        f"(one per device and environment); it needs exactly one")
    entry = next(iter(levels.values()))
    e = entry.get("elasticity")
    return (float(entry["level_ms"]), None if e is None else float(e),
            protocol_for(meta, protocol))


def _default_passes(args) -> None:
    """--passes and --extra-passes where not given: a space's table gets BUILD_PASSES sweeps
    and BUILD_EXTRA_PASSES more for unsettled ops; quick, sampled and real-layer tables one.
    A sampled or real-layer table asked for several passes gets the extra passes too: its
    passes are meant to settle its rows (2026-12-05: an ONNX Runtime 2-thread table of 200
    sampled ops in 3 passes had one pass far from the level, and one op's passes agreed
    within +-10 % for 71 % of pairs; with up to 4 extra passes, 87.5 %)."""
    from hwprof.latency.backends.agent.protocol import BUILD_EXTRA_PASSES, BUILD_PASSES
    quick = getattr(args, "quick", False)
    one = quick or args.sample or args.real_layers
    if args.passes is None:
        args.passes = 1 if one else BUILD_PASSES
    if args.extra_passes is None:
        args.extra_passes = 0 if quick or args.passes < 2 else BUILD_EXTRA_PASSES


def run(args):
    import re

    import pandas as pd

    from hwprof.commands._common import backend_options, print_json
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.build import build_table

    if args.minutes is not None and args.minutes <= 0:
        from hwprof.errors import UserError
        raise UserError(f"--minutes must be positive, got {args.minutes:g}")
    _default_passes(args)
    devices = args.device or ["cpu"]
    if len(set(devices)) != len(devices):
        from hwprof.errors import UserError
        raise UserError("the same --device is given twice")
    backends = [get_backend(d, backend_options(args)) for d in devices]
    specs, name = _specs(args)
    out = args.out or "tables/{}-{}.parquet".format(
        re.sub(r"[^A-Za-z0-9_.-]+", "_", backends[0].label.split("@")[-1]), name)
    options = _build_options(args)
    started = pd.Timestamp.now(tz="UTC")
    if specs is None:
        report = _budget_rounds(args, backends, out, options)
    else:
        report = build_table(specs, backends, out, **options)
    if args.json:
        print_json(report.as_dict())
    elif not args.quiet:
        _print_report(args, report, out, started)
    return 0


def _build_options(args) -> dict:
    """build_table's keyword arguments from the command line: the protocol, an adopted
    reference level and elasticity, passes, and the deadline of --minutes."""
    from hwprof.commands._common import protocol_of

    protocol = protocol_of(args)
    level = elasticity = None
    if args.reference_from:
        level, elasticity, protocol = _reference_from(args.reference_from, protocol)
    options = dict(seed=args.seed, protocol=protocol, remeasure=args.remeasure, quiet=args.quiet,
                   allow_mixed=args.allow_mixed, passes=args.passes, reference_level_ms=level,
                   reference_elasticity=elasticity,
                   extra_passes=args.extra_passes, max_pass_se=args.pass_se,
                   **({"group_ops": args.group_ops} if args.group_ops else {}))
    if args.minutes is not None:
        import time
        options["deadline"] = time.monotonic() + 60.0 * args.minutes
    return options


def _print_report(args, report, out: str, started) -> None:
    """What the build did, how far the machine moved, a note where the adopted level was
    never reached, and the table's summary."""
    from hwprof.commands.table_show import format_summary
    from hwprof.latency.table import read_table

    share = report.sampled_s / report.wall_s if report.wall_s else 0.0
    what = (f"made {report.measured} measurement(s) of ops in {report.passes} passes, each "
            f"pass in a fresh agent process" if report.passes > 1
            else f"measured {report.measured} op(s)")
    print(f"{what} ({report.errors} errors), skipped "
          f"{report.skipped} already in the table, in {report.wall_s:.1f} s "
          f"({100 * share:.0f} % of it timing ops, the rest mostly the reference beside them)")
    if report.extra_ops:
        print(f"extra passes: {report.extra_ops} more measurement(s) of ops whose passes "
              f"disagreed")
    if report.not_started:
        print(f"the {args.minutes:g}-minute budget was spent: {report.not_started} op(s) "
              f"not measured")
    if report.machine:
        m = report.machine
        print(f"the machine moved {m['spread']:.2f}x while measuring (reference p5 "
              f"{m['p5_ms']:.4f} ms, p95 {m['p95_ms']:.4f} ms); latencies are at the "
              f"table's reference level {report.reference_level_ms:.4f} ms"
              + (f", op samples carried to it with elasticity "
                 f"{report.reference_elasticity:g}"
                 if report.reference_elasticity is not None else ""))
    table = read_table(out)
    note = unreached_level_note(report, table.df, started)
    if note:
        print(f"note: {note}")
    summary = table.summary()
    summary["path"] = out
    print(format_summary(summary))


UNREACHED = 0.9  # this share of a build's rows not bracketing the level: say why


def unreached_level_note(report, df, started) -> str | None:
    """When the reference stayed on one side of the table's level for the whole build (an
    adopted level this machine no longer reaches) and nearly none of the build's rows
    bracketed it, say what that cost: those ops could not stop before their time cap or
    sample limit."""
    m, level = report.machine, report.reference_level_ms
    if not m or not level or not m.get("p5_ms") or not m.get("p95_ms"):
        return None
    lo, hi = m["p5_ms"], m["p95_ms"]
    if lo <= level <= hi or "bracketed" not in df:
        return None
    new = df[(df["status"] == "ok") & (df["measured_at"] >= started) & df["bracketed"].notna()]
    share = float((~new["bracketed"].astype(bool)).mean()) if len(new) else 0.0
    if share < UNREACHED:
        return None
    side = "faster" if hi < level else "slower"
    return (f"the reference ran {side} than the table's level all along ({lo:.4f}-{hi:.4f} "
            f"ms, p5-p95, against {level:.4f} ms): every op sample was carried to the level by "
            f"extrapolation, and the {100 * share:.0f} % of ops whose samples could not "
            f"bracket it were sampled until their time cap or sample limit (fewer ops per "
            f"minute). A build at a level this machine reaches now (without --reference-from) "
            f"avoids the caps; `hwprof table rescale` then carries its rows to the old level")


def _budget_rounds(args, backends, out, options):
    """--sample N --minutes M --adaptive: rounds chosen where a model of the rows is unsure."""
    import sys
    import time
    from pathlib import Path

    from hwprof.latency.build import BuildReport, build_table
    from hwprof.latency.machine import merge_movements
    from hwprof.latency.predictors.adaptive import BudgetRounds, run_budget_rounds
    from hwprof.latency.sampling import parse_kinds
    from hwprof.latency.table import read_table

    kinds = parse_kinds(args.kinds)
    rounds = BudgetRounds(args.sample, kinds, args.seed, batch=args.group_ops or 100)
    total = BuildReport(out=str(out), requested=0, skipped=0, passes=args.passes)
    t0 = time.monotonic()
    moved = []  # each round's machine movement

    def measured():
        if not Path(out).exists():
            return {}
        df = read_table(out).df
        ok = df[(df["status"] == "ok") & df["latency_ms"].notna()]
        return {k: dict(zip(g["signature"], g["latency_ms"].astype(float)))
                for k, g in ok.groupby("kind")}

    def measure(specs):
        r = build_table(specs, backends, out, **options)
        for k in ("requested", "skipped", "measured", "errors", "reconnects", "sampled_s",
                  "groups", "not_started"):
            setattr(total, k, getattr(total, k) + getattr(r, k))
        moved.append(r.machine)
        total.reference_level_ms, total.machine, total.devices = (
            r.reference_level_ms, merge_movements(moved), r.devices)
        total.reference_elasticity = r.reference_elasticity
        total.elasticity = total.elasticity or r.elasticity

    log = None if args.quiet else (lambda m: print(f"hwprof: {m}", file=sys.stderr))
    run_budget_rounds(rounds, measure, measured, options["deadline"], log=log)
    total.wall_s = time.monotonic() - t0
    return total
