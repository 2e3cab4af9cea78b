"""GPU benchmark: a space's table built twice in one run on a CUDA device.

    python scripts/bench_gpu.py                      # cuda:0, torch runtime, mbv2-cifar
    python scripts/bench_gpu.py --runtime nnabla     # needs nnabla-ext-cuda120
    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_gpu.py \
        --device cpu --space tiny                     # smoke run of the script on a CPU

Each build starts a fresh agent and measures every op of the space into its own
table. Reports, per build: rows, build time; then the share of ops whose medians
agree within +-5 % between the two builds, the median |difference|, and the
median per-op latency. The torch runtime runs under --agent-python (default:
$HWPROF_TORCH_PYTHON, else ./.venv-torch/bin/python, else this interpreter).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hwprof.latency.backends.base import BackendOptions
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.build import build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table

ROOT = Path(__file__).resolve().parent.parent


def default_agent_python(runtime):
    if runtime != "torch":
        return None
    env = os.environ.get("HWPROF_TORCH_PYTHON")
    if env:
        return env
    venv = ROOT / ".venv-torch" / "bin" / "python"
    return str(venv) if venv.exists() else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--runtime", default="torch", choices=("torch", "nnabla"))
    ap.add_argument("--agent-python", default=None, metavar="PATH")
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--time-cap", type=float, default=None, metavar="S",
                    help="protocol time cap per op (default: the protocol's 2 s)")
    ap.add_argument("--out-dir", default=None, help="keep the two tables here (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args(argv)

    py = args.agent_python or default_agent_python(args.runtime)
    opts = BackendOptions(runtime=args.runtime, extra={"agent_python": py})
    backend = get_backend(args.device, opts)
    rep = backend.check()
    if not rep["ok"]:
        print(f"{args.device} ({args.runtime}) is not usable:", file=sys.stderr)
        for prob in rep["problems"]:
            print(f"  - {prob}", file=sys.stderr)
        return 2
    specs = get_space(args.space).table_specs()
    protocol = {"time_cap_s": args.time_cap} if args.time_cap else {}
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="hwprof-bench-gpu-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    builds = []
    for i in (1, 2):
        out = out_dir / f"build{i}.parquet"
        if out.exists():
            out.unlink()
        t0 = time.monotonic()
        report = build_table(specs, [get_backend(args.device, opts)], out, protocol=protocol,
                             quiet=True, log=lambda m: print(m, file=sys.stderr))
        build_s = time.monotonic() - t0
        df = read_table(out).df
        builds.append((out, build_s, report, df))

    fp = rep["fingerprint"] or {}
    env = rep["environment"] or {}
    if fp.get("gpu_name"):
        print(f"device    {args.device}: {fp['gpu_name']} (cc {fp.get('gpu_compute_capability')}, "
              f"{fp.get('gpu_mem_mb')} MB; driver {env.get('driver_version')}, CUDA "
              f"{env.get('cuda_version')}, cuDNN {env.get('cudnn_version')})")
    else:
        print(f"device    {args.device}: {fp.get('cpu_model')} ({fp.get('cores_logical')} cores, "
              f"{env.get('torch_threads') or env.get('omp_num_threads') or '-'} threads)")
    print(f"runtime   {args.runtime} {rep['runtime']['version']}   space {args.space} "
          f"({len(specs)} ops)")
    for i, (out, build_s, report, df) in enumerate(builds, 1):
        ok = df[df["status"] == "ok"]
        print(f"build {i}   rows {len(df)} ({len(ok)} ok, {report.errors} errors), "
              f"build time {build_s:.1f} s ({report.sampled_s:.1f} s sampling)  -> {out}")
    a = builds[0][3].query("status == 'ok'").set_index("signature")["latency_ms"]
    b = builds[1][3].query("status == 'ok'").set_index("signature")["latency_ms"]
    common = a.index.intersection(b.index)
    rel = ((b[common] - a[common]).abs() / a[common]).tolist()
    within = sum(r <= 0.05 for r in rel) / len(rel) if rel else float("nan")
    per_op = statistics.median(list(a[common]) + list(b[common])) if rel else float("nan")
    figures = {
        "device": args.device, "runtime": args.runtime, "runtime_version": rep["runtime"]["version"],
        "gpu_name": fp.get("gpu_name"), "space": args.space, "ops": len(specs),
        "rows": [len(d) for _, _, _, d in builds],
        "build_s": [round(s, 2) for _, s, _, _ in builds],
        "share_within_5pct": within, "median_abs_diff": statistics.median(rel) if rel else None,
        "median_per_op_ms": per_op,
    }
    print(f"agreement {100 * within:.1f} % of {len(rel)} ops have medians within +-5 % between "
          f"the builds (median |difference| {100 * figures['median_abs_diff']:.2f} %)")
    print(f"latency   median per-op latency {per_op:.4f} ms")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
