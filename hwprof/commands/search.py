"""Search the most accurate architecture of a space whose latency fits a budget.

Latencies come from a table (and a predictor where the table has no row);
the search itself never touches the device. At the end the derived network
is retrained briefly, exported as model.nnp, and measured end to end on the
table's device when that device is reachable from here.

  hwprof search --table tables/cpu.parquet --space mbv2-mini --latency-budget 2ms --data mnist
  hwprof search --table tables/cpu.parquet --latency-budget 500us --algo darts --out runs/d
  hwprof search --table t.parquet --latency-budget 0.002s --data my_data.npz

Writes OUT/arch.json, OUT/model.nnp, OUT/report.json, OUT/arch_probs.png and
OUT/latency.png.
"""

VERB = "search"
HELP = "search an architecture under a latency budget (DARTS or ProxylessNAS)"
DEFAULT_EPOCHS = {"proxyless": 12, "darts": 5}


def add_arguments(p):
    p.add_argument("--table", metavar="PATH", help="latency table (Parquet) of the target device")
    p.add_argument("--predictor", metavar="FILE",
                   help="predictor file (hwprof fit) for ops the table lacks")
    p.add_argument("--latency-budget", required=True, metavar="T",
                   help="latency budget of the whole network: 20ms, 500us, 0.02s, or 'mid' for the "
                        "middle of the space's estimated range (fastest to slowest architecture)")
    p.add_argument("--space", default="mbv2-mini", metavar="NAME",
                   help="search space (default: mbv2-mini; see `hwprof spaces`)")
    p.add_argument("--algo", default="proxyless", choices=("proxyless", "darts"),
                   help="search algorithm (default: proxyless)")
    p.add_argument("--data", default="mnist", metavar="SRC",
                   help="mnist (MNIST 5k, offline), digits (scikit-learn, tiny) or a .npz file "
                        "with x_train, y_train[, x_val, y_val] (default: mnist)")
    p.add_argument("--out", default="runs/search", metavar="DIR",
                   help="output folder (default: runs/search)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="search epochs (default: 12 for proxyless, 5 for darts, whose epochs "
                        "train every candidate)")
    p.add_argument("--retrain-epochs", type=int, default=4, metavar="N",
                   help="epochs to retrain the derived network (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--latency-loss", default="hinge", choices=("hinge", "mul#log", "add#linear"),
                   help="how latency enters the loss (default: hinge on E/B - 1)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="batch size (default: 64)")
    p.add_argument("--min-fill", type=float, default=0.9, metavar="FRAC",
                   help="prefer derived architectures estimated at >= FRAC x budget (default: 0.9)")
    p.add_argument("--no-measure", action="store_true",
                   help="do not measure the result on the device")


def load_model(table, predictor):
    from hwprof.errors import UserError
    if not table and not predictor:
        raise UserError("give --table (a latency table of the target device) and/or --predictor")
    from hwprof.latency.loading import load_latency_model
    return load_latency_model(table, predictor)


def table_device(table_path) -> str | None:
    """The device label the table was measured on (its ``device`` column), if one."""
    if not table_path:
        return None
    from hwprof.latency.table import read_table
    df = read_table(table_path).df
    labels = sorted(set(df.loc[df["status"] == "ok", "device"].dropna()))
    return labels[0] if len(labels) == 1 else None


def measure_end_to_end(device: str, spec, notes: list, fingerprint: str | None = None,
                       table_meta: dict | None = None):
    """Latency (ms) of one ``sequence`` spec on ``device`` at the table's reference level;
    None (with a note) if unreachable.

    A device whose fingerprint differs from the table's is not measured.
    """
    from hwprof.errors import UserError
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_specs
    try:
        results, _ = measure_specs([spec], get_backend(device), expect_fingerprint=fingerprint,
                                   table_meta=table_meta)
    except (UserError, OSError) as e:
        notes.append(f"not measured on {device}: {e}")
        return None
    return float(results[0]["latency_ms"])


def _table_meta(table_path) -> dict | None:
    from hwprof.latency.table import read_table
    return read_table(table_path).meta if table_path else None


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
    from hwprof.search.runner import run_search

    mid = args.latency_budget.strip().lower() == "mid"
    budget = None if mid else duration_ms(args.latency_budget)
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.algo]
    if args.epochs < 1 or args.retrain_epochs < 0 or args.batch_size < 1:
        from hwprof.errors import UserError
        raise UserError("--epochs and --batch-size must be >= 1, --retrain-epochs >= 0")
    space = get_space(args.space)
    model = load_model(args.table, args.predictor)
    if mid:
        budget = mid_budget(space, model)
        print(f"budget 'mid': {budget:.3f} ms, halfway between the fastest and the slowest "
              f"architecture's estimate")
    data = load_data(args.data, space.input, space.classes, seed=args.seed)
    print(f"data {data.name}: {data.sizes()}; " + "; ".join(data.notes))
    device = None if args.no_measure else table_device(args.table)
    notes: list[str] = []
    if not args.no_measure and device is None:
        notes.append("no single device label in the table; not measured")
    meta = _table_meta(args.table) if device else None
    measure = (lambda spec: measure_end_to_end(device, spec, notes, model.device_fingerprint,
                                               meta)) if device else None
    report = run_search(space, model, data, budget, args.out, algo=args.algo, epochs=args.epochs,
                        retrain_epochs=args.retrain_epochs, seed=args.seed,
                        loss_form=args.latency_loss, batch=args.batch_size, min_fill=args.min_fill,
                        measure=measure, extra_report={"table": args.table, "device": device,
                                                       "predictor": args.predictor,
                                                       "measure_notes": notes})
    for n in notes:
        print(f"note: {n}")
    m = report["measured_ms"]
    print(f"chosen architecture: {' '.join(report['choices'])}")
    print(f"predicted {report['predicted_ms']:.3f} ms, measured "
          f"{'n/a' if m is None else f'{m:.3f} ms'}, budget {budget:.3f} ms; test accuracy "
          f"{report['test_accuracy']:.4f}; search {report['search_seconds']:.1f} s")
    print(f"wrote {args.out}/arch.json, model.nnp, report.json, arch_probs.png, latency.png")
    return 0
