"""Adaptive sampling: new configurations near those the predictor gets most wrong.

``build-table --sample N --adaptive --predictor FILE`` asks here for N
configurations per kind. The predictor file keeps, per kind, the training
rows with the largest cross-validated error (``hwprof fit`` stores them);
new configurations are neighbours of those rows (widths, feature-map size
and one hyper-parameter moved a little; see ``sampling.neighbour``), drawn
in proportion to each row's error, never one the predictor was trained on,
and reproducible for a given seed. A kind the predictor has no model for is
sampled from the plain prior.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Sequence

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
