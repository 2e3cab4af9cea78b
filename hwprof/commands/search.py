"""Search the most accurate architecture of a space whose latency fits a budget.

Latencies come from a table (and a predictor where the table has no row);
the search itself never touches the device. When the table's device is
reachable from here (a local cpu or cuda table, an ssh:// board):

- a table without a calibration for the space is calibrated first: a few
  random architectures are measured end to end and the fit is stored in the
  table, so the search derives against the whole network's estimate;
- the derived network is measured end to end (closed loop); over the budget,
  or far under it, it is derived again against a target corrected by what was
  measured, for at most --max-rounds rounds. The answer is a network measured
  within the budget; if none is, nothing is exported and the exit code is 3
  (--allow-over-budget keeps the fastest one);
- the networks the loop measured at the table's level join the table's
  calibration (refitted and stored), so the next search on the table starts
  from a better estimate (--no-calibration-update keeps it as it was).

With --no-device, a predictor alone, or an imported table (a device hwprof
cannot reach), the budget is checked against the latency model's estimate only.

  hwprof search --table tables/cpu.parquet --space mbv2-mini --latency-budget 2ms --data mnist
  hwprof search --table tables/cpu.parquet --latency-budget 500us --algo darts --out runs/d
  hwprof search --table t.parquet --latency-budget mid --algo fbnet --strategy-option tau0=3
  hwprof search --table t.parquet --latency-budget mid --algo evolution --executor ray
  hwprof search --table t.parquet --latency-budget mid --param-budget 150k --memory-budget 1MB
  hwprof search --table t.parquet --latency-budget 0.002s --data my_data.npz --no-device

The strategy (--algo) is any registered one (listed at the end of this help):
one-shot strategies train a supernet with the latency term, multi-trial ones
score architectures the latency model puts within the budget; third-party
strategies plug in through the entry-point group hwprof.strategies. Whatever
the strategy, its answer goes through the same derivation and closed loop.

Writes OUT/arch.json, OUT/model.nnp, OUT/report.json (every round of the loop,
every constraint with its value and slack), OUT/arch_probs.png, OUT/latency.png
and, when networks were measured, OUT/loop.png (each measured network's
measured / budget against its estimate, round by round, the answer ringed).
"""

EXIT_OVER_BUDGET = 3

VERB = "search"
HELP = "search an architecture under a latency budget (one-shot or multi-trial strategies)"


def add_arguments(p):
    _add_input_arguments(p)
    _add_budget_arguments(p)
    _add_strategy_arguments(p)
    from hwprof.commands._common import add_protocol_arguments
    from hwprof.latency.backends.agent.protocol import SEARCH_MIN_SPAN_S
    add_protocol_arguments(p, "network", min_span=SEARCH_MIN_SPAN_S)
    p.epilog = strategies_epilog()


def _add_input_arguments(p):
    """The table (and predictor) of the device, the space, the data, the output folder."""
    p.add_argument("--table", metavar="PATH", help="latency table (Parquet) of the target device")
    p.add_argument("--predictor", metavar="FILE",
                   help="predictor file (hwprof fit) for ops the table lacks")
    p.add_argument("--space", default="mbv2-mini", metavar="NAME|PATH",
                   help="search space: a built-in name or a space file (default: mbv2-mini; "
                        "see `hwprof spaces`)")
    p.add_argument("--data", default="mnist", metavar="SRC",
                   help="mnist (MNIST 5k, offline), digits (scikit-learn, tiny) or a .npz file "
                        "with x_train, y_train[, x_val, y_val] (default: mnist)")
    p.add_argument("--out", default="runs/search", metavar="DIR",
                   help="output folder (default: runs/search)")


