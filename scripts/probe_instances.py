"""Is an op's latency a property of its buffers' placement (per instance) or of the process?

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/probe_instances.py \
        --table A.parquet --other B.parquet [--worst 8] [--instances 3] [--seconds 40] \
        [--processes 2] [--json F]

Takes the ``--worst`` ops whose latency differs most between two builds of one
space (``--table`` and ``--other``), and in each of ``--processes`` fresh
processes builds every one of them ``--instances`` times (each instance its
own buffers), then samples all instances in rounds beside the reference op
(the agent's own schedule, for ``--seconds``). Prints each instance's latency
at ``--table``'s reference level, the spread of the instances within a
process, and how far the mean over instances moves between processes. If
instances differ as much as processes do, averaging over several instances in
one process removes the effect; if not, only more processes do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def worst_ops(table, other, n):
    import pandas as pd
    a = pd.read_parquet(table).set_index("signature")
    b = pd.read_parquet(other).set_index("signature")
    d = (b.latency_ms / a.latency_ms - 1).dropna()
    sigs = d.abs().sort_values(ascending=False).index[:n]
    return [{"signature": s, "spec": a.loc[s, "spec"], "diff": float(d[s]),
             "a_ms": float(a.loc[s, "latency_ms"]), "b_ms": float(b.loc[s, "latency_ms"])}
            for s in sigs], float(a.ref_level_ms.iloc[0])


def child(ops, level, instances, seconds):
    """One process: every op built ``instances`` times, sampled beside the reference."""
    from hwprof.latency.backends.agent import interleave, protocol, reference_ops, refstats
    from hwprof.latency.backends.agent.runtime_nnabla import Runtime
    from hwprof.latency.specs import parse_spec
    rt = Runtime("cpu")
    cfg = protocol.settings({"min_span_s": 0.0, "target_ci": 0.0, "max_samples": 100000,
                             "time_cap_s": seconds / (len(ops) * instances)})  # sampling, per op
    clock = time.perf_counter
    plan = reference_ops.PLANS[cfg["reference"]]
    ref = interleave.Timer(reference_ops.build(rt, plan), clock, rt.sync)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        ref.fn()
    ref.warm_up(cfg)
    recs = []
    for i, op in enumerate(ops):
        plan = parse_spec(json.loads(op["spec"])).plan()
        for k in range(instances):
            rec = interleave.OpRecord(f"{i}/{k}", interleave.Timer(rt.build(plan), clock, rt.sync))
            rec.timer.warm_up(cfg)
            recs.append(rec)
    timeline = interleave.run_group(recs, ref, cfg, clock, level_ms=level)
    out = []
    for rec in recs:
        est = refstats.estimate(rec.samples_ms, rec.refs_ms, level, 0.0, 3)
        out.append({"id": rec.id, "latency_ms": est["latency_ms"], "n": len(rec.samples_ms),
                    "near": est["ref_near"]})
    refs = sorted(v for _, v in timeline)
    spread = refs[int(0.95 * (len(refs) - 1))] / refs[int(0.05 * (len(refs) - 1))]
    return {"instances": out, "machine_spread": spread}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--worst", type=int, default=8)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        job = json.loads(open(a.child).read())
        print(json.dumps(child(job["ops"], job["level"], a.instances, a.seconds)))
        return
    ops, level = worst_ops(a.table, a.other, a.worst)
    job = f"/tmp/probe-instances-{time.time():.0f}.json"
    open(job, "w").write(json.dumps({"ops": ops, "level": level}))
    runs = []
    for p in range(a.processes):
        res = subprocess.run([sys.executable, __file__, "--table", a.table, "--other", a.other,
                              "--instances", str(a.instances), "--seconds", str(a.seconds),
                              "--child", job], capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"process {p + 1}: machine moved {runs[-1]['machine_spread']:.2f}x", flush=True)
    print(f"level {level:.4f} ms; per op: build A, build B, then per process the instances' "
          f"latencies (% from their mean) and their mean")
    means = []
    for i, op in enumerate(ops):
        row = []
        for r in runs:
            lat = [x["latency_ms"] for x in r["instances"] if x["id"].startswith(f"{i}/")]
            m = statistics.mean(lat)
            row.append((m, [100 * (v / m - 1) for v in lat]))
        means.append([m for m, _ in row])
        across = 100 * (max(m for m, _ in row) / min(m for m, _ in row) - 1)
        within = max(max(d) - min(d) for _, d in row)
        print(f"  op {i} ({op['signature']}): A {op['a_ms']:.3f} B {op['b_ms']:.3f} "
              f"({100 * op['diff']:+.1f} %); "
              + "; ".join(f"p{j + 1} " + " ".join(f"{d:+.1f}" for d in ds) + f" -> {m:.3f}"
                          for j, (m, ds) in enumerate(row))
              + f"; instances within a process up to {within:.1f} pts, "
                f"process means {across:.1f} % apart")
    if a.json:
        open(a.json, "w").write(json.dumps({"ops": ops, "level": level, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
