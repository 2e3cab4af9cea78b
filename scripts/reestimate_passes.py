#!/usr/bin/env python
"""Offline: how two builds agree when every pass is derived again under other estimators.

Reads pairs of kept tables (``bench_protocol.py --out-dir DIR``: ``*-A.parquet`` beside
``*-B.parquet``, B built at A's reference level) whose rows keep every pass's paired samples
(``pass_samples_ms``, schema 4). Each pass's latency is derived again from its samples with
the table's own protocol settings, overridden per estimator (``--estimators``; e.g. a fixed
elasticity), the row's latency is derived from its passes as its build did (the table's
``pass_rule``: the lower half; older tables the geometric mean of all passes), and the
share of ops whose A and B latencies are within +-5 % is printed per estimator, side by
side on the very same samples. The first line per pair checks that the table's own
settings give back the stored ``latency_ms``. Nothing is measured; how much the machine
moved is what ``bench_protocol.py`` printed for those builds.

  .venv/bin/python scripts/reestimate_passes.py /tmp/bp
  .venv/bin/python scripts/reestimate_passes.py /tmp/bp --estimators 'fit={};e1={"elasticity": 1.0}'

With ``--rewrite OUT`` the arguments are tables instead, and each is written to OUT (same
file name) with ``latency_ms`` derived again under the one estimator given (rows whose
passes did not all keep their samples are left as they were, and counted), e.g. to fit and
judge a predictor on labels of another estimator.

An estimator's ``"elasticity": "fit"`` is the elasticity a build fits on its own passes
(:mod:`hwprof.latency.elasticity`): for a pair, fitted on A's rows and used for both (B
adopts A's level, and with it A's elasticity); with ``--rewrite``, fitted on each table, or
with ``"elasticity": "from:PATH"`` on the table at PATH (a table that adopted PATH's level),
and kept in the rewritten table's reference level as a build keeps it.

  .venv/bin/python scripts/reestimate_passes.py /tmp/bp \
      --estimators 'e0.5={"elasticity": 0.5};fit={"elasticity": "fit"}'
  .venv/bin/python scripts/reestimate_passes.py --rewrite /tmp/fitted --estimators \
      'fit={"elasticity": "from:/tmp/pred/heldout.parquet"}' /tmp/pred/*.parquet
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from hwprof.latency.backends.agent import refstats
from hwprof.latency.backends.agent.protocol import DEFAULTS, ELASTICITY_BOUNDS, OP_ELASTICITY
from hwprof.latency.passes import ROW_RULE, geometric_mean, row_latency

ESTIMATORS = ('fitted={"elasticity": null};e0.5={"elasticity": 0.5};table-fit={"elasticity": "fit"};'
              'e1={"elasticity": 1.0};'
              'e1.25={"elasticity": 1.25};fitted-20%={"elasticity": null, "window": 0.2};'
              'pooled={"pool": "raw"};pooled-within={"pool": "within"};'
              'e1-neighbours={"elasticity": 1.0, "neighbours": 2}')
TOL = 0.05


def parse_estimators(text: str, what: str = "estimator") -> dict[str, dict]:
    """``name={json};name={json}`` -> {name: overrides}; ``what`` names an item in errors
    (``bench_quick_variants.py`` parses its variants with it too)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, js = part.partition("=")
        try:
            over = json.loads(js)
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} {name!r}: {js!r} is not JSON ({e.msg})") from None
        if not isinstance(over, dict):
            raise ValueError(f"{what} {name!r}: give a JSON object, got {js!r}")
        out[name.strip()] = over
    if not out:
        raise ValueError(f"--{what}s names no {what}")
    return out


def load(path: Path) -> tuple[dict, dict]:
    """:func:`rows_of` the table at ``path``."""
    from hwprof.latency.table import read_table
    return rows_of(read_table(path))


def rows_of(t) -> tuple[dict, dict]:
    """A table's protocol settings (with its ``pass_rule``) and {signature: (stored latency,
    level, passes)} of the ok rows whose every pass kept its samples."""
    cfg = {**DEFAULTS, **(t.meta.get("protocol") or {}), "pass_rule": t.meta.get("pass_rule")}
    # a table that fitted (or adopted) an elasticity carries its rows with it (one level)
    kept = [lv["elasticity"] for lv in ((t.meta.get("reference") or {}).get("levels") or {}).values()
            if lv.get("elasticity") is not None]
    if len(kept) == 1 and cfg.get("elasticity") == OP_ELASTICITY:
        cfg["elasticity"] = kept[0]
    rows = {}
    for r in t.df[t.df["status"] == "ok"].itertuples():
        ys, xs = r.pass_samples_ms, r.pass_sample_ref_ms
        if ys is None or xs is None or len(ys) == 0 or any(len(y) == 0 for y in ys):
            continue
        rows[r.signature] = (float(r.latency_ms), float(r.ref_level_ms),
                             [([float(v) for v in y], [float(v) for v in x]) for y, x in zip(ys, xs)])
    return cfg, rows