def _add_budget_arguments(p):
    """The budgets, and how the closed loop and the calibration check them on the device."""
    p.add_argument("--latency-budget", required=True, metavar="T",
                   help="latency budget of the whole network: 20ms, 500us, 0.02s, or 'mid' for the "
                        "middle of the space's estimated range (fastest to slowest architecture)")
    from hwprof.search.closedloop import MIN_FILL
    p.add_argument("--min-fill", type=float, default=MIN_FILL, metavar="FRAC",
                   help="the plain derivation prefers architectures estimated at >= FRAC x "
                        f"budget; the loop's other rungs aim 0.93-1.07 x (default: {MIN_FILL})")
    p.add_argument("--param-budget", type=_count, metavar="N",
                   help="most parameters of the network: 2.5M, 800k, 120000")
    p.add_argument("--memory-budget", type=_size, metavar="SIZE",
                   help="most peak activation memory of a forward pass (from the op specs, batch "
                        "included): 4MB, 512kB, 1GiB")
    p.add_argument("--max-rounds", type=int, default=4, metavar="N",
                   help="closed loop: most derive-and-measure rounds (default: 4)")
    p.add_argument("--allow-over-budget", action="store_true",
                   help="when no round is measured within the budget, export the fastest measured "
                        "network anyway (exit 0) instead of exiting with code 3")
    p.add_argument("--calibrate-archs", type=int, default=6, metavar="N",
                   help="random architectures measured to calibrate a table that has no "
                        "calibration for the space (default: 6)")
    p.add_argument("--no-calibration-update", action="store_true",
                   help="keep the table's calibration as it is (by default the networks the loop "
                        "measured at the table's level are added to it and it is refitted)")
    p.add_argument("--no-device", "--no-measure", dest="no_device", action="store_true",
                   help="never use the device: no calibration, no end-to-end check; the budget "
                        "is checked against the latency model only")


