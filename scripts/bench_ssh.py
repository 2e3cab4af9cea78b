"""SSH backend benchmark on loopback: overhead vs local, agreement of medians, fault runs.

Starts a real sshd on 127.0.0.1 (a throwaway HOME, host key and client key), then

1. overhead: builds the same op set locally (``cpu``) and over SSH, alternating
   L S S L ... for ``--rounds`` pairs, and reports the wall-time ratio SSH/local
   (the whole build: connect, deploy, hello, calibration, every op) and the
   share of ops whose SSH median lies within +-5 % of the local median (the
   median over rounds of each op's median). The same share between the two
   local runs is printed as the machine's noise floor.
2. faults: ``--fault-runs`` builds, each with every sshd session killed (a
   dropped link) at a random moment; counts the builds that complete with the
   exact row set (every spec once, all ok, no duplicates) and no agent left.

    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_ssh.py
    flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_ssh.py --space tiny --rounds 1

Needs /usr/sbin/sshd and root (or a user sshd lets in) on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "latency" / "backends"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="mbv2-mini", help="op set for the overhead run")
    ap.add_argument("--time-cap", type=float, default=0.5, help="protocol time_cap_s (overhead run)")
    ap.add_argument("--min-samples", type=int, help="protocol min_samples (overhead run)")
    ap.add_argument("--fixed-samples", type=int, metavar="N",
                    help="exactly N samples per op (min = max = N, no time cap): the same "
                         "sampling work in every build, so wall time is not driven by how fast "
                         "each op converges on a loaded machine")
    ap.add_argument("--skip-faults", action="store_true", help="only the overhead run")
    ap.add_argument("--skip-overhead", action="store_true", help="only the fault runs")
    ap.add_argument("--rounds", type=int, default=2, help="local/SSH build pairs")
    ap.add_argument("--fault-runs", type=int, default=10)
    ap.add_argument("--fault-space", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)

    from sshd import Sshd, have_sshd, keygen
    if not have_sshd():
        print("bench_ssh: /usr/sbin/sshd is not installed", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="hwprof-bench-ssh-"))
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    pub = keygen(home / ".ssh" / "id_ed25519")
    os.environ["HOME"] = str(home)
    os.environ.pop("SSH_AUTH_SOCK", None)
    srv = Sshd.start(tmp / "sshd", pub)
    (home / ".ssh" / "known_hosts").write_text(srv.known_hosts_line() + "\n")
    try:
        figures = {"machine": os.uname().nodename, "cpus": os.cpu_count()}
        figures["overhead"] = None if args.skip_overhead else overhead(srv, tmp, args)
        figures["faults"] = None if args.skip_faults else faults(srv, tmp, args)
    finally:
        srv.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    f = figures["faults"]
    return 0 if f is None or f["complete"] == f["runs"] else 1


def _ssh(srv, tmp, op_timeout=120.0):
    from hwprof.latency.backends.base import BackendOptions
    from hwprof.latency.backends.ssh import SshBackend
    return SshBackend(f"ssh://root@127.0.0.1:{srv.port}", BackendOptions(
        op_timeout=op_timeout, extra={"remote_python": sys.executable,
                                      "remote_cache_dir": str(tmp / "board-cache")}))


def _timed_build(specs, backend, out, protocol, seed, **kw):
    from hwprof.latency.build import build_table
    from hwprof.latency.table import read_table
    if out.exists():
        out.unlink()
    t0 = time.monotonic()
    rep = build_table(specs, [backend], out, seed=seed, protocol=protocol, quiet=True,
                      log=lambda m: None, **kw)
    wall = time.monotonic() - t0
    df = read_table(out).df
    return wall, rep, df


def _agreement(a, b, tol=0.05):
    both = a.index.intersection(b.index)
    rel = (b[both] / a[both] - 1.0).abs()
    return float((rel <= tol).mean()), float(rel.median())


def overhead(srv, tmp, args) -> dict:
    import pandas as pd

    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.spaces import get_space
    specs = get_space(args.space).table_specs()
    protocol = {"time_cap_s": args.time_cap}
    if args.min_samples:
        protocol["min_samples"] = args.min_samples
    if args.fixed_samples:
        protocol = {"min_samples": args.fixed_samples, "max_samples": args.fixed_samples,
                    "time_cap_s": 1e6}
    walls = {"local": [], "ssh": []}
    medians = {"local": [], "ssh": []}
    order = []
    for r in range(args.rounds):
        order += ["local", "ssh"] if r % 2 == 0 else ["ssh", "local"]
    print(f"overhead: {len(specs)} ops of {args.space}, protocol {protocol}, order {' '.join(order)}",
          flush=True)
    _timed_build(specs[:1], _ssh(srv, tmp), tmp / "warm.parquet", protocol, args.seed)  # deploy once
    for i, kind in enumerate(order):
        backend = get_backend("cpu") if kind == "local" else _ssh(srv, tmp)
        wall, rep, df = _timed_build(specs, backend, tmp / f"{kind}{i}.parquet", protocol, args.seed)
        assert rep.measured == len(specs) and (df["status"] == "ok").all()
        walls[kind].append(wall)
        medians[kind].append(df.set_index("signature")["latency_ms"])
        print(f"  {kind:5s} build {i}: {wall:7.2f} s wall, {rep.sampled_s:6.2f} s sampling", flush=True)
    ratio = sum(walls["ssh"]) / sum(walls["local"])
    start = {"local": [], "ssh": []}  # fixed cost of one session: connect, deploy check, hello
    for _ in range(3):
        for kind in ("local", "ssh"):
            backend = get_backend("cpu") if kind == "local" else _ssh(srv, tmp)
            t0 = time.monotonic()
            backend.open({"seed": args.seed, "protocol": protocol}).close()
            start[kind].append(time.monotonic() - t0)
    st_local, st_ssh = (sorted(start[k])[1] for k in ("local", "ssh"))
    steady = (sum(walls["ssh"]) - st_ssh * len(walls["ssh"])) / \
        (sum(walls["local"]) - st_local * len(walls["local"]))
    loc = pd.concat(medians["local"], axis=1).median(axis=1)
    ssh = pd.concat(medians["ssh"], axis=1).median(axis=1)
    share, rel = _agreement(loc, ssh)
    res = {"ops": len(specs), "space": args.space, "protocol": protocol, "rounds": args.rounds,
           "local_wall_s": walls["local"], "ssh_wall_s": walls["ssh"], "ratio": ratio,
           "session_start_s": {"local": st_local, "ssh": st_ssh}, "ratio_after_start": steady,
           "agreement_5pct": share, "median_abs_rel_diff": rel}
    pairs = [s / loc for s, loc in zip(walls["ssh"], walls["local"])]
    res_pairs = sorted(pairs)
    print(f"  wall-time ratio SSH/local: {ratio:.3f} (goal <= 1.15); per round: "
          + ", ".join(f"{p:.3f}" for p in pairs) + f"; median {res_pairs[len(pairs) // 2]:.3f}")
    print(f"  session start (open + close, median of 3): local {st_local:.2f} s, SSH {st_ssh:.2f} s; "
          f"ratio without it: {steady:.3f}")
    print(f"  medians within +-5 %: {100 * share:.1f} % of {len(ssh)} ops (goal >= 95 %); "
          f"median |diff| {100 * rel:.2f} %")
    if len(medians["local"]) >= 2:
        base, base_rel = _agreement(medians["local"][0], medians["local"][1])
        res["local_vs_local_agreement_5pct"] = base
        print(f"  noise floor, local run vs local run: {100 * base:.1f} % within +-5 % "
              f"(median |diff| {100 * base_rel:.2f} %)")
    if len(medians["ssh"]) >= 2:
        base, _ = _agreement(medians["ssh"][0], medians["ssh"][1])
        res["ssh_vs_ssh_agreement_5pct"] = base
        print(f"  SSH run vs SSH run: {100 * base:.1f} % within +-5 %")
    return res


def faults(srv, tmp, args) -> dict:
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import KEY
    rng = random.Random(args.seed)
    specs = get_space(args.fault_space).table_specs()
    want = {s.signature for s in specs}
    protocol = {"time_cap_s": 0.2, "min_samples": 5}
    ref, _, _ = _timed_build(specs, _ssh(srv, tmp), tmp / "ref.parquet", protocol, args.seed)
    print(f"faults: {args.fault_runs} builds of {len(specs)} ops ({args.fault_space}), one clean "
          f"build takes {ref:.1f} s; each gets its link dropped at a random moment", flush=True)
    complete, details = 0, []
    for i in range(args.fault_runs):
        at = rng.uniform(0.05, 0.95) * ref
        dropped = []
        timer = threading.Timer(at, lambda d=dropped: d.append(srv.drop_links()))
        timer.start()
        try:
            wall, rep, df = _timed_build(specs, _ssh(srv, tmp), tmp / f"fault{i}.parquet", protocol,
                                         args.seed, backoff=0.5, checkpoint_every=0.0)
            exact = (set(df["signature"]) == want and len(df) == len(want)
                     and not df.duplicated(list(KEY)).any() and bool((df["status"] == "ok").all()))
            err = None
        except Exception as e:
            wall, rep, exact, err = float("nan"), None, False, f"{type(e).__name__}: {e}"
        timer.cancel()
        left = srv.wait_no_agents(10.0)
        ok = exact and not left
        complete += ok
        d = {"drop_at_s": round(at, 2), "sessions_killed": dropped[0] if dropped else 0,
             "reconnects": rep.reconnects if rep else None, "wall_s": round(wall, 2),
             "exact_rows": exact, "agents_left": left, "error": err}
        details.append(d)
        print(f"  run {i}: link dropped at {at:4.1f} s ({d['sessions_killed']} session(s) killed), "
              f"{d['reconnects']} reconnect(s), {wall:5.1f} s, exact row set: {exact}, "
              f"agents left: {len(left)}" + (f", error: {err}" if err else ""), flush=True)
    dropped_mid = sum(1 for d in details if d["sessions_killed"])  # the timer fired during the build
    print(f"  complete with the exact row set: {complete}/{args.fault_runs} "
          f"(links dropped mid-build in {dropped_mid})")
    return {"runs": args.fault_runs, "complete": complete, "dropped_mid_build": dropped_mid,
            "details": details}


if __name__ == "__main__":
    sys.exit(main())
