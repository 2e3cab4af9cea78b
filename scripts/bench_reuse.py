"""Timings of the table-reuse paths: LUT import/export, merge, fleet write and read.

Builds a complete ProxylessNAS mobile LUT (every key the ProxylessNAS latency
estimator queries for the proxyless-mobile space, synthetic values), imports it for
N device names, writes them into one fleet, and reads the fleet back with hwprof,
pyarrow.dataset, pandas and (if installed) DuckDB.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_reuse.py --devices 50
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path


def mobile_lut(seed: int) -> dict:
    from hwprof.latency.spaces import get_space
    rng = random.Random(seed)
    space = get_space("proxyless-mobile")
    lut = {}

    def hwc(shape):
        return f"{shape[2]}x{shape[3]}x{shape[1]}"

    def val():
        return {"count": 100, "mean": rng.uniform(0.1, 9.0), "var": rng.uniform(0, 0.05)}
    lut["Conv-input:224x224x3-output:112x112x32"] = val()
    specs = [s for s in space.table_specs() if s.kind == "mbconv"]
    for s in specs:
        key = (f"expanded_conv-input:{hwc(s.input)}-output:{hwc(s.output_shape)}-expand:"
               f"{int(s['expand'])}-kernel:{s['kernel']}-stride:{s['stride']}-idskip:{int(s['residual'])}")
        lut[key] = val()
    lut["Conv_1-input:7x7x320-output:7x7x1280"] = val()
    lut["Logits-input:7x7x1280-output:1000"] = val()
    return lut


def timed(label: str, fn, reps: int = 3):
    best = float("inf")
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:52s} {1000 * best:9.1f} ms (best of {reps})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=50, help="devices in the fleet (default 50)")
    args = ap.parse_args()
    import pandas as pd
    import pyarrow.dataset as ds
    import yaml

    from hwprof.latency.adapters import proxylessnas as P
    from hwprof.latency.fleet import read_fleet, write_fleet
    from hwprof.latency.tableops import diff, merge

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lut = mobile_lut(0)
        (tmp / "mobile.yaml").write_text(yaml.safe_dump(lut))
        print(f"LUT: {len(lut)} keys (proxyless-mobile, complete)")
        res = timed("import proxylessnas yaml -> table", lambda: P.import_file(
            tmp / "mobile.yaml", device_name="pixel1"))
        print(f"  imported {res.imported} rows, {len(res.unmapped)} unmapped")
        timed("export table -> LUT dict", lambda: P.export_lut(res.table))
        tables = [P.import_lut(mobile_lut(i), device_name=f"phone{i}").table
                  for i in range(args.devices)]
        timed(f"merge {args.devices} one-device tables (--allow-mixed)",
              lambda: merge(tables, allow_mixed=True), reps=1)
        timed("diff two devices", lambda: diff(tables[0], tables[1]))
        root = tmp / "fleet"

        def write_all():
            for t in tables:
                write_fleet(root, t)
        timed(f"write fleet of {args.devices} devices (one partition each)", write_all, reps=1)
        n = len(tables) * len(tables[0].df)
        back = timed("read fleet with hwprof (read_fleet)", lambda: read_fleet(root))
        assert len(back.df) == n
        t = timed("read fleet with pyarrow.dataset", lambda: ds.dataset(
            root, format="parquet", partitioning="hive").to_table())
        assert t.num_rows == n
        timed("read fleet with pandas.read_parquet", lambda: pd.read_parquet(root))
        try:
            import duckdb
        except ImportError:
            print("duckdb not installed: skipped")
        else:
            q = (f"SELECT device_fingerprint, sum(median_ms) FROM read_parquet('{root}/*/*.parquet', "
                 f"hive_partitioning = true) GROUP BY 1")
            rows = timed("DuckDB: sum of medians per device over the fleet",
                         lambda: duckdb.sql(q).fetchall())
            assert len(rows) == args.devices
        print(f"fleet: {args.devices} devices, {n} rows, "
              f"{sum(f.stat().st_size for f in root.rglob('*.parquet')) / 1e6:.2f} MB on disk")


if __name__ == "__main__":
    main()
