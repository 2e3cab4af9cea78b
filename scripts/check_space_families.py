"""Check the built-in space files against the network families they come from.

For each family: is every published network of the family an architecture of
the family's space file (block for block: widths, kernels, expansions, strides,
squeeze-excite, activations, input size)? And where the family's own published
lookup table is at hand: estimated from that table (imported with `hwprof import
proxylessnas`), is every op answered by the table, and is the estimate within
+-3 % of the published latency?

    .venv/bin/python scripts/check_space_families.py [--json]
        [--ofa-lut tables/published/ofa_note10_192_lookup_table.yaml]
        [--proxyless-lut mobile_trim.yaml] [--write-archs DIR]

Nothing is timed on this machine: the figures are table lookups, so the
machine's speed does not enter them. The published networks and latencies are
facts from the papers and the authors' released configurations (cited below);
ProxylessNAS's phone LUT (``mobile_trim.yaml``, downloaded by the authors' code
from hanlab.mit.edu) is not shipped: give it with --proxyless-lut to check that
family's latency.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprof.errors import UserError  # noqa: E402
from hwprof.latency.spaces import SKIP, get_space  # noqa: E402

TOLERANCE = 0.03

# Published networks: per stage, the blocks (expand, kernel) of the stage in order;
# stage widths, strides, SE and activations are the space's. Sources in "source".
NETWORKS = [
    {"family": "ProxylessNAS", "space": "proxyless-mobile-published",
     "name": "ProxylessNAS-Mobile (searched for the Google Pixel 1)",
     "source": "Cai, Zhu, Han 2019 (ICLR), released proxyless_mobile network; its TFLite "
               "profile in mit-han-lab/proxylessnas logs/proxyless_mobile_10_latency.txt",
     "stem_out": 32, "first_out": 16, "head_out": 1280, "resolution": 224,
     "widths": [32, 40, 80, 96, 192, 320],
     "stages": [[(3, 5), (3, 3)], [(3, 7), (3, 3), (3, 5), (3, 5)],
                [(6, 7), (3, 5), (3, 5), (3, 5)], [(6, 5), (3, 5), (3, 5), (3, 5)],
                [(6, 7), (6, 7), (3, 7), (3, 7)], [(6, 7)]],
     "latency_ms": 78.0, "latency_source": "Pixel 1, ProxylessNAS paper (Cai et al. 2019), Table 2",
     "lut": "proxyless"},
    {"family": "Once-for-All MobileNetV3", "space": "ofa-mbv3:resolution=192",
     "name": "OFA sub-net searched for Samsung Note10 under 25 ms (OFA tutorial)",
     "source": "mit-han-lab/once-for-all tutorial/ofa.ipynb: d=[2,2,3,4,3], printed "
               "ks/e per block, 192x192 input",
     "stem_out": 24, "first_out": 24, "head_out": 1152, "resolution": 192,
     "widths": [32, 48, 96, 136, 192],
     "stages": [[(3, 5), (3, 3)], [(4, 5), (4, 3)], [(6, 7), (3, 7), (4, 3)],
                [(4, 5), (4, 5), (4, 7), (3, 3)], [(6, 3), (6, 3), (6, 5)]],
     "latency_ms": 24.73, "latency_source": "Note10, OFA's LatencyTable in the tutorial",
     "lut": "ofa"},
    {"family": "Once-for-All ProxylessNAS", "space": "ofa-proxyless",
     "name": "OFA cpu_lat@10ms_top1@71.1 (specialised for a CPU)",
     "source": "han-cai/files ofa/ofa_specialized/cpu_lat@10ms_top1@71.1_finetune@25/net.config",
     "stem_out": 40, "first_out": 24, "head_out": 1664, "resolution": 224,
     "widths": [32, 56, 104, 128, 248, 416],
     "stages": [[(4, 5), (3, 3)], [(3, 3), (3, 3)], [(3, 7), (3, 3), (3, 7)],
                [(3, 5), (4, 5)], [(3, 5), (4, 3)], [(4, 3)]],
     "latency_ms": 10.0, "latency_source": "CPU, measured by the OFA authors (no LUT published)",
     "lut": None},
]


def choices_for(space, net) -> list[str]:
    """The space's choices that are ``net``; UserError saying where it is not expressible."""
    stages = space.data["stages"]
    if len(stages) != len(net["stages"]):
        raise UserError(f"{len(net['stages'])} stages, the space has {len(stages)}")
    out = []
    for li, lay in enumerate(space.layers):
        blocks = net["stages"][lay.stage]
        lo, hi = stages[lay.stage]["depth"]
        if not lo <= len(blocks) <= hi:
            raise UserError(f"stage {lay.stage + 1} has {len(blocks)} blocks; the space allows "
                            f"{lo}-{hi}")
        if lay.position >= len(blocks):
            out.append(SKIP)
            continue
        e, k = blocks[lay.position]
        names = [n for n in lay.candidates if n != SKIP
                 and space.candidate_config(li, n).get("expand") == e
                 and space.candidate_config(li, n)["kernel"] == k]
        if not names:
            raise UserError(f"layer {lay.name}: no candidate with expand {e}, kernel {k}")
        out.append(names[0])
    return out


