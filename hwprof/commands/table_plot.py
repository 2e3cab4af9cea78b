"""Plot a table: latency against MACs, one panel per op kind (PNG), or with
--timeline how the reference op's level moved while the table was measured.

  hwprof table plot tables/cpu.parquet --out cpu.png
  hwprof table plot tables/fleet/ --out fleet.png      # one colour per device
  hwprof table plot tables/cpu.parquet --timeline --out machine.png
"""

VERB = "table plot"
HELP = "plot latency vs MACs per op kind (or the machine's timeline) into a PNG"


def add_arguments(p):
    from hwprof.commands._common import add_force_argument
    p.add_argument("table", help="a .parquet table or a fleet directory")
    p.add_argument("--out", required=True, help="the .png file to write")
    p.add_argument("--title", help="figure title")
    p.add_argument("--timeline", action="store_true",
                   help="draw the reference op's level over the table's builds instead")
    add_force_argument(p)


def run(args):
    from hwprof.commands._common import check_output
    from hwprof.latency.fleet import load_table
    from hwprof.latency.plots import plot_table, plot_timeline

    check_output(args.out, [args.table], force=args.force)
    table = load_table(args.table)
    if args.timeline:
        res = plot_timeline(table, args.out, title=args.title)
        print(f"wrote {res['out']} ({res['points']} points over {res['groups']} group(s))")
        return 0
    res = plot_table(table, args.out, title=args.title)
    print(f"wrote {res['out']} ({res['points']} ops in {res['kinds']} kinds)")
    return 0
