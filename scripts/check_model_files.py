"""Check model files (issue 15, goals 2 and 3): .nnp / ONNX networks lowered to op specs.

1. Ten random architectures of a space (default mbv2-mini) are written as ``.nnp``
   with the search's own export (``hwprof.search.export.save_nnp`` on a SuperNet,
   what ``hwprof search`` writes for its answer; the check does not run ten
   searches), each beside its arch.json; ``hwprof estimate --model net.nnp`` and
   ``hwprof estimate --arch arch.json`` (the real CLI, in subprocesses) must agree
   within 0.1 %.
2. MobileNetV2 1.0 (224x224, 1000 classes) is built with nnabla, saved as .nnp,
   converted to ONNX with nnabla's converter and estimated from the ONNX file:
   every op must be supported (and answered by a table of the .nnp's ops).
3. Lowering and estimating a 104-layer network (34 x conv+BN+ReLU6, pool,
   classifier) and MobileNetV2 (155 functions) in-process: the time of each,
   with how far the machine moved while it ran (a fixed pure-Python reference
   loop timed beside every repeat, p95/p5 of its times) and the load average.

4. With --big-lut MB: a synthetic ProxylessNAS LUT of about MB megabytes (keys on a grid of
   resolutions x widths x blocks, written to a temporary directory) imported with
   ``hwprof import proxylessnas`` (the wall time, with the load average).

    .venv/bin/python scripts/check_model_files.py [--table T] [--space mbv2-mini] [--json F]
        [--big-lut 50]

Without --table the estimates use a table of made-up latencies for the space's
ops (the checks compare two ways of pricing the same network, so any table
that holds its ops serves); --table uses a measured one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HWPROF = [sys.executable, "-m", "hwprof"]
TOLERANCE = 0.001


def made_up_table(specs, path: Path) -> Path:
    """A one-device table of ``specs`` with made-up, deterministic latencies."""
    import pandas as pd

    from hwprof.latency.table import LatencyTable, rows_frame, spec_columns, write_table
    rows = []
    for i, s in enumerate(specs):
        r = spec_columns(s)
        ms = 0.01 * (1 + (i * 7919) % 97)
        r.update({"device_fingerprint": "made-up", "env_key": "made-up", "status": "ok",
                  "device": "made-up", "source": "measured", "median_ms": ms, "n_samples": 1,
                  "measured_at": pd.Timestamp("2026-01-01", tz="UTC")})
        rows.append(r)
    t = LatencyTable.new()
    t.upsert(rows_frame(rows))
    t.meta["devices"] = {"made-up": {"label": "made-up latencies (scripts/check_model_files.py)"}}
    write_table(path, t)
    return path


def cli_json(*argv) -> tuple[int, dict]:
    p = subprocess.run([*HWPROF, *map(str, argv), "--json"], capture_output=True, text=True,
                       cwd=ROOT)
    if p.returncode not in (0, 1):
        raise SystemExit(f"hwprof {' '.join(map(str, argv))} failed: {p.stderr.strip()}")
    return p.returncode, json.loads(p.stdout)


def check_search_exports(space_name: str, table: Path | None, tmp: Path, n: int = 10) -> dict:
    import nnabla as nn
    import numpy as np

    from hwprof.latency.endtoend import random_choices
    from hwprof.latency.spaces import get_space
    from hwprof.search.export import save_nnp
    from hwprof.search.supernet import SuperNet

    space = get_space(space_name)
    table = table or made_up_table(space.table_specs(), tmp / "made-up.parquet")
    nn.clear_parameters()
    net = SuperNet(space, np.random.RandomState(0))
    rows = []
    for i, choices in enumerate(random_choices(space, n, seed=15)):
        nnp, arch = tmp / f"arch{i}.nnp", tmp / f"arch{i}.json"
        save_nnp(nnp, net, choices)
        arch.write_text(json.dumps({"space": space_name, "choices": choices}))
        rc_a, a = cli_json("estimate", "--arch", arch, "--table", table)
        rc_m, m = cli_json("estimate", "--model", nnp, "--table", table)
        rel = abs(m["estimate_ms"] - a["estimate_ms"]) / a["estimate_ms"]
        rows.append({"choices": choices, "arch_ms": a["estimate_ms"], "model_ms": m["estimate_ms"],
                     "rel_diff": rel, "ops": m["n_ops"], "from_table": m["from_table"],
                     "unsupported": len(m["unsupported"]), "missing": len(m["missing"]),
                     "ok": rel <= TOLERANCE and rc_a == rc_m == 0})
        print(f"  arch {i}: arch.json {a['estimate_ms']:.4f} ms, .nnp {m['estimate_ms']:.4f} ms "
              f"(diff {100 * rel:.4f} %), {m['n_ops']} ops, {m['from_table']} from the table, "
              f"{len(m['unsupported'])} unsupported", flush=True)
    nn.clear_parameters()
    return {"space": space_name, "table": str(table), "archs": rows,
            "max_rel_diff": max(r["rel_diff"] for r in rows), "all_ok": all(r["ok"] for r in rows)}


def check_onnx_mobilenet(tmp: Path) -> dict:
    from hwprof.latency.modelfile import lower_file
    from hwprof.latency.modelfile.zoo import mobilenet_v2_nnp, save_onnx
    nnp = mobilenet_v2_nnp(tmp / "mobilenet_v2.nnp")
    onnx = save_onnx(nnp, tmp / "mobilenet_v2.onnx")
    specs = lower_file(nnp).specs
    table = made_up_table(specs, tmp / "mbv2.parquet")
    rc, est = cli_json("estimate", "--model", onnx, "--table", table)
    kinds: dict[str, int] = {}
    for o in est["ops"]:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    out = {"ops": est["n_ops"], "kinds": kinds, "unsupported": est["unsupported"],
           "missing": est["missing"], "from_table": est["from_table"], "views": est["views"],
           "same_specs_as_nnp": [o["signature"] for o in est["ops"]] == [s.signature
                                                                        for s in specs],
           "all_ok": rc == 0 and not est["unsupported"] and not est["missing"]}
    print(f"  ONNX MobileNetV2: {out['ops']} ops ({kinds}), {len(out['unsupported'])} "
          f"unsupported, {out['from_table']} from the table, {out['views']} reshapes; same specs "
          f"as the .nnp: {out['same_specs_as_nnp']}", flush=True)
    return out


def _reference_s() -> float:
    t = time.perf_counter()
    acc = 0
    for i in range(200_000):
        acc += i % 7
    return time.perf_counter() - t


def time_lowering(tmp: Path, repeats: int = 7) -> dict:
    from hwprof.latency.loading import load_latency_model
    from hwprof.latency.modelfile import lower_file
    from hwprof.latency.modelfile.estimate import estimate_lowered, known_to
    from hwprof.latency.modelfile.zoo import deep_chain_nnp, mobilenet_v2_nnp
    nets = {"deep chain (104 layers)": deep_chain_nnp(tmp / "deep.nnp", blocks=34),
            "MobileNetV2 1.0 (155 functions)": tmp / "mobilenet_v2.nnp"}
    if not nets["MobileNetV2 1.0 (155 functions)"].exists():
        mobilenet_v2_nnp(nets["MobileNetV2 1.0 (155 functions)"])
    out = {}
    load0 = os.getloadavg()
    for name, path in nets.items():
        table = made_up_table(lower_file(path).specs, tmp / f"{path.stem}.parquet")
        model = load_latency_model(table, calibrate=False)
        times, refs = [], []
        for _ in range(repeats):
            refs.append(_reference_s())
            t = time.perf_counter()
            low = lower_file(path, known=known_to(model))
            est = estimate_lowered(model, low)
            times.append(time.perf_counter() - t)
        spread = max(refs) / min(refs)
        out[name] = {"functions": sum(len(o.names) for o in low.ops) + len(low.views),
                     "ops": est["n_ops"], "median_s": statistics.median(times),
                     "min_s": min(times), "max_s": max(times),
                     "reference_spread": spread, "under_1s": max(times) < 1.0}
        print(f"  {name}: lower + estimate median {statistics.median(times):.3f} s (min "
              f"{min(times):.3f}, max {max(times):.3f}) over {repeats} repeats, "
              f"{est['n_ops']} ops; the machine moved {spread:.2f}x (reference loop max/min)",
              flush=True)
    out["loadavg"] = {"before": load0, "after": os.getloadavg()}
    print(f"  load average before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs)", flush=True)
    return out


def check_published_ofa(tmp: Path) -> dict | None:
    """The OFA Note10 network (scripts/check_space_families.py writes its arch.json) exported as
    .nnp and estimated from OFA's own published LUT: --model must equal --arch."""
    import nnabla as nn
    import numpy as np

    from hwprof.latency.arch import load_arch
    from hwprof.search.export import save_nnp
    from hwprof.search.supernet import SuperNet
    lut = ROOT / "tables" / "published" / "ofa_note10_192_lookup_table.yaml"
    if not lut.exists():
        return None
    archs = tmp / "archs"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "check_space_families.py"),
                    "--write-archs", str(archs)], capture_output=True, check=True, cwd=ROOT)
    table = tmp / "note10.parquet"
    subprocess.run([*HWPROF, "import", "proxylessnas", str(lut), "--device-name", "note10",
                    "--out", str(table), "--quiet"], capture_output=True, check=True, cwd=ROOT)
    space, choices, _ = load_arch(archs / "ofa-mbv3.arch.json")
    nn.clear_parameters()
    save_nnp(tmp / "ofa.nnp", SuperNet(space, np.random.RandomState(0)), choices)
    nn.clear_parameters()
    _, a = cli_json("estimate", "--arch", archs / "ofa-mbv3.arch.json", "--table", table)
    rc, m = cli_json("estimate", "--model", tmp / "ofa.nnp", "--table", table)
    out = {"arch_ms": a["estimate_ms"], "model_ms": m["estimate_ms"], "ops": m["n_ops"],
           "from_table": m["from_table"], "unsupported": len(m["unsupported"]),
           "ok": rc == 0 and abs(m["estimate_ms"] - a["estimate_ms"]) <= TOLERANCE * a[
               "estimate_ms"]}
    print(f"  OFA Note10 network (ofa-mbv3 @192) from OFA's published LUT: .nnp "
          f"{m['estimate_ms']:.3f} ms, arch.json {a['estimate_ms']:.3f} ms, {m['n_ops']} ops "
          f"all from the table: {m['from_table'] == m['n_ops']}", flush=True)
    return out


