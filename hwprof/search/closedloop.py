"""The closed loop: derive, measure the networks end to end, re-derive until one fits.

A derivation is only as good as the whole-network estimate it checks against;
the answer of a search is the network measured on the device. The loop works
in rounds, and each round is one measuring session on the device:

1. derive a ladder of networks against the budget (``derive_at(target, min_fill,
   exclude)`` at ``target x f`` for each ``f`` in ``ladder``, every network a new
   one): the plain derivation, two slightly faster ones (for an estimate that
   runs low) and two slightly slower ones (for one that runs high: without
   them such a search under-fills and needs a second session);
2. measure the ladder end to end in one group (``measure([choices, ...]) ->
   [ms, ...]``, a callable the caller hands in: this package never talks to
   hardware). Measuring a few networks side by side costs about what one does
   (they share the protocol's minimum span), and a ladder usually brackets the
   budget, so most searches need one session;
3. if no network lands in ``[fill, 1] x budget``, learn the median ratio
   measured / estimate of the round and derive the next ladder against
   ``aim x budget / ratio``: tightened when it was over, loosened when it was
   far under; networks already measured are excluded;
4. stop when a network lands in the band, after ``max_rounds`` rounds, or when
   nothing can be derived any more.

The answer is the most probable network measured in the band; if none, the
fullest one measured within the budget; if none is within the budget, no answer
(the caller refuses, or keeps the fastest measured one when asked to).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from hwprof.errors import UserError

FILL = 0.95   # measured / budget at or above this fills the budget
AIM = 0.99    # re-derivations aim this far under the budget (measurement noise)
LADDER = (1.0, 0.97, 0.94, 1.03, 1.06)  # each round derives at target x f for these f, in order


@dataclass
class Round:
    round: int
    target_ms: float
    min_fill: float
    choices: list[str]
    estimate_ms: float
    sum_ms: float
    log_prob: float
    budget_ms: float
    measured_ms: float | None = None
    rung: int = 0

    @property
    def ratio(self) -> float | None:
        return None if self.measured_ms is None else self.measured_ms / self.budget_ms

    @property
    def within(self) -> bool:
        return self.measured_ms is not None and self.measured_ms <= self.budget_ms

    def in_band(self, fill: float = FILL) -> bool:
        return self.within and self.ratio >= fill

    def to_dict(self, fill: float = FILL) -> dict:
        return {**asdict(self), "ratio": self.ratio, "within_budget": self.within,
                "in_band": self.in_band(fill)}


def _describe(r: Round, rounds: int) -> str:
    head = (f"round {r.round}/{rounds}.{r.rung + 1}: target {r.target_ms:.3f} ms, estimate "
            f"{r.estimate_ms:.3f} ms")
    if r.measured_ms is None:
        return head + ", not measured"
    verdict = "over" if not r.within else ("in band" if r.in_band() else "under")
    return (head + f", measured {r.measured_ms:.3f} ms = {r.ratio:.3f} x budget "
            f"{r.budget_ms:.3f} ms ({verdict})")


def next_target(rounds: Sequence[Round], aim: float = AIM) -> float:
    """Target for the next derivation from what ``rounds`` measured (tightened or loosened):
    the budget scaled by the median ratio estimate / measured of those networks."""
    return aim * rounds[0].budget_ms * _estimate_over_measured(rounds)


def _estimate_over_measured(rounds: Sequence[Round]) -> float:
    return statistics.median(r.estimate_ms / r.measured_ms for r in rounds)


def pick(rounds: Sequence[Round], fill: float = FILL) -> Round | None:
    """Most probable round in the band, else the fullest within budget, else None."""
    band = [r for r in rounds if r.in_band(fill)]
    if band:
        return max(band, key=lambda r: r.log_prob)
    within = [r for r in rounds if r.within]
    return max(within, key=lambda r: r.measured_ms) if within else None


def close_loop(derive_at: Callable[[float, float, list], dict],
               measure: Callable[[list[list[str]]], list] | None, budget_ms: float, *,
               max_rounds: int = 4, min_fill: float = 0.9, fill: float = FILL,
               ladder: Sequence[float] = LADDER, log: Callable[[str], None] = print) -> dict:
    """Run the loop; {"rounds": [Round] (one per network measured), "answer": Round | None,
    "status": str}.

    ``status``: "in_band", "within" (under the budget, not filling it),
    "over" (nothing measured within budget) or "unmeasured" (``measure`` is
    None or could not measure: the answer is the first derivation).
    """
    if max_rounds < 1:
        raise UserError(f"--max-rounds must be at least 1, got {max_rounds}")
    rounds: list[Round] = []
    target, fill_k = budget_ms, min_fill
    for k in range(1, max_rounds + 1):
        batch = _derive_ladder(derive_at, k, target, fill_k, rounds, budget_ms,
                               ladder if measure is not None else ladder[:1])
        if not batch:
            log(f"round {k}/{max_rounds}: nothing more to derive; stopping")
            break
        rounds += batch
        measured = measure([r.choices for r in batch]) if measure is not None else None
        for r, ms in zip(batch, measured or [None] * len(batch)):
            r.measured_ms = ms
            log(_describe(r, max_rounds))
        done = [r for r in batch if r.measured_ms is not None]
        if len(done) < len(batch) or any(r.in_band(fill) for r in batch):
            break
        target, fill_k = next_target(batch), fill / AIM
        if k < max_rounds:
            over = sum(not r.within for r in batch)
            log(f"  re-deriving against {target:.3f} ms "
                f"({'tightened' if over else 'loosened'} by the median measured/estimate "
                f"{1.0 / _estimate_over_measured(batch):.3f})")
    return {"rounds": rounds, "answer": _answer(rounds, fill), "status": _status(rounds, fill)}


def _derive_ladder(derive_at, k: int, target: float, fill_k: float, prior: list[Round],
                   budget_ms: float, ladder: Sequence[float]) -> list[Round]:
    """Round ``k``'s networks: one derivation per rung, each new; [] when none can be derived
    (round 1 raises: nothing fits the budget at all)."""
    batch: list[Round] = []
    for j, f in enumerate(ladder):
        try:
            d = derive_at(target * f, fill_k, [r.choices for r in prior + batch])
        except UserError:
            if k == 1 and j == 0:
                raise
            continue
        batch.append(Round(k, target * f, fill_k, d["choices"], d["estimate_ms"], d["sum_ms"],
                           d["log_prob"], budget_ms, rung=j))
    return batch


def _answer(rounds: Sequence[Round], fill: float) -> Round | None:
    if rounds and all(r.measured_ms is None for r in rounds):
        return rounds[0]
    return pick([r for r in rounds if r.measured_ms is not None], fill)


def _status(rounds: Sequence[Round], fill: float) -> str:
    measured = [r for r in rounds if r.measured_ms is not None]
    if not measured:
        return "unmeasured"
    best = pick(measured, fill)
    if best is None:
        return "over"
    return "in_band" if best.in_band(fill) else "within"


def fastest_measured(rounds: Sequence[Round]) -> Round | None:
    """The round with the lowest measured latency (what --allow-over-budget keeps)."""
    measured = [r for r in rounds if r.measured_ms is not None]
    return min(measured, key=lambda r: r.measured_ms) if measured else None
