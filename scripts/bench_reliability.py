#!/usr/bin/env python
"""Nothing lost, nothing crashes: the bad-input, concurrent-writer, kill and overwrite cases.

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_reliability.py [--work DIR]

Runs each case through the real CLI (`python -m hwprof`, real nnabla ops on the
CPU with a short protocol) and prints one line per case: what was done, the
outcome, the exit code, and how many measured rows were lost (always 0 when
hwprof keeps its promise). Exits 1 when any case loses a row or crashes with a
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAST = ["--time-cap", "0.2", "--min-samples", "5", "--min-span", "0", "--quiet"]
HW = [sys.executable, "-m", "hwprof"]


def hw(*args, **kw):
    return subprocess.run(HW + [str(a) for a in args], capture_output=True, text=True, **kw)


def ops_file(path: Path, channels: list[int]) -> Path:
    path.write_text("".join(json.dumps({"kind": "relu", "input": [1, c, 8, 8]}) + "\n"
                            for c in channels))
    return path


def rows(path: Path) -> int:
    import pandas as pd
    return len(pd.read_parquet(path)) if path.exists() else 0


def one_line(p) -> bool:
    err = p.stderr.strip()
    return p.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def case_concurrent(w: Path):
    out = w / "shared.parquet"
    a, b = ops_file(w / "a.json", [4, 5, 6, 7, 9, 10]), ops_file(w / "b.json", [11, 12, 13, 14, 15, 17])
    pa = subprocess.Popen(HW + ["build-table", "--ops", str(a), "--out", str(out), *FAST],
                          stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    pb = hw("build-table", "--ops", b, "--out", out, *FAST)
    pa.wait()
    refused = pb.returncode == 2 and "another build" in pb.stderr
    if refused:  # the refused build, run again once the first is done
        pb = hw("build-table", "--ops", b, "--out", out, *FAST)
    lost = 12 - rows(out)
    return ("two builds of 6 ops each into one --out, started together",
            f"second {'refused while the first ran, then rerun' if refused else 'ran alongside'}; "
            f"{rows(out)} rows", pb.returncode, lost)


def case_kill(w: Path):
    out = w / "killed.parquet"
    ops = ops_file(w / "k.json", list(range(4, 28)))
    p = subprocess.Popen(HW + ["build-table", "--ops", str(ops), "--out", str(out), "--group-ops",
                               "4", *FAST], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and rows(out) < 4:
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = rows(out)
    done = hw("build-table", "--ops", ops, "--out", out, *FAST)
    return ("kill -9 mid build, then the same command", f"{before} rows kept, {rows(out)} after "
            f"resume", done.returncode, 24 - rows(out))


def case_overwrite(w: Path):
    table = w / "killed.parquet"
    n = rows(table)
    victim = w / "victim.parquet"
    victim.write_bytes(table.read_bytes())
    p = hw("export", table, "--format", "csv", "--out", victim)
    q = hw("table", "filter", table, "--kind", "relu", "--out", table, "--force")
    notes = w / "notes.txt"
    notes.write_text("mine")
    r = hw("export", table, "--format", "json", "--out", notes)
    ok = all(one_line(x) for x in (p, q, r)) and notes.read_text() == "mine"
    return ("export/filter over an existing file or the input itself",
            "refused, files untouched" if ok else "OVERWROTE", max(p.returncode, q.returncode),
            (n - rows(victim)) + (n - rows(table)))


def case_damaged(w: Path):
    import pyarrow.parquet as pq
    bad = w / "damaged.parquet"
    data = bytearray((w / "killed.parquet").read_bytes())
    md = pq.ParquetFile(w / "killed.parquet").metadata
    names = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)]
    off = md.row_group(0).column(names.index("latency_ms")).data_page_offset
    for i in range(off, off + 24):  # flip the bytes of a data page; the footer stays readable
        data[i] ^= 0xFF
    bad.write_bytes(bytes(data))
    p = hw("table", "show", bad)
    txt = w / "latin1.json"
    txt.write_bytes('{"kind": "relu", "input": [1, 8, 8, 8]} \xe9\n'.encode("latin-1"))
    q = hw("build-table", "--ops", txt, "--out", w / "never.parquet", *FAST)
    empty = w / "empty.json"
    empty.write_text("[]")
    r = hw("build-table", "--ops", empty, "--out", w / "never.parquet", *FAST)
    ok = all(one_line(x) for x in (p, q, r)) and not (w / "never.parquet").exists()
    return ("corrupt Parquet page, non-UTF-8 ops file, empty ops file",
            "one-line errors, nothing written" if ok else "TRACEBACK or file written",
            max(p.returncode, q.returncode, r.returncode), 0)


def case_size(w: Path):
    huge = w / "huge.json"
    huge.write_text(json.dumps({"kind": "relu", "input": [1, 1, 24000, 24000]}) + "\n")
    p = hw("build-table", "--ops", huge, "--out", w / "huge.parquet", *FAST)
    return ("an op whose tensors exceed the per-op memory limit",
            "refused before allocating" if one_line(p) else "ALLOCATED or crashed", p.returncode, 0)


def case_permissions(w: Path):
    out = w / "perm.parquet"
    old = os.umask(0o022)
    try:
        hw("build-table", "--ops", ops_file(w / "p.json", [4]), "--out", out, *FAST)
        fresh = stat.S_IMODE(out.stat().st_mode)
        out.chmod(0o640)
        hw("build-table", "--ops", ops_file(w / "p2.json", [5]), "--out", out, *FAST)
        kept = stat.S_IMODE(out.stat().st_mode)
    finally:
        os.umask(old)
    ok = fresh == 0o644 and kept == 0o640
    return ("new table under umask 022; rewrite of a 0640 table",
            f"{fresh:o} then {kept:o}" + ("" if ok else " (WRONG)"), 0, 2 - rows(out))


FAILURES = ("WRONG", "OVERWROTE", "TRACEBACK", "ALLOCATED")
CASES = (case_concurrent, case_kill, case_overwrite, case_damaged, case_size, case_permissions)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", help="work directory (default: a new temporary one)")
    args = ap.parse_args()
    w = Path(args.work or tempfile.mkdtemp(prefix="hwprof-reliability-"))
    w.mkdir(parents=True, exist_ok=True)
    bad = 0
    print(f"{'case':<62} {'outcome':<52} {'exit':>4} {'rows lost':>9}")
    for case in CASES:
        what, outcome, rc, lost = case(w)
        bad += lost != 0 or any(m in outcome for m in FAILURES)
        print(f"{what:<62} {outcome:<52} {rc:>4} {lost:>9}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
