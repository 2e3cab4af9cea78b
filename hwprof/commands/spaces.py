"""List search spaces, or check a space file: input shape, stages, searchable layers,
candidates, and how many ops each one's lookup table needs.

  hwprof spaces                               the built-in spaces, one line each
  hwprof spaces ofa-mbv3                      one space's stages and layers
  hwprof spaces ofa-mbv3:width_mult=1.0,resolution=192
  hwprof spaces --file my.yaml                validate a space file and describe it
  hwprof spaces --json

A space file (YAML or JSON; docs/SPACES.md) works wherever a built-in name
does: build-table, search, calibrate, estimate, export, table validate/filter.
A mistake in one is reported on one line naming the field
(``my.yaml: stages[2].stride: expected 1 or 2, got 3``), exit code 2.
"""

VERB = "spaces"
HELP = "list search spaces, or validate a space file, with their op counts"


def add_arguments(p):
    p.add_argument("name", nargs="?", metavar="NAME_OR_PATH",
                   help="show one space in detail: a built-in name or a space file, with "
                        "optional :key=value overrides (width_mult, resolution, divisor)")
    p.add_argument("--file", metavar="PATH",
                   help="validate this space file and show its stages, searchable layers, "
                        "candidate count and op count (ops its lookup table needs)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args):
    from hwprof.commands._common import print_json
    from hwprof.errors import UserError
    from hwprof.latency.spaces import get_space, space_names

    if args.file and args.name:
        raise UserError("give a space name or --file, not both")
    one = args.file or args.name
    names = [one] if one else space_names()
    spaces = [_summary(get_space(n)) for n in names]
    if args.json:
        print_json({"spaces": spaces} if not args.file else {"valid": True, **spaces[0]})
        return 0
    for s in spaces:
        _print(s, detail=bool(one))
    return 0


def _summary(space) -> dict:
    d = space.describe()
    d["n_candidates"] = sum(len(lay["candidates"]) for lay in d["layers"])
    d["n_fixed_ops"] = len(space.fixed_specs)
    return d


def _print(s: dict, detail: bool) -> None:
    print(f"{s['name']:<26} input {'x'.join(map(str, s['input']))}  "
          f"{len(s['layers'])} searchable layers  {s['n_candidates']} candidates  "
          f"{s['n_table_ops']} table ops  {s['n_architectures']:.3g} architectures")
    print(f"{'':<26} {' '.join(s['description'].split())}")
    if not detail:
        return
    p = s["params"]
    print(f"  params: width_mult {p['width_mult']}, divisor {p['divisor']}"
          + (f", resolution {p['resolution']}" if p["resolution"] else ""))
    for st in s["stages"]:
        lo, hi = st["depth"]
        depth = f"depth {lo}" if lo == hi else f"depth {lo}-{hi}"
        print(f"  {st['name']:<10} {st['out_channels']:>5} ch  stride {st['stride']}  {depth}  "
              f"{st['act']}{'  SE' if st['se'] else ''}")
    for lay in s["layers"]:
        print(f"  {lay['name']:<10} in {'x'.join(map(str, lay['input'][1:]))} -> "
              f"{lay['out_channels']} stride {lay['stride']}: {', '.join(lay['candidates'])}")
