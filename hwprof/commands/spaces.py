"""List the built-in search spaces: input shape, searchable layers, candidates,
and how many ops each one's lookup table needs.

  hwprof spaces
  hwprof spaces mbv2-mini
  hwprof spaces --json
"""

VERB = "spaces"
HELP = "list search spaces and their op counts"


def add_arguments(p):
    p.add_argument("name", nargs="?", help="show one space's layers in detail")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args):
    from hwprof.commands._common import print_json
    from hwprof.latency.spaces import get_space, space_names

    names = [args.name] if args.name else space_names()
    spaces = [get_space(n).describe() for n in names]
    if args.json:
        print_json({"spaces": spaces})
        return 0
    for s in spaces:
        print(f"{s['name']:<18} input {'x'.join(map(str, s['input']))}  "
              f"{len(s['layers'])} searchable layers  {s['n_table_ops']} table ops  "
              f"{s['n_architectures']:.3g} architectures")
        print(f"{'':<18} {s['description']}")
        if args.name:
            for lay in s["layers"]:
                print(f"  {lay['name']:<10} in {'x'.join(map(str, lay['input'][1:]))} -> "
                      f"{lay['out_channels']} stride {lay['stride']}: "
                      f"{', '.join(lay['candidates'])}")
    return 0
