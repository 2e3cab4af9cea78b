"""The same networks measured end to end in several sessions: how far apart, by which estimator.

Issue 12's end-to-end repeatability (goal: spread max/min <= 1.05 over 10
minutes), seen as the search loop sees it: a few networks measured side by side
in one session (one group, beside the reference op, at the table's level), and
the same again every --gap seconds, --times times. Every sample and its paired
reference samples are saved (--out), so other estimators can be tried on the
very same sessions without measuring again (--reanalyse FILE). Prints, per
estimator, each network's spread over the sessions and the median |difference|
between consecutive sessions, and how far the machine moved in each session.

  flock /tmp/hwprof-bench.lock .venv/bin/python scripts/bench_e2e_repeat.py \\
      --table T --space mbv2-cifar --archs 3 --times 8 --gap 75 --out /tmp/e2e.json
  .venv/bin/python scripts/bench_e2e_repeat.py --reanalyse /tmp/e2e.json

With ``--spans 8,15`` every session is measured once per minimum span (back to
back, the order turning each time), and the sessions of each span are analysed
apart, with the wall time a session took: what a shorter span costs in
repeatability, side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def measure(a) -> dict:
    from hwprof.latency.backends.registry import get_backend
    from hwprof.latency.endtoend import measure_archs, random_choices
    from hwprof.latency.spaces import get_space
    from hwprof.latency.table import read_table
    space = get_space(a.space)
    meta = read_table(a.table).meta
    choices = random_choices(space, a.archs, seed=a.seed)
    spans = a.spans or [None]
    sessions, start = [], time.time()
    for k in range(a.times):
        wait = start + k * a.gap - time.time()
        if wait > 0:
            time.sleep(wait)
        for span in spans[k % len(spans):] + spans[:k % len(spans)]:
            protocol = None if span is None else {"min_span_s": span}
            t0 = time.time()
            res, _ = measure_archs(space, choices, get_backend("cpu"), seed=k, table_meta=meta,
                                   protocol=protocol)
            sessions.append({"at": t0 - start, "wall_s": time.time() - t0, "span": span,
                             "machine": res[0].get("machine"),
                             "level_ms": res[0]["ref_level_ms"],
                             "nets": [{"latency_ms": r["latency_ms"],
                                       "samples_ms": r["samples_ms"],
                                       "refs_ms": r["sample_ref_ms"]} for r in res]})
            m = res[0].get("machine") or {}
            print(f"session {k + 1}/{a.times}" + (f" span {span:g} s" if span else "")
                  + f" at {sessions[-1]['at']:.0f} s ({sessions[-1]['wall_s']:.1f} s): "
                  + ", ".join(f"{r['latency_ms']:.3f}" for r in res)
                  + f" ms; reference p5 {m.get('p5_ms', 0):.3f} p95 {m.get('p95_ms', 0):.3f} ms "
                  f"(level {res[0]['ref_level_ms']:.3f})", flush=True)
    return {"space": a.space, "table": a.table, "choices": choices, "sessions": sessions}


def analyse_by_span(data: dict) -> None:
    """Each span's sessions apart (``--spans``), then how far the spans' means lie apart."""
    spans = sorted({s.get("span") for s in data["sessions"]}, key=lambda x: x or 0)
    if len(spans) < 2:
        analyse(data)
        return
    for span in spans:
        group = [s for s in data["sessions"] if s.get("span") == span]
        walls = [s["wall_s"] for s in group]
        print(f"== minimum span {span:g} s: {len(group)} sessions, wall time per session median "
              f"{statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f})")
        analyse(dict(data, sessions=group))
    n = len(data["sessions"][0]["nets"])
    means = {span: [statistics.mean(s["nets"][i]["latency_ms"] for s in data["sessions"]
                                    if s.get("span") == span) for i in range(n)]
             for span in spans}
    base = means[spans[-1]]
    for span in spans[:-1]:
        print(f"mean latency at span {span:g} s over that at {spans[-1]:g} s, per network: "
              + " ".join(f"{m / b:.3f}" for m, b in zip(means[span], base)))


def estimators():
    """name -> f(samples, refs, level, common) -> ms; ``common`` is the session's own level.

    ``common`` is :func:`refstats.level_of` over all the session's reference
    samples: the state the machine was mostly in during that session, wherever
    the table's level lies.
    """
    from hwprof.latency.backends.agent import refstats as rs

    def current(y, x, lv, common):
        return rs.estimate(y, x, lv)["latency_ms"]

    def ratio_near(y, x, lv, common):
        return rs.estimate(y, x, lv, fixed_elasticity=1.0)["latency_ms"]

    def half_near(y, x, lv, common):
        return rs.estimate(y, x, lv, fixed_elasticity=0.5)["latency_ms"]

    def narrow(y, x, lv, common):
        return rs.estimate(y, x, lv, window=0.05, min_near=8)["latency_ms"]

    def raw_median(y, x, lv, common):
        return statistics.median(y)

    def ratio_all(y, x, lv, common):
        return lv * statistics.median(a / b for a, b in zip(y, x))

    def ratio_common(y, x, lv, common):
        # the agent's estimate at the session's own common state (its +-10 % window, elasticity
        # 1), carried to the table's level as a ratio
        return rs.estimate(y, x, common, fixed_elasticity=1.0)["latency_ms"] * lv / common

    def all_fitted(y, x, lv, common):
        return statistics.median(rs.adjusted(y, x, lv, rs.elasticity(y, x)))

    return {"±10 %, fitted e (until 12-03)": current, "±10 %, e = 1 (networks now)": ratio_near,
            "±10 %, e = 0.5 (ops since v15)": half_near,
            "±5 % window": narrow, "ratio over all samples": ratio_all,
            "ratio in the session's state": ratio_common,
            "every sample, fitted e": all_fitted,
            "raw median (no reference)": raw_median}


def near_share(samples_ms, refs_ms, level_ms) -> float:
    """The share of samples inside the agent's window around the level (what it estimates from)."""
    from hwprof.latency.backends.agent.refstats import estimate
    return estimate(samples_ms, refs_ms, level_ms, fixed_elasticity=1.0)["ref_near"] / len(refs_ms)


