"""Plot a table: median latency against MACs, one panel per op kind (PNG).

  hwprof table plot tables/cpu.parquet --out cpu.png
  hwprof table plot tables/fleet/ --out fleet.png      # one colour per device
"""

VERB = "table plot"
HELP = "plot latency vs MACs per op kind into a PNG"


def add_arguments(p):
    p.add_argument("table", help="a .parquet table or a fleet directory")
    p.add_argument("--out", required=True, help="the .png file to write")
    p.add_argument("--title", help="figure title")


def run(args):
    from hwprof.latency.fleet import load_table
    from hwprof.latency.plots import plot_table

    res = plot_table(load_table(args.table), args.out, title=args.title)
    print(f"wrote {res['out']} ({res['points']} ops in {res['kinds']} kinds)")
    return 0