def _add_strategy_arguments(p):
    """Which strategy searches, with which options, for how many epochs."""
    p.add_argument("--algo", "--strategy", dest="algo", default="proxyless", metavar="NAME",
                   help="search strategy (default: proxyless): "
                        + ", ".join(n for n, _, _ in _strategies()) + " (see below)")
    p.add_argument("--strategy-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the strategy, e.g. tau0=5 or population=20; repeatable "
                        "(a key the strategy does not read is refused with the valid ones)")
    p.add_argument("--evaluator", default=None, metavar="NAME",
                   help="how multi-trial strategies score candidates (default: the strategy's)")
    p.add_argument("--executor", default="local", metavar="WHERE",
                   help="where multi-trial strategies evaluate candidates: local (worker "
                        "processes, default), ray (a local Ray) or ray://host:port (a cluster)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of --executor local for multi-trial strategies "
                        "(default: one per CPU; 1 evaluates in this process)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="the search's compute budget in training epochs over the search data "
                        "(default: the strategy's: 12 for proxyless, 5 for darts and fbnet, "
                        "whose steps compute every candidate)")
    p.add_argument("--retrain-epochs", type=int, default=4, metavar="N",
                   help="epochs to retrain the derived network (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--latency-loss", default="hinge", choices=("hinge", "mul#log", "add#linear"),
                   help="how latency enters the loss (default: hinge on E/B - 1)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="batch size (default: 64)")


def _strategies() -> list:
    """(name, kind, line) of each registered strategy, without importing any of them."""
    from hwprof.search.registry import describe_strategies
    return describe_strategies()


def strategies_epilog() -> str:
    width = max(len(n) for n, _, _ in _strategies())
    lines = [f"  {n:{width}s}  {k:11s}  {d}" for n, k, d in _strategies()]
    return ("search strategies (--algo; plug-ins: entry-point group hwprof.strategies):\n"
            + "\n".join(lines))


def parse_options(pairs) -> dict:
    """``["k=v", ...]`` of --strategy-option as a dict; a UserError for a pair without '='."""
    from hwprof.errors import UserError
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--strategy-option {pair!r}: expected KEY=VALUE, e.g. tau0=5")
        out[key.strip()] = value.strip()
    return out


def _count(text):
    from hwprof.commands._common import count
    return _as_type_error(count, text)


def _size(text):
    from hwprof.commands._common import size_bytes
    return _as_type_error(size_bytes, text)


def _as_type_error(parse, text):
    import argparse

    from hwprof.errors import UserError
    try:
        return parse(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def load_model(table, predictor):
    from hwprof.errors import UserError
    if not table and not predictor:
        raise UserError("give --table (a latency table of the target device) and/or --predictor")
    from hwprof.commands._common import print_level_note
    from hwprof.latency.loading import load_latency_model
    model = load_latency_model(table, predictor)
    print_level_note(model)
    return model


def table_device(table_path) -> str | None:
    """The device label the table was measured on (its ``device`` column), if one."""
    if not table_path:
        return None
    from hwprof.latency.table import read_table
    return _device_label(read_table(table_path))


def _device_label(table) -> str | None:
    df = table.df
    labels = sorted(set(df.loc[df["status"] == "ok", "device"].dropna()))
    return labels[0] if len(labels) == 1 else None


def _imported_sources(table) -> list[str]:
    ok = table.df[table.df["status"] == "ok"]
    return sorted({str(s) for s in ok["source"].fillna("unknown") if s != "measured"})


ONLY_ESTIMATE = "the budget is checked against the latency model's estimate only"


def device_for(args, table) -> tuple[str | None, str | None]:
    """(the device to calibrate and measure on, or None; why not)."""
    if args.no_device:
        return None, f"--no-device: no calibration, no end-to-end measurement; {ONLY_ESTIMATE}"
    if table is None:
        return None, (f"no table: the predictor's device is not known here, so nothing is "
                      f"measured; {ONLY_ESTIMATE}")
    imported = _imported_sources(table)
    if imported:
        return None, (f"the table was imported ({', '.join(imported)}), not measured by hwprof: "
                      f"its device cannot be reached from here, so there is no calibration and "
                      f"no end-to-end check; the budget is checked against the table only")
    device = _device_label(table)
    if device is None:
        return None, f"no single device label in the table, so nothing is measured; {ONLY_ESTIMATE}"
    return device, None


class DeviceMeasure:
    """``measure(spec) -> ms | None`` for the search: one network end to end on ``device``, at
    the table's reference level; None (with a note) when the device cannot be reached.

    A device whose fingerprint differs from the table's is not measured. ``results`` keeps each
    measurement's figures (CI, how far the machine moved).
    """

    def __init__(self, device: str, fingerprint: str | None = None,
                 table_meta: dict | None = None, protocol: dict | None = None,
                 notes: list | None = None):
        self.device, self.fingerprint = device, fingerprint
        self.table_meta, self.protocol = table_meta, protocol
        self.notes = notes if notes is not None else []
        self.results: list[dict] = []

    def __call__(self, specs: list) -> list[float] | None:
        """Latencies (ms) of ``specs`` (whole networks), measured side by side in one group;
        None when the device could not measure them (the reason is in ``notes``)."""
        from hwprof.errors import UserError
        from hwprof.latency.backends.registry import get_backend
        from hwprof.latency.endtoend import measure_specs, result_summary
        try:
            results, _ = measure_specs(list(specs), get_backend(self.device),
                                       expect_fingerprint=self.fingerprint,
                                       table_meta=self.table_meta, protocol=self.protocol)
        except (UserError, OSError) as e:
            self.notes.append(f"not measured on {self.device}: {e}")
            return None
        self.results += [result_summary(r) for r in results]
        return [float(r["latency_ms"]) for r in results]


def why_calibrate(model, space) -> str | None:
    """Why the search measures a calibration of ``space`` first (when it can reach the
    device): the table holds none, or one from an older agent; None: it holds a current one."""
    from hwprof.latency.calibrate import has_calibration, stale_calibration
    if not has_calibration(model, space):
        return (f"the table holds no calibration for {space.name}, and the sum of isolated ops "
                f"is often 5-30 % off a whole network")
    stale = stale_calibration(model, space)
    return f"the table's calibration for {space.name} is out of date ({stale})" if stale else None


def calibrate_if_needed(args, space, model, device: str, table) -> float:
    """Calibrate ``model`` for ``space`` on ``device`` unless the table has a current one;
    returns the seconds spent (0 when nothing was measured). Stores the fit in the table."""
    import sys
    import time

    from hwprof.commands._common import protocol_of
    from hwprof.errors import UserError
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.calibrate import attach, describe, measure_calibration, store_calibration
    why = why_calibrate(model, space)
    if why is None:
        print(f"calibration: the table holds one for {space.name}; the search derives against "
              f"the calibrated whole-network estimate")
        return 0.0
    print(f"calibration: {why}; measuring {args.calibrate_archs} random architecture(s) end to "
          f"end on {device} first (stored in the table, once per space)")
    t0 = time.perf_counter()
    progress = _progress(sys.stderr)
    try:
        cal, _, _ = measure_calibration(
            space, model, get_backend(device), archs=args.calibrate_archs, seed=args.seed,
            protocol=protocol_of(args), table_meta=table.meta,
            expect_fingerprint=model.device_fingerprint, progress=progress, log=print)
    except (UserError, OSError) as e:
        print(f"calibration: not measured on {device} ({e}); searching with the plain sum")
        return time.perf_counter() - t0
    attach(model, cal)
    try:
        where = store_calibration(cal, args.table)
        print(f"calibration: {describe(cal)}; stored in {where}")
    except (UserError, OSError) as e:
        print(f"calibration: {describe(cal)}; not stored ({e}), used for this run only")
    return time.perf_counter() - t0


def _progress(stream):
    """The agent's progress messages as one line that rewrites itself (on a terminal)."""
    if not stream.isatty():
        return None

    def show(msg: dict) -> None:
        if msg.get("phase") == "rounds":
            active = msg.get("active")
            stream.write(f"\r  sampling round {msg.get('round')}: {active} network(s) still "
                         f"sampling   " + ("\n" if not active else ""))
            stream.flush()
    return show


def mid_budget(space, model) -> float:
    from hwprof.search.latency_loss import LatencyTable2D
    lut = LatencyTable2D.from_model(space, model)
    ends = [[names[int(f(t))] for names, t in zip(lut.names, lut.ms)] for f in (min_index, max_index)]
    lo, hi = (float(model.estimate_arch(space, c)["estimate_ms"]) for c in ends)
    return (lo + hi) / 2


def min_index(t):
    return min(range(len(t)), key=lambda i: t[i])


def max_index(t):
    return max(range(len(t)), key=lambda i: t[i])


def run(args):
    from hwprof.commands._common import duration_ms
    from hwprof.latency.spaces import get_space
    from hwprof.search.data import load_data

    _check_args(args)
    space = get_space(args.space)
    model = load_model(args.table, args.predictor)
    table = _read(args.table)
    mid = args.latency_budget.strip().lower() == "mid"
    budget = None if mid else duration_ms(args.latency_budget)   # bad input fails first
    from hwprof.search.constraints import Constraints
    Constraints.from_space(space, args.param_budget, args.memory_budget)   # feasible at all?
    data = load_data(args.data, space.input, space.classes, seed=args.seed)
    print(f"data {data.name}: {data.sizes()}; " + "; ".join(data.notes))
    device, why = device_for(args, table)
    if why:
        print(f"note: {why}")
    if budget is not None and not (device and why_calibrate(model, space)):
        _check_reachable_budget(space, model, budget)   # (else after calibrating, in the search)
    cal_s = calibrate_if_needed(args, space, model, device, table) if device else 0.0
    if mid:   # the middle of the (calibrated, when it could be) estimated range
        budget = mid_budget(space, model)
        print(f"budget 'mid': {budget:.3f} ms, halfway between the fastest and the slowest "
              f"architecture's estimate")
    report = _run_search(args, space, model, data, budget, device, table, cal_s, why)
    return _summary(args, report, budget)


def _check_reachable_budget(space, model, budget: float) -> None:
    """A budget under the fastest architecture is refused before the search trains."""
    from hwprof.errors import UserError
    from hwprof.search.derive import fastest_ms
    from hwprof.search.latency_loss import LatencyTable2D
    from hwprof.search.runner import estimator
    fastest = fastest_ms(LatencyTable2D.from_model(space, model), estimator(space, model))
    if budget < fastest:
        raise UserError(f"the budget {budget:.4g} ms is below the fastest architecture of "
                        f"{space.name} ({fastest:.4g} ms by the latency model)")


def _check_args(args) -> None:
    from hwprof.errors import UserError
    from hwprof.search.runner import resolve_strategy
    args.options = parse_options(args.strategy_option)
    strategy = resolve_strategy(args.algo, args.options)   # unknown name or option: exit 2
    if args.workers is not None:
        if args.workers < 1:
            raise UserError(f"--workers must be >= 1, got {args.workers}")
        if "workers" in (getattr(strategy, "option_help", None) or {}):   # multi-trial ones
            args.options.setdefault("workers", str(args.workers))
    if args.epochs is None:
        args.epochs = strategy.default_epochs
    if args.epochs < 1 or args.retrain_epochs < 0 or args.batch_size < 1:
        raise UserError("--epochs and --batch-size must be >= 1, --retrain-epochs >= 0")
    if args.max_rounds < 1 or args.calibrate_archs < 1:
        raise UserError("--max-rounds and --calibrate-archs must be >= 1")


def _read(table_path):
    from hwprof.latency.table import read_table
    return read_table(table_path) if table_path else None


def _run_search(args, space, model, data, budget, device, table, cal_s, why) -> dict:
    import time

    from hwprof.commands._common import protocol_of
    from hwprof.search.runner import run_search, write_report

    meta = table.meta if table is not None else None
    measure = DeviceMeasure(device, model.device_fingerprint, meta, protocol_of(args)) \
        if device else None
    notes = measure.notes if measure else []
    t0 = time.perf_counter()
    report = run_search(space, model, data, budget, args.out, algo=args.algo, epochs=args.epochs,
                        strategy_options=args.options, evaluator=args.evaluator,
                        executor=args.executor,
                        retrain_epochs=args.retrain_epochs, seed=args.seed,
                        loss_form=args.latency_loss, batch=args.batch_size, min_fill=args.min_fill,
                        measure=measure, max_rounds=args.max_rounds,
                        allow_over_budget=args.allow_over_budget, param_budget=args.param_budget,
                        memory_budget=args.memory_budget,
                        extra_report={"table": args.table, "device": device,
                                      "predictor": args.predictor, "device_note": why,
                                      "measure_notes": notes, "calibration_seconds": cal_s})
    report["end_to_end"] = measure.results if measure else []
    if measure and not args.no_calibration_update:
        report["calibration_update"] = _update_calibration(args.table, space, model, report)
    report["wall_seconds"] = time.perf_counter() - t0 + cal_s
    report["check_share"] = (cal_s + report["measure_seconds"]) / report["wall_seconds"]
    write_report(args.out, report)
    for n in notes:
        print(f"note: {n}")
    return report


def _update_calibration(table_path, space, model, report: dict) -> dict | None:
    """Add the loop's networks measured at the table's level to the table's calibration of
    ``space`` and store it; what was done (None: nothing to add)."""
    from hwprof.errors import UserError
    from hwprof.latency.calibrate import describe, update_from_loop
    try:
        done = update_from_loop(table_path, space, model, report["rounds"], report["end_to_end"])
    except (UserError, OSError) as e:
        print(f"calibration: not updated with the loop's networks ({e})")
        return {"error": str(e)}
    if done is None:
        return None
    cal, added = done
    print(f"calibration: refitted with the loop's {added} network(s) measured at the table's "
          f"level: {describe(cal)}; stored in {table_path}")
    return {"added": added, "n": cal.n, "slope": cal.slope, "intercept": cal.intercept,
            "calibrated_rmspe": cal.calibrated_rmspe}


def _summary(args, report: dict, budget: float) -> int:
    import sys
    rounds = report["rounds"]
    if report["result"] == "over_budget":
        best = min(r["measured_ms"] for r in rounds if r["measured_ms"] is not None)
        print(f"hwprof: error: no network was measured within the budget {budget:.3f} ms in "
              f"{len(rounds)} round(s) (fastest {best:.3f} ms = {best / budget:.2f} x budget); "
              f"nothing exported; see {args.out}/report.json and loop.png (--allow-over-budget "
              f"keeps it, a larger --max-rounds or budget may fit)", file=sys.stderr)
        return EXIT_OVER_BUDGET
    m = report["measured_ms"]
    print(f"chosen architecture: {' '.join(report['choices'])}")
    print(f"predicted {report['predicted_ms']:.3f} ms, measured "
          f"{'n/a' if m is None else f'{m:.3f} ms'}, budget {budget:.3f} ms"
          + ("" if m is None else f" ({m / budget:.3f} x budget, round "
             f"{report['answer_round']} of {len(rounds)})")
          + f"; test accuracy {report['test_accuracy']:.4f}; search "
          f"{report['search_seconds']:.1f} s")
    if report["result"] == "over_budget_kept":
        print("warning: over the budget (kept by --allow-over-budget)", file=sys.stderr)
    elif m is None:
        print(f"note: not measured; {ONLY_ESTIMATE}")
    print(f"wrote {args.out}/arch.json, model.nnp, report.json, arch_probs.png, latency.png"
          + ("" if m is None else ", loop.png"))
    return 0
