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

    table = load_table(args.path)
    summary = table.summary()
    summary["path"] = args.path
    summary["imported"] = imported_note(table)
    summary["calibrations"] = calibration_notes(table.meta)
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def imported_note(table) -> dict | None:
    """For a table whose rows were imported: where from, and what hwprof can and cannot do
    with a device it cannot reach (None for measured tables)."""
    from hwprof.latency.adapters.common import imported_device

    fps = sorted(fp for fp in (table.meta.get("devices") or {})
                 if imported_device(table.meta, fp))
    if not fps:
        return None
    imp = table.meta.get("import") or {}
    return {"devices": fps, "source": imp.get("source"), "file": imp.get("file"),
            "advice": "the numbers are the source's own (no CI, convergence or machine "
                      "movement recorded); hwprof cannot reach this device, so `hwprof "
                      "calibrate` and `measure-arch` cannot run for it: estimates from this "
                      "table are plain sums of the source's latencies"}


def calibration_notes(meta: dict) -> list[dict] | dict:
    """The table's stored calibrations described (see predictors.calibration.describe), or
    ``{"error": ...}`` when they cannot be read."""
    from hwprof.errors import UserError
    from hwprof.latency.predictors.calibration import CalibrationSet, describe

    try:
        cals = CalibrationSet.from_meta(meta.get("calibrations"))
    except (UserError, TypeError) as e:
        return {"error": str(e)}
    return [describe(c) for _, c in sorted(cals.by_space.items())]


def _calibration_lines(cals) -> list[str]:
    """One line per stored calibration; out-of-date ones say why and what renews them."""
    from hwprof.latency.predictors.calibration import RENEW

    if isinstance(cals, dict):
        return [f"calibration unreadable: {cals['error']}"]
    lines = []
    for c in cals:
        extra = f" (+{c['added_by_searches']} from searches)" if c["added_by_searches"] else ""
        fit = (f"end to end = {c['slope']:.3f} x sum {'+' if c['intercept'] >= 0 else '-'} "
               f"{abs(c['intercept']):.3g} ms")
        err = ""
        if c["sum_rmspe"] is not None and c["calibrated_rmspe"] is not None:
            err = (f"; RMSPE plain sum {100 * c['sum_rmspe']:.1f} %, "
                   f"calibrated {100 * c['calibrated_rmspe']:.1f} %")
        agent = f"agent {c['agent_version']}" if c["agent_version"] else "an agent before 10"
        lines.append(f"calibration {c['space']}: {c['n']} networks{extra}, {fit}{err}; "
                     f"measured by {agent}, fitted {c['fitted_at'] or '?'}")
        if c["out_of_date"]:
            lines.append(f"  OUT OF DATE: {c['out_of_date']}; {RENEW}")
    return lines


def _reference_lines(s: dict) -> list[str]:
    """The reference level(s), how far the machine moved, the least trustworthy rows."""
    lines = []
    for key, lv in ((s.get("reference") or {}).get("levels") or {}).items():
        lines.append(f"reference {lv['level_ms']:.4f} ms for {key} ({lv.get('chosen')}): every "
                     f"latency is the op's at this level of the reference op")
        if lv.get("elasticity") is not None:
            fit = lv.get("elasticity_fit")
            how = (f"fitted on {fit['ops']} ops' passes: they sit {100 * fit['disagreement']:.2f} %"
                   f" apart in the mean, {100 * fit['disagreement_default']:.2f} % with "
                   f"{fit['default']:g}" if fit else "adopted with the level")
            lines.append(f"          op samples carried to it with elasticity "
                         f"{lv['elasticity']:g} ({how})")
    mach = s.get("machine")
    if mach:
        lines.append(f"machine   the reference moved {mach['spread']:.2f}x (p5 {mach['p5_ms']:.4f}, "
                     f"p95 {mach['p95_ms']:.4f} ms) over {mach['groups']} measured group(s); "
                     f"`hwprof table plot --timeline` draws it")
    worst = s.get("least_trustworthy") or []
    if worst:
        lines.append("least trustworthy rows (widest 95 % CI of the latency):")
        for w in worst:
            flag = "" if w["bracketed"] is not False else ", samples did not bracket the level"
            lines.append(f"  {w['kind']:10s} {w['signature']}  {w['latency_ms']:.4g} ms "
                         f"+-{100 * w['ci_halfwidth']:.1f} %{flag}")
    return lines