def check_blocks(space, net, choices) -> None:
    """The architecture's ops are the published network, block for block."""
    if space.input[2:] != [net["resolution"]] * 2:
        raise UserError(f"input {space.input[2:]}, the network takes {net['resolution']}")
    stem = [s for s in space.prefix]
    convs = [o for s in stem for o in (s["ops"] if s.kind == "sequence" else [s.to_dict()])
             if o["kind"] == "conv2d"]
    if convs[0]["out_channels"] != net["stem_out"]:
        raise UserError(f"stem has {convs[0]['out_channels']} channels, the network "
                        f"{net['stem_out']}")
    if stem[-1]["out_channels"] != net["first_out"]:
        raise UserError(f"first block gives {stem[-1]['out_channels']} channels, the network "
                        f"{net['first_out']}")
    head_conv = next(o for s in space.suffix for o in (s["ops"] if s.kind == "sequence"
                                                         else [s.to_dict()])
                     if o["kind"] == "conv2d")
    if head_conv["out_channels"] != net["head_out"]:
        raise UserError(f"head conv has {head_conv['out_channels']} channels, the network "
                        f"{net['head_out']}")
    for si, lay in enumerate(space.layers):
        if choices[si] == SKIP:
            continue
        spec = space.candidate_spec(si, choices[si])
        e, k = net["stages"][lay.stage][lay.position]
        want_out = net["widths"][lay.stage]
        if (spec["out_channels"], spec["kernel"], spec["expand"]) != (want_out, k, e):
            raise UserError(f"layer {lay.name}: {spec['out_channels']} ch k{spec['kernel']} "
                            f"e{spec['expand']}, the network {want_out} ch k{k} e{e}")


def lut_table(path: Path):
    from hwprof.latency.adapters.proxylessnas import import_file
    res = import_file(path, device_name="published")
    return res.table, res.unmapped


def estimate(space, choices, table) -> dict:
    from hwprof.latency.model import LatencyModel
    model = LatencyModel(table)
    specs = space.arch_specs(choices)
    vals = [model.lookup(s) for s in specs]
    missing = [s for s, v in zip(specs, vals) if v is None]
    return {"ops": len(specs), "answered": len(specs) - len(missing),
            "missing": [f"{s.kind} {s.canonical_json()}" for s in missing],
            "sum_ms": float(sum(v for v in vals if v is not None))}


def space_vs_lut(space, table) -> dict:
    need = {s.signature for s in space.table_specs()}
    have = set(table.df["signature"])
    return {"space_ops": len(need), "lut_ops": len(have), "common": len(need & have)}


