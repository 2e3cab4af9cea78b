"""Replay searches' closed loops to see what adding their networks to the calibration gives.

Nothing is measured: every search's ``report.json`` keeps each network the loop
measured (``rounds``: the table's plain sum and the end-to-end measurement), and
the table keeps the calibration the searches derived against. Taking the
reports in the order they were written, each search's networks are estimated
twice: with the table's calibration as it was (fitted on random architectures),
and with that calibration refitted on the networks of every earlier search (what
`hwprof search` now does after each loop). Prints measured / estimate for both.

  .venv/bin/python scripts/replay_calibration_feedback.py --table T --space mbv2-cifar \\
      RUN_DIR/*/report.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def replay(cal, reports: list[dict]) -> dict[str, np.ndarray]:
    from hwprof.latency.predictors.calibration import refit_with
    ratios: dict[str, list[float]] = {"as stored": [], "with earlier loops": []}
    fed = cal
    for rep in reports:
        done = [r for r in rep["rounds"] if r.get("measured_ms") is not None]
        for r in done:
            ratios["as stored"].append(r["measured_ms"] / cal.predict(r["sum_ms"]))
            ratios["with earlier loops"].append(r["measured_ms"] / fed.predict(r["sum_ms"]))
        fed = refit_with(fed, [{"choices": r["choices"], "sum_ms": r["sum_ms"],
                                "measured_ms": r["measured_ms"]} for r in done])
    return {k: np.array(v) for k, v in ratios.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="the table the searches ran on")
    ap.add_argument("--space", required=True)
    ap.add_argument("reports", nargs="+", help="the searches' report.json files")
    a = ap.parse_args(argv)
    from hwprof.latency.predictors.calibration import CalibrationSet
    from hwprof.latency.table import read_table
    cals = CalibrationSet.from_meta(read_table(a.table).meta.get("calibrations"))
    cal = cals.by_space.get(a.space)
    if cal is None:
        sys.exit(f"{a.table} holds no calibration for {a.space}")
    paths = sorted(a.reports, key=os.path.getmtime)
    reports = [json.load(open(p)) for p in paths]
    print(f"{len(reports)} searches, calibration of {cal.n} networks "
          f"({sum(1 for p in cal.points if p.get('source'))} added by loops)")
    for name, x in replay(cal, reports).items():
        print(f"{name:19s}: {len(x)} networks; measured/estimate median {np.median(x):.3f}, "
              f"mean |log| {100 * np.mean(np.abs(np.log(x))):.1f} %, within ±2 % "
              f"{100 * np.mean(np.abs(x - 1) <= 0.02):.0f} %, within ±5 % "
              f"{100 * np.mean(np.abs(x - 1) <= 0.05):.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