def protocol_line(p: dict, own_elasticity: bool = False) -> str:
    """The measurement protocol a table was built with, in one line; ``own_elasticity``: the
    table's levels carry their rows with their own elasticity (the reference lines say which)."""
    from hwprof.latency.backends.agent.protocol import OP_ELASTICITY

    own_elasticity = own_elasticity and p.get("elasticity") == OP_ELASTICITY  # else its own
    span = f", spanning >= {p['min_span_s']:g} s" if p.get("min_span_s") else ""
    n = p.get("instances")
    return (f"protocol  CI of the latency within +-{100 * p.get('target_ci', 0):.3g} %, "
            f">= {p.get('min_samples')} samples of >= {p.get('min_sample_ms')} ms"
            f"{span}, cap {p.get('time_cap_s')} s per op"
            + (f", {n} instance{'s' if n != 1 else ''} of each" if n else "")
            + (f", {p['max_samples']} samples at most" if p.get("max_samples") else "")
            + (f"; the reference after every {p['ref_gap_ms']:g} ms of op sampling"
               if p.get("ref_gap_ms") else "")
            + (("; samples carried with the level's elasticity (above), not the protocol's "
                f"{p['elasticity']:g}" if own_elasticity else
                f"; samples carried with elasticity {p['elasticity']:g}")
               if p.get("elasticity") is not None else "; elasticity fitted per op")
            + ("; reference: a basket of 3 blocks" if p.get("reference") == "basket"
               else "; reference: one MBConv block"))  # no key: agents up to 11


def format_summary(s: dict) -> str:
    from hwprof.latency.devices import hardware_name
    from hwprof.latency.table import SCHEMA_VERSION

    version = f"schema v{s['schema_version']}"
    if s["schema_version"] != SCHEMA_VERSION:
        version += f" on disk, read as v{SCHEMA_VERSION}; rewritten as v{SCHEMA_VERSION} when saved"
    lines = [f"{s['path']}  ({version}, {s['rows']} rows: {s['ok']} ok, "
             f"{s['errors']} errors, {s['unstable']} unstable)"]
    for d in s["devices"]:
        hw = hardware_name(d) or "?"
        lines.append(f"device    {d['fingerprint']}  {hw}  [{d['label']}]  {d['rows']} rows")
    if s["runtimes"]:
        lines.append(f"runtime   {', '.join(s['runtimes'])}")
    lines.append("kinds     " + ", ".join(f"{k} {n}" for k, n in s["kinds"].items()))
    m = s.get("latency_ms")
    if m:
        lines.append(f"latency   median {m['p50']:.4g} ms (min {m['min']:.4g}, "
                     f"max {m['max']:.4g}); sum {s['total_latency_ms']:.4g} ms")
    lines += _reference_lines(s)
    if s.get("merged_from"):
        lines.append(f"merged    from {len(s['merged_from'])} tables: {', '.join(s['merged_from'])} "
                     f"(`table merge`: a device's level is the first of them holding it)")
    if s.get("measured_rows"):
        lines.append(f"converged {s['measured_rows'] - s['not_converged']} of "
                     f"{s['measured_rows']} measured rows reached the CI target")
    ps = s.get("passes")
    if ps:
        n = f"{ps['min']}" if ps["min"] == ps["max"] else f"{ps['min']}-{ps['max']}"
        lines.append(f"passes    {n} per op; passes of an op differ by {100 * ps['spread_p50']:.1f} % "
                     f"(median), {100 * ps['spread_p90']:.1f} % (p90); "
                     f"{ps['rows_spread_over_10pct']} rows by more than 10 %")
        lines.append(f"          a row's latency: the {ps['rule']} of its passes" if ps.get("rule")
                     else "          a row's latency: not recorded (a table from before 2026-12-05: "
                          "the geometric mean of all passes, the median pass before agent 8)")
    if s.get("protocol"):
        levels = ((s.get("reference") or {}).get("levels") or {}).values()
        lines.append(protocol_line(s["protocol"],
                                   any(lv.get("elasticity") is not None for lv in levels)))
    lines += _calibration_lines(s.get("calibrations") or [])
    imp = s.get("imported")
    if imp:
        lines.append(f"imported  {imp['source']} from {imp['file'] or '?'}: {imp['advice']}")
    if s.get("sources") and s["sources"] != ["measured"]:
        lines.append(f"sources   {', '.join(s['sources'])}")
    if s.get("updated_at"):
        lines.append(f"updated   {s['updated_at']}")
    return "\n".join(lines)
