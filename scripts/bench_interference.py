#!/usr/bin/env python
"""Does a build's own checkpoint writer disturb the ops it times?

A build writes its table (atomically, zstd Parquet) at most every 0.5 s from
the parent process while the agent times ops on another core. This script
times a few sampled conv2d / dwconv2d / mbconv ops in-process three ways:
idle, while a second process rewrites a table of --rows rows every 0.5 s (what
a build's checkpointer does), and idle again. If the writer mattered, the
middle column would stand out; if the machine drifts, the two idle columns
differ as much.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_interference.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WRITER = """
import sys, time
from hwprof.latency.sampling import sample_specs
from hwprof.latency.table import LatencyTable, rows_frame, spec_columns, write_table
rows = []
for s in sample_specs(int(sys.argv[2]) // 3, ["conv2d", "dwconv2d", "mbconv"], 7):
    r = spec_columns(s)
    r.update({"device_fingerprint": "fp", "env_key": "env", "status": "ok", "median_ms": 1.0,
              "passes": 3, "pass_medians_ms": [1.0, 1.1, 0.9]})
    rows.append(r)
t = LatencyTable.new()
t.upsert(rows_frame(rows))
end = time.time() + float(sys.argv[3])
n = 0
while time.time() < end:
    a = time.time()
    t.upsert(rows_frame(rows[:5]))
    write_table(sys.argv[1], t)
    n += 1
    if n == 1:
        print("ready %.3f" % (time.time() - a), flush=True)
    time.sleep(max(0.0, 0.5 - (time.time() - a)))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-kind", type=int, default=4, help="sampled ops per kind (4)")
    ap.add_argument("--rows", type=int, default=2400, help="rows of the table the writer rewrites")
    ap.add_argument("--sweeps", type=int, default=3, help="sweeps per condition; medians kept")
    args = ap.parse_args(argv)

    import time as _time

    from hwprof.latency.backends.agent import interleave, protocol, runtime_nnabla
    from hwprof.latency.sampling import sample_specs

    specs = sample_specs(args.per_kind, ["conv2d", "dwconv2d", "mbconv"], 3)
    rt = runtime_nnabla.Runtime("cpu")
    fns = [rt.build(s.plan()) for s in specs]

    cfg = protocol.settings()

    def median_ms(f) -> float:
        """Median of 0.3 s of timed blocks of one op (one contiguous window)."""
        timer = interleave.Timer(f, _time.perf_counter, lambda: None)
        timer.warm_up(cfg)
        end, xs = _time.perf_counter() + 0.3, []
        while _time.perf_counter() < end:
            xs.append(timer.time_block() * 1e3)
        return float(np.median(xs))

    def condition() -> np.ndarray:
        sweeps = [[median_ms(f) for f in fns] for _ in range(args.sweeps)]
        return np.median(np.array(sweeps), axis=0)

    condition()  # settle
    idle = condition()
    with tempfile.TemporaryDirectory() as tmp:
        w = subprocess.Popen([sys.executable, "-c", WRITER, str(Path(tmp) / "t.parquet"),
                              str(args.rows), "600"], stdout=subprocess.PIPE, text=True)
        try:
            ready = w.stdout.readline().split()  # the writer is writing from here on
            if not ready:
                sys.exit("the writer process failed to start")
            t0 = time.time()
            busy = condition()
        finally:
            w.kill()
            w.wait()
        busy_s = time.time() - t0
    again = condition()
    print(f"{'op':10s} {'idle ms':>9s} {'writer':>16s} {'idle again':>16s}")
    for s, a, b, c in zip(specs, idle, busy, again):
        print(f"{s.kind:10s} {a:9.3f} {b:9.3f} ({100 * (b / a - 1):+5.1f}%) "
              f"{c:9.3f} ({100 * (c / a - 1):+5.1f}%)")
    dev = lambda x: float(np.median(np.abs(x / idle - 1)))  # noqa: E731
    print(f"median |change| vs idle: with the writer {100 * dev(busy):.1f} %, idle again "
          f"{100 * dev(again):.1f} % (the writer rewrote a {args.rows}-row table, "
          f"{1e3 * float(ready[1]):.0f} ms a write, every 0.5 s for the {busy_s:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