def check(net, luts) -> dict:
    row = {k: net[k] for k in ("family", "space", "name", "source", "latency_ms",
                               "latency_source")}
    space = get_space(net["space"])
    try:
        choices = choices_for(space, net)
        check_blocks(space, net, choices)
        row.update(expressible=True, choices=choices)
    except UserError as e:
        row.update(expressible=False, why=str(e))
        return row
    path = luts.get(net["lut"])
    if path is None:
        row["lut"] = ("no published LUT for this family" if net["lut"] is None else
                      f"the {net['lut']} LUT is not at hand (give it with --{net['lut']}-lut)")
        return row
    table, unmapped = lut_table(path)
    row["lut"] = str(path)
    row["lut_unmapped_keys"] = len(unmapped)
    row["space_vs_lut"] = space_vs_lut(space, table)
    est = estimate(space, choices, table)
    row.update(est)
    row["every_op_answered"] = not est["missing"]
    row["error"] = est["sum_ms"] / net["latency_ms"] - 1
    row["within_3pct"] = row["every_op_answered"] and abs(row["error"]) <= TOLERANCE
    return row


def also_not_in_old_space() -> dict:
    """The published ProxylessNAS-Mobile in the search-code space (first stage 24 wide)."""
    net = dict(NETWORKS[0], space="proxyless-mobile")
    space = get_space("proxyless-mobile")
    try:
        check_blocks(space, net, choices_for(space, net))
        return {"space": "proxyless-mobile", "expressible": True}
    except UserError as e:
        return {"space": "proxyless-mobile", "expressible": False, "why": str(e)}


def report(rows, old) -> None:
    print("no measurement on this machine: every figure is a table lookup")
    for r in rows:
        print(f"\n{r['family']}: {r['name']}\n  space {r['space']}")
        if not r["expressible"]:
            print(f"  NOT expressible: {r['why']}")
            continue
        print(f"  expressible: yes ({sum(c != SKIP for c in r['choices'])} blocks)")
        if "sum_ms" not in r:
            print(f"  latency check: {r['lut']}; published {r['latency_ms']} ms "
                  f"({r['latency_source']})")
            continue
        sv = r["space_vs_lut"]
        print(f"  LUT {r['lut']}: {sv['lut_ops']} keys, {r['lut_unmapped_keys']} unmapped; the "
              f"space needs {sv['space_ops']} ops, {sv['common']} of them in the LUT")
        print(f"  ops answered by the table: {r['answered']}/{r['ops']}"
              + (f" (first missing: {r['missing'][0]})" if r["missing"] else ""))
        verdict = "PASS" if r["within_3pct"] else "FAIL"
        print(f"  estimate {r['sum_ms']:.3f} ms vs published {r['latency_ms']} ms "
              f"({r['latency_source']}): {r['error']:+.2%}  [{verdict}: within +-3 % and every "
              f"op from the table]")
    why = "" if old["expressible"] else f": {old['why']}"
    print(f"\nProxylessNAS-Mobile in the search-code space proxyless-mobile: "
          f"{'expressible' if old['expressible'] else 'not expressible'}{why}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ofa-lut", type=Path,
                    default=ROOT / "tables/published/ofa_note10_192_lookup_table.yaml",
                    help="OFA's published Note10 LUT at 192x192 (kept in tables/published)")
    ap.add_argument("--proxyless-lut", type=Path, default=None,
                    help="ProxylessNAS's published Pixel 1 LUT (mobile_trim.yaml), if you have it")
    ap.add_argument("--write-archs", type=Path, metavar="DIR",
                    help="write each expressible network as DIR/<space>.arch.json, for "
                         "`hwprof estimate --arch` and `hwprof measure-arch`")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    luts = {"ofa": a.ofa_lut if a.ofa_lut and a.ofa_lut.exists() else None,
            "proxyless": a.proxyless_lut}
    rows = [check(n, luts) for n in NETWORKS]
    old = also_not_in_old_space()
    if a.write_archs:
        a.write_archs.mkdir(parents=True, exist_ok=True)
        for r in rows:
            if r["expressible"]:
                name = r["space"].split(":")[0]
                (a.write_archs / f"{name}.arch.json").write_text(json.dumps(
                    {"space": r["space"], "choices": r["choices"], "network": r["name"],
                     "published_ms": r["latency_ms"]}, indent=2) + "\n")
    if a.json:
        print(json.dumps({"networks": rows, "proxyless_mobile_search_space": old}, indent=2))
    else:
        report(rows, old)
    checked = [r for r in rows if "within_3pct" in r]
    ok = all(r["expressible"] for r in rows) and all(r["within_3pct"] for r in checked)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
