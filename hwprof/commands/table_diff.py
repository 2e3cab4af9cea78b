"""Compare two tables op by op: the ratio B/A for every op both hold.

  hwprof table diff tables/cpu.parquet tables/pi.parquet
  hwprof table diff cpu.parquet pi.parquet --plot diff.png --top 5 --json

Prints the median and geometric-mean ratio, its spread (p10-p90), the median
ratio per op kind, and the ops furthest from the median ratio (those that do
not scale like the rest). --plot draws B against A and the ratio histogram.
Where both tables hold a reference level it prints both, and says so when they are one
device at two levels (the ratio then holds a common factor: `table merge --rescale`).
"""

VERB = "table diff"
HELP = "per-op latency ratio of two tables: summary, worst ops, plot"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument

    p.add_argument("a", help="the reference table (A)")
    p.add_argument("b", help="the table compared with it (B)")
    p.add_argument("--plot", metavar="PNG", help="also draw the comparison into this PNG")
    add_force_argument(p, "--plot")
    p.add_argument("--top", type=int, default=10, help="how many worst ops to list (default: 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import check_output, print_json
    from hwprof.latency.fleet import load_table
    from hwprof.latency.tableops import diff

    if args.plot:
        check_output(args.plot, [args.a, args.b], force=args.force, flag="--plot")
    result = diff(load_table(args.a), load_table(args.b), top=max(args.top, 0),
                  names=(args.a, args.b))
    res = result.summary
    if args.plot and res["common"]:
        from hwprof.latency.plots import plot_diff
        plot_diff(result, args.plot)
        res["plot"] = args.plot
    if args.json:
        print_json(res)
        return 0
    print(f"A = {args.a}\nB = {args.b}")
    print(f"common ops {res['common']}, only in A {res['only_a']}, only in B {res['only_b']}")
    if res.get("levels"):
        print(_levels_line(res["levels"], args.a, args.b))
    if not res["common"]:
        print("no op in common: nothing to compare")
        return 0
    s = res["spread"]
    print(f"ratio B/A  median {res['median_ratio']:.3g}, geometric mean {res['geomean_ratio']:.3g}, "
          f"p10-p90 {s['p10']:.3g}-{s['p90']:.3g}, min {s['min']:.3g}, max {s['max']:.3g}")
    print("per kind   " + ", ".join(f"{k} {v['median_ratio']:.3g} (n={v['n']})"
                                    for k, v in res["kinds"].items()))
    if res["worst"]:
        print("furthest from the median ratio:")
        for w in res["worst"]:
            print(f"  {w['ratio']:8.3g}x  {w['a_ms']:9.4g} ms -> {w['b_ms']:9.4g} ms  {w['kind']:8s} "
                  f"{_short(w['spec'])}")
    if res.get("plot"):
        print(f"plot       {res['plot']}")
    return 0


def _levels_line(lv: dict, a: str, b: str) -> str:
    def one(ms, e):
        return f"{ms:.4g} ms (elasticity {'per op' if e is None else f'{e:g}'})"
    line = f"levels     A {one(lv['a_ms'], lv['a_elasticity'])}, B {one(lv['b_ms'], lv['b_elasticity'])}"
    if lv["same_device"] and not lv["same_level"]:
        line += (f": one device at two reference levels, so the ratio holds a common factor; "
                 f"`hwprof table merge {a} {b} --rescale --on-conflict keep-last` carries B's "
                 f"rows to A's level")
    return line


def _short(spec: dict) -> str:
    skip = ("kind", "dtype", "layout", "input")
    inp = "x".join(str(d) for d in spec["input"])
    return inp + " " + " ".join(f"{k}={v}" for k, v in spec.items() if k not in skip)