def pooled_elasticity(passes, within: bool) -> float:
    """One elasticity for the row from all its passes' samples: as they are (``within``
    False: the passes' different states widen the reference's range), or each pass's logs
    taken about its own median (``within``: a process's own offset left out)."""
    lx, ly = [], []
    for y, x in passes:
        a, b = [math.log(v) for v in x], [math.log(v) for v in y]
        if within:
            ma, mb = sorted(a)[len(a) // 2], sorted(b)[len(b) // 2]
            a, b = [v - ma for v in a], [v - mb for v in b]
        lx += a
        ly += b
    lo, hi = ELASTICITY_BOUNDS
    return min(hi, max(lo, refstats.theil_slope(lx, ly)))


def derive(passes, level_ms: float, cfg: dict) -> float:
    """A row's latency from its passes' samples under ``cfg`` (see :func:`derive_passes`)."""
    return combine_rule(cfg)(derive_passes(passes, level_ms, cfg))


def combine_rule(cfg: dict):
    """How the table's build combined a row's passes (tables from before pass_rule: the
    geometric mean of all of them)."""
    return row_latency if cfg.get("pass_rule") == ROW_RULE else geometric_mean


def derive_passes(passes, level_ms: float, cfg: dict) -> list[float]:
    """Each pass's latency from its samples under ``cfg``. Beside the protocol settings,
    ``window`` (refstats.estimate's) and ``pool`` ("raw" or "within": one elasticity fitted
    over all the row's passes, see :func:`pooled_elasticity`) and ``neighbours`` (k: which
    samples are near the level judged by the references of their k neighbours on either
    side, :func:`refstats.neighbour_refs`) may be given."""
    kw = {"window": cfg["window"]} if "window" in cfg else {}
    e = cfg["elasticity"]
    if cfg.get("pool"):
        e = pooled_elasticity(passes, cfg["pool"] == "within")
    k = cfg.get("neighbours")
    return [refstats.estimate(y, x, level_ms, cfg["target_ci"], cfg["min_side"],
                              fixed_elasticity=e,
                              select_refs_ms=refstats.neighbour_refs(x, k) if k else None,
                              **kw)["latency_ms"]
            for y, x in passes]


def fitted(over: dict, rows: dict, cfg: dict) -> tuple[dict, dict | None]:
    """``over`` with ``"elasticity": "fit"`` replaced by the elasticity fitted on ``rows``
    ({signature: (latency, level, passes)}, :func:`rows_of`) and that fit (None: ``over`` as
    it is, or too few ops with several passes to fit: the protocol's own then)."""
    from hwprof.latency import elasticity
    if over.get("elasticity") != "fit":
        return over, None
    fit = elasticity.fit([(lvl, p) for _, lvl, p in rows.values()], cfg)
    return {**over, "elasticity": fit["elasticity"] if fit else cfg["elasticity"]}, fit


def compare(a: tuple, b: tuple, over: dict) -> dict:
    (ca, ra), (cb, rb) = a, b
    over, fit = fitted(over, ra, ca)
    common = sorted(set(ra) & set(rb))
    if not common:
        return {"n": 0}
    diffs = []
    for s in common:
        la = derive(ra[s][2], ra[s][1], {**ca, **over})
        lb = derive(rb[s][2], rb[s][1], {**cb, **over})
        diffs.append(lb / la - 1)
    ad = sorted(abs(d) for d in diffs)
    return {"n": len(common), "share": sum(d <= TOL for d in ad) / len(ad),
            "median_abs": ad[len(ad) // 2], "max_abs": ad[-1],
            "median_shift": sorted(diffs)[len(diffs) // 2],
            **({"elasticity": over["elasticity"]} if fit else {})}


def rewrite(path: Path, over: dict, out_dir: Path) -> tuple[int, int, float | None]:
    """``path`` written to ``out_dir`` with every row's latency and its passes' latencies
    (``pass_medians_ms``) derived again under ``over`` (its CI scaled along); returns (rows
    derived again, rows left as they were, the elasticity used)."""
    from hwprof.latency import elasticity
    from hwprof.latency.table import read_table, write_table
    t = read_table(path)
    cfg, rows = rows_of(t)
    source = str(over.get("elasticity"))
    if source.startswith("from:"):
        base_cfg, base_rows = load(Path(source[5:]))
        over, fit = fitted({**over, "elasticity": "fit"}, base_rows, base_cfg)
    else:
        over, fit = fitted(over, rows, cfg)
    cfg = {**cfg, **over}
    df = t.df
    done = 0
    for i, sig in zip(df.index, df["signature"]):
        if sig not in rows:
            continue
        _, level, passes = rows[sig]
        lats = derive_passes(passes, level, cfg)
        for col, v in elasticity.carried(df.loc[i].to_dict(), lats, combine_rule(cfg)).items():
            df.at[i, col] = v
        done += 1
    own = not source.startswith("from:") or Path(source[5:]).resolve() == Path(path).resolve()
    if fit or not own:  # kept beside the level, as a build keeps it
        for entry in (t.meta.get("reference") or {}).get("levels", {}).values():
            entry["elasticity"] = cfg["elasticity"]
            if fit and own:
                entry["elasticity_fit"] = {k: fit[k] for k in
                                           ("ops", "disagreement", "default", "disagreement_default")}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / path.name, t)
    return done, int((df["status"] == "ok").sum()) - done, cfg["elasticity"]


def reproduction(side: tuple) -> float:
    """The largest relative gap between the stored latency and the one derived again."""
    cfg, rows = side
    return max((abs(derive(p, lvl, cfg) / lat - 1) for lat, lvl, p in rows.values()), default=0.0)


def pairs(dirs) -> list[tuple[str, Path, Path]]:
    out = []
    for d in dirs:
        for pa in sorted(Path(d).glob("*-A.parquet")):
            pb = pa.with_name(pa.name[:-len("-A.parquet")] + "-B.parquet")
            if pb.exists():
                out.append((f"{Path(d).name}/{pa.name[:-len('-A.parquet')]}", pa, pb))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="PATH",
                    help="bench_protocol.py --out-dir directories (with --rewrite: tables)")
    ap.add_argument("--estimators", default=ESTIMATORS,
                    help="name={protocol overrides as JSON};... ; beside the protocol settings an "
                         "estimator may give \"pass_rule\": \"lower-half geometric mean\" to combine "
                         "the passes of tables written before their metadata named a rule by the "
                         "lower half (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--rewrite", metavar="OUT",
                    help="write the tables given with latency_ms derived again under the one "
                         "estimator of --estimators")
    args = ap.parse_args(argv)
    try:
        ests = parse_estimators(args.estimators)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.rewrite:
        if len(ests) != 1:
            print("error: --rewrite takes one estimator (--estimators 'name={...}')",
                  file=sys.stderr)
            return 2
        (over,) = ests.values()
        for p in args.dirs:
            if (Path(args.rewrite) / Path(p).name).resolve() == Path(p).resolve():
                print(f"error: --rewrite {args.rewrite} would overwrite {p}", file=sys.stderr)
                return 2
            done, kept, e = rewrite(Path(p), over, Path(args.rewrite))
            print(f"{p}: {done} rows derived again (elasticity {e}), {kept} left as they were "
                  f"-> {Path(args.rewrite) / Path(p).name}")
        return 0
    found = pairs(args.dirs)
    if not found:
        print("no *-A.parquet / *-B.parquet pairs in " + ", ".join(args.dirs), file=sys.stderr)
        return 2
    report = []
    for name, pa, pb in found:
        a, b = load(pa), load(pb)
        entry = {"pair": name, "rows_a": len(a[1]), "rows_b": len(b[1]),
                 "reproduces": max(reproduction(a), reproduction(b)),
                 "estimators": {e: compare(a, b, over) for e, over in ests.items()}}
        report.append(entry)
        if not args.json:
            print(_format(entry))
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def _format(e: dict) -> str:
    lines = [f"{e['pair']}: {e['rows_a']} / {e['rows_b']} rows with every pass's samples; "
             f"the build's own settings give back latency_ms within "
             f"{100 * e['reproduces']:.2g} %"]
    for name, f in e["estimators"].items():
        if not f["n"]:
            lines.append(f"  {name:>13}: no common rows")
            continue
        lines.append(f"  {name:>13}: {100 * f['share']:5.1f} % within +-{100 * TOL:.0f} % "
                     f"(median |diff| {100 * f['median_abs']:.1f} %, max "
                     f"{100 * f['max_abs']:.1f} %, median B/A {100 * f['median_shift']:+.2f} %)"
                     + (f", fitted elasticity {f['elasticity']:g}" if "elasticity" in f else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
