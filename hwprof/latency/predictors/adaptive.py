"""Adaptive sampling: new configurations near those the predictor gets most wrong.

``build-table --sample N --adaptive --predictor FILE`` asks here for N
configurations per kind. The predictor file keeps, per kind, the training
rows with the largest cross-validated error (``hwprof fit`` stores them);
new configurations are neighbours of those rows (widths, feature-map size
and one hyper-parameter moved a little; see ``sampling.neighbour``), drawn
in proportion to each row's error, never one the predictor was trained on,
and reproducible for a given seed. A kind the predictor has no model for is
sampled from the plain prior.

``build-table --sample N --minutes M --adaptive`` (no predictor) learns as it
measures: :class:`BudgetRounds` picks each round's configurations, half in
the prior's order and half where a forest fitted on the rows measured so far
is least sure, until the time budget is spent.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Callable, Sequence

import numpy as np

from hwprof.errors import UserError
from hwprof.latency.sampling import neighbour, parse_kinds, sample_specs
from hwprof.latency.specs import OpSpec

TOP_FRACTION = 0.5  # neighbours are drawn around the worst half of the kept rows


def adaptive_specs(predictor_path, n: int, kinds: Sequence[str] | None, seed: int = 0
                   ) -> list[OpSpec]:
    """``n`` configurations per kind where the predictor at ``predictor_path`` is weakest."""
    from hwprof.latency.predictors.persist import load_predictor

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"the number of adaptive configurations must be a positive integer, "
                        f"got {n!r}")
    kinds = parse_kinds(",".join(kinds)) if kinds is not None else parse_kinds(None)
    pred = load_predictor(predictor_path)
    worst = pred.meta.get("worst_training_rows") or {}
    trained = set(pred.meta.get("training_signatures") or [])
    out: list[OpSpec] = []
    for kind in kinds:
        rows = worst.get(kind) or []
        if kind not in pred.models or not rows:
            print(f"hwprof: note: the predictor has no {kind} model; sampling {kind} from the "
                  f"prior", file=sys.stderr)
            out += sample_specs(n, [kind], seed)
            continue
        out += _around(rows, n, kind, seed, trained)
    return out


def _around(rows: list[dict], n: int, kind: str, seed: int, exclude: set[str]) -> list[OpSpec]:
    rng = random.Random(f"hwprof-adaptive:{seed}:{kind}")
    keep = rows[: max(1, int(len(rows) * TOP_FRACTION))]
    centres = [OpSpec(json.loads(r["spec"]), _trusted=True) for r in keep]
    weights = [abs(r["cv_pred_ms"] - r["true_ms"]) / r["true_ms"] + 1e-6 for r in keep]
    seen = set(exclude) | {c.signature for c in centres}
    got: list[OpSpec] = []
    tries = 0
    while len(got) < n:
        tries += 1
        if tries > 200 * n + 1000:  # the neighbourhoods are exhausted: widen to the prior
            extra = [s for s in sample_specs(4 * n, [kind], seed + 1) if s.signature not in seen]
            got += extra[: n - len(got)]
            break
        centre = rng.choices(centres, weights=weights)[0]
        cand = neighbour(centre, rng)
        if cand is None or cand.signature in seen:
            continue
        seen.add(cand.signature)
        got.append(cand)
    return got


# --------------------------------------------------------------------------- #
# within a time budget: rounds that spend measurements where the model is unsure

EXPLORE = 0.5  # share of each round drawn in the prior's own order (coverage)
POOL_MIN, POOL_MAX = 1500, 4000  # candidates per kind the uncertain ones are chosen from


def uncertainty(train_x: np.ndarray, train_ms: np.ndarray, pool_x: np.ndarray,
                seed: int = 0) -> np.ndarray:
    """How unsure a model of the measured rows is about each pool row: the
    spread (std) of a random forest's trees' log-latency predictions."""
    from sklearn.ensemble import RandomForestRegressor

    rf = RandomForestRegressor(n_estimators=60, max_features=0.6, min_samples_leaf=2,
                               random_state=seed, n_jobs=1).fit(train_x, np.log(train_ms))
    per_tree = np.stack([t.predict(pool_x) for t in rf.estimators_])
    return per_tree.std(axis=0)


class BudgetRounds:
    """Choose what a budgeted sampled build measures next, one round at a time.

    Per kind: a pool of prior configurations (``sample_specs`` order, so a
    plain prefix of it is what ``--sample`` alone would measure); the first
    round is the prior's first ``batch``; every later round takes half its
    ops in the prior's order (coverage) and half where a random forest of the
    rows measured so far is least sure (the spread of its trees). The caller
    measures each round and hands back the measured latencies.
    """

    def __init__(self, n: int, kinds: Sequence[str], seed: int = 0, batch: int = 100):
        self.n, self.kinds, self.seed, self.batch = n, list(kinds), seed, batch
        self.pools: dict[str, list[OpSpec]] = {}
        self.x: dict[str, np.ndarray] = {}
        self.taken: dict[str, set[int]] = {k: set() for k in self.kinds}
        self.rounds = 0

    def _pool(self, kind: str) -> list[OpSpec]:
        if kind not in self.pools:
            from hwprof.latency.predictors.features import feature_matrix
            size = min(POOL_MAX, max(POOL_MIN, 3 * self.n))
            self.pools[kind] = sample_specs(max(size, self.n), [kind], self.seed)
            self.x[kind], _ = feature_matrix(self.pools[kind])
        return self.pools[kind]

    def next_round(self, measured: dict[str, dict[str, float]]) -> list[OpSpec]:
        """The next round's configurations (empty when ``n`` per kind are taken);
        ``measured``: kind -> {signature: latency ms} of the rows measured so far."""
        out: list[OpSpec] = []
        for kind in self.kinds:
            pool, taken = self._pool(kind), self.taken[kind]
            want = min(self.batch, self.n - len(taken))
            if want <= 0:
                continue
            free = [i for i in range(len(pool)) if i not in taken]
            pick = free[:want] if self.rounds == 0 else self._choose(kind, free, want,
                                                                      measured.get(kind, {}))
            taken.update(pick)
            out += [pool[i] for i in pick]
        self.rounds += 1
        return out

    def _choose(self, kind: str, free: list[int], want: int, rows: dict[str, float]
                ) -> list[int]:
        pool = self.pools[kind]
        have = [i for i in range(len(pool)) if pool[i].signature in rows]
        n_explore = int(round(want * EXPLORE)) if len(have) >= 20 else want
        pick = free[:n_explore]
        rest = [i for i in free if i not in set(pick)]
        if not rest or want - n_explore <= 0:
            return pick
        y = np.array([rows[pool[i].signature] for i in have])
        spread = uncertainty(self.x[kind][have], y, self.x[kind][rest], self.seed + self.rounds)
        order = np.argsort(-spread, kind="stable")[: want - n_explore]
        return pick + [rest[j] for j in sorted(order)]


def run_budget_rounds(rounds: BudgetRounds, measure: Callable[[list[OpSpec]], None],
                      measured: Callable[[], dict[str, dict[str, float]]],
                      deadline: float, clock: Callable[[], float] = time.monotonic,
                      log: Callable[[str], None] | None = None) -> int:
    """Measure round after round until ``deadline`` (``clock()`` time) or ``n`` per kind;
    a round starts only when one as long as the last fits before the deadline. Returns the
    number of rounds started."""
    started, took = 0, 0.0
    while clock() + took < deadline:
        specs = rounds.next_round(measured())
        if not specs:
            break
        started += 1
        if log:
            left = max(0.0, deadline - clock()) / 60
            log(f"adaptive round {started}: {len(specs)} configuration(s), "
                f"{left:.1f} min of the budget left")
        t0 = clock()
        measure(specs)
        took = clock() - t0
    return started
