"""Summarise a latency table: rows, devices, runtimes, kinds, errors,
unstable rows, latency range and the protocol it was measured with.

  hwprof table show tables/cpu.parquet
  hwprof table show tables/cpu.parquet --json
  hwprof table show tables/fleet/          # a fleet directory: every device in it
"""

VERB = "table show"
HELP = "summarise a latency table"
GROUP_HELP = "inspect and combine latency tables"


def add_arguments(p):
    p.add_argument("path", help="a .parquet table, or a fleet directory (partitioned by device)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
    from hwprof.commands._common import print_json
    from hwprof.latency.fleet import load_table

    summary = load_table(args.path).summary()
    summary["path"] = args.path
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def format_summary(s: dict) -> str:
    from hwprof.latency.table import SCHEMA_VERSION

    version = f"schema v{s['schema_version']}"
    if s["schema_version"] != SCHEMA_VERSION:
        version += f" on disk, read as v{SCHEMA_VERSION}; rewritten as v{SCHEMA_VERSION} when saved"
    lines = [f"{s['path']}  ({version}, {s['rows']} rows: {s['ok']} ok, "
             f"{s['errors']} errors, {s['unstable']} unstable)"]
    for d in s["devices"]:
        hw = d.get("gpu_name") or d.get("board_model") or d.get("cpu_model") or "?"
        lines.append(f"device    {d['fingerprint']}  {hw}  [{d['label']}]  {d['rows']} rows")
    if s["runtimes"]:
        lines.append(f"runtime   {', '.join(s['runtimes'])}")
    lines.append("kinds     " + ", ".join(f"{k} {n}" for k, n in s["kinds"].items()))
    m = s.get("median_ms")
    if m:
        lines.append(f"latency   median of medians {m['p50']:.4g} ms (min {m['min']:.4g}, "
                     f"max {m['max']:.4g}); sum {s['total_median_ms']:.4g} ms")
    if s.get("median_cv") is not None:
        lines.append(f"spread    median CV {100 * s['median_cv']:.1f} %, "
                     f"{s['not_converged']} rows did not reach the CI target")
    ps = s.get("passes")
    if ps:
        n = f"{ps['min']}" if ps["min"] == ps["max"] else f"{ps['min']}-{ps['max']}"
        lines.append(f"passes    {n} per op; passes of an op differ by {100 * ps['spread_p50']:.1f} % "
                     f"(median), {100 * ps['spread_p90']:.1f} % (p90); "
                     f"{ps['rows_spread_over_10pct']} rows by more than 10 %")
    p = s.get("protocol") or {}
    if p:
        lines.append(f"protocol  CI of median within +-{100 * p.get('target_ci', 0):.3g} %, "
                     f">= {p.get('min_samples')} samples of >= {p.get('min_sample_ms')} ms, "
                     f"cap {p.get('time_cap_s')} s per op")
    if s.get("sources") and s["sources"] != ["measured"]:
        lines.append(f"sources   {', '.join(s['sources'])}")
    if s.get("updated_at"):
        lines.append(f"updated   {s['updated_at']}")
    return "\n".join(lines)