def session_level(session: dict) -> float:
    """The state the machine was mostly in during one session (all its networks' references)."""
    from hwprof.latency.backends.agent.refstats import level_of
    return level_of([x for net in session["nets"] for x in net["refs_ms"]])


def analyse(data: dict) -> None:
    sessions = data["sessions"]
    n = len(sessions[0]["nets"])
    for s in sessions:
        m = s.get("machine") or {}
        near = [near_share(net["samples_ms"], net["refs_ms"], s["level_ms"]) for net in s["nets"]]
        print(f"  at {s['at']:5.0f} s: reference p5 {m.get('p5_ms', 0):.3f} p50 "
              f"{m.get('p50_ms', 0):.3f} p95 {m.get('p95_ms', 0):.3f} ms, level "
              f"{s['level_ms']:.3f}; samples near the level {100 * min(near):.0f}-"
              f"{100 * max(near):.0f} %")
    commons = [session_level(s) for s in sessions]
    print("  the sessions' own common states: " + " ".join(f"{c:.3f}" for c in commons) + " ms")
    first = None   # the first estimator's mean per network, which the others are compared with
    for name, f in estimators().items():
        spreads, diffs, mean = [], [], []
        for i in range(n):
            v = [f(s["nets"][i]["samples_ms"], s["nets"][i]["refs_ms"], s["level_ms"], c)
                 for s, c in zip(sessions, commons)]
            spreads.append(max(v) / min(v))
            diffs += [abs(b / a - 1) for a, b in zip(v, v[1:])]
            mean.append(statistics.mean(v))
        first = mean if first is None else first
        level = statistics.mean(m / c for m, c in zip(mean, first))
        print(f"{name:30s}: spread per network " + " ".join(f"{x:.3f}" for x in spreads)
              + f"; consecutive sessions median |diff| {100 * statistics.median(diffs):.1f} %, "
              f"max {100 * max(diffs):.1f} %; mean {level:.3f} x the first estimator's")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table")
    ap.add_argument("--space", default="mbv2-cifar")
    ap.add_argument("--archs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--times", type=int, default=8)
    ap.add_argument("--gap", type=float, default=75.0, help="seconds between session starts")
    ap.add_argument("--spans", type=lambda t: [float(x) for x in t.split(",")],
                    help="minimum spans (s) to measure side by side, e.g. 8,15 (default: the "
                    "protocol's)")
    ap.add_argument("--out", help="save every sample here (JSON)")
    ap.add_argument("--reanalyse", metavar="FILE", help="analyse saved sessions, measure nothing")
    a = ap.parse_args(argv)
    if a.reanalyse:
        data = json.load(open(a.reanalyse))
    else:
        if not a.table:
            ap.error("--table is needed to measure")
        data = measure(a)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(data, f)
    analyse_by_span(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