def write_grid_lut(path: Path, megabytes: float) -> int:
    """A ProxylessNAS-style LUT of about ``megabytes`` MB; returns the number of keys."""
    import itertools
    import random
    rng = random.Random(0)
    widths = (8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 136, 160, 192, 208, 240, 256, 320)
    combos = list(itertools.product(range(96, 512, 4), widths, widths, (3, 4, 6), (3, 5, 7),
                                    (1, 2)))
    rng.shuffle(combos)
    size, n = 0, 0
    with open(path, "w") as out:
        for h, c, co, e, k, s in combos:
            if size >= megabytes * 1024 * 1024:
                break
            ho = -(-h // s)
            text = (f"expanded_conv-input:{h}x{h}x{c}-output:{ho}x{ho}x{co}-expand:{e}-kernel:{k}"
                    f"-stride:{s}-idskip:{int(s == 1 and c == co)}:\n  count: 1000\n"
                    f"  mean: {rng.uniform(0.01, 50):.6f}\n  var: {rng.uniform(0, 0.5):.6f}\n")
            out.write(text)
            size, n = size + len(text), n + 1
    return n


def time_big_import(tmp: Path, megabytes: float) -> dict:
    lut = tmp / "big.yaml"
    keys = write_grid_lut(lut, megabytes)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    p = subprocess.run([*HWPROF, "import", "proxylessnas", str(lut), "--device-name", "big",
                        "--out", str(tmp / "big.parquet"), "--quiet", "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    rep = json.loads(p.stdout) if p.returncode == 0 else {}
    out = {"megabytes": lut.stat().st_size / 1024 ** 2, "keys": keys, "wall_s": wall,
           "rows": rep.get("imported"), "unmapped": len(rep.get("unmapped", [])),
           "loadavg": [load0, os.getloadavg()[0]]}
    print(f"  import of {out['megabytes']:.1f} MB ({keys} keys): {wall:.1f} s, "
          f"{out['rows']} rows, {out['unmapped']} unmapped; load average {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, help="a measured table of the space's ops")
    ap.add_argument("--space", default="mbv2-mini")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--big-lut", type=float, metavar="MB",
                    help="also time importing a synthetic LUT of this many megabytes")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hwprof-check-model-") as d:
        tmp = Path(d)
        print(f"1. {args.space}: 10 architectures exported as .nnp by the search's export",
              flush=True)
        exports = check_search_exports(args.space, args.table, tmp)
        print("2. ONNX MobileNetV2 through nnabla's converter", flush=True)
        onnx = check_onnx_mobilenet(tmp)
        print("2b. a published network as a model file, from its family's published LUT",
              flush=True)
        ofa = check_published_ofa(tmp)
        print("3. time to lower and estimate", flush=True)
        timing = time_lowering(tmp)
        big = None
        if args.big_lut:
            print(f"4. importing a {args.big_lut:g} MB LUT", flush=True)
            big = time_big_import(tmp, args.big_lut)
    report = {"exports": exports, "onnx_mobilenet_v2": onnx, "published_ofa": ofa,
              "timing": timing, "big_lut": big}
    ok = exports["all_ok"] and onnx["all_ok"] and (ofa is None or ofa["ok"]) and all(
        v["under_1s"] for k, v in timing.items() if k != "loadavg")
    print(f"{'PASS' if ok else 'FAIL'}: exports max diff {100 * exports['max_rel_diff']:.4f} % "
          f"(<= {100 * TOLERANCE:g} %), ONNX MobileNetV2 {onnx['ops']} ops all supported: "
          f"{onnx['all_ok']}, lowering under 1 s: "
          f"{all(v['under_1s'] for k, v in timing.items() if k != 'loadavg')}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
