"""The closed loop: derive, measure the networks end to end, re-derive until one fits.

A derivation is only as good as the whole-network estimate it checks against;
the answer of a search is the network measured on the device. The loop works
in rounds, and each round is one measuring session on the device:

1. derive a ladder of networks, each the most probable network whose estimate
   lies in its rung's window ``[lo, hi] x target`` (every network a new one).
   The derivation lands near a window's lower edge (the most probable networks
   are the faster ones), so each rung pins where its estimate lands. Round 1
   (``target`` = the budget) starts with the plain derivation (``[min_fill, 1]``)
   and adds rungs landing about 3 % apart, at 0.93-1.07 x the budget: with a
   device's measured / estimate anywhere from about 0.91 to 1.06, one of them
   lands in the band ``[fill, 1] x budget`` in this first session;
2. measure the ladder end to end in one group (``measure([choices, ...]) ->
   [ms, ...]``, a callable the caller hands in: this package never talks to
   hardware). Measuring a few networks side by side costs about what one does
   (they share the protocol's minimum span);
3. if no network lands in the band, learn the median ratio measured / estimate
   of the round and derive the next, narrower ladder (rungs 1.5 % apart around
   0.97 x the budget) against ``budget / ratio``; networks already measured are
   excluded;
4. stop when a network lands in the band, after ``max_rounds`` rounds, or when
   nothing can be derived any more.

The answer is the most probable network measured in the band; if none, the
fullest one measured within the budget; if none is within the budget, no answer
(the caller refuses, or keeps the fastest measured one when asked to).

Why windows and not targets: until 2026-12-03 the rungs were targets (1.0, 0.97,
0.94, 1.03, 1.06 x the budget) each derived in ``[min_fill, 1] x`` its target; the
networks then landed at ``min_fill x`` each target, not at it (median estimate /
target 0.908 over 65 mbv2-cifar rungs at ``min_fill`` 0.9), so the ladder sat
8 % lower than designed and two of its rungs were rarely of use.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from hwprof.errors import UserError

FILL = 0.95       # measured / budget at or above this fills the budget
MIN_FILL = 0.95   # the plain derivation prefers networks estimated at >= this x budget
# a rung: the window (lo, hi) x the round's target its network's estimate is derived in;
# lo None: the plain derivation, (min_fill x hi, hi)
FIRST_LADDER = ((None, 1.0), (0.988, 1.008), (1.018, 1.038), (0.928, 0.948), (1.048, 1.068))
LATER_LADDER = ((0.965, 0.98), (0.95, 0.965), (0.98, 0.995), (0.935, 0.95), (0.995, 1.01))


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


def next_target(rounds: Sequence[Round], aim: float = 1.0) -> float:
    """Target for the next ladder from what ``rounds`` measured (tightened or loosened):
    ``aim`` x the budget scaled by the median ratio estimate / measured of those networks."""
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
               max_rounds: int = 4, min_fill: float = MIN_FILL, fill: float = FILL,
               ladders: tuple = (FIRST_LADDER, LATER_LADDER),
               log: Callable[[str], None] = print) -> dict:
    """Run the loop; {"rounds": [Round] (one per network measured), "answer": Round | None,
    "status": str}.

    ``derive_at(target, min_fill, exclude)`` derives the most probable network estimated in
    ``[min_fill, 1] x target``; ``ladders`` are round 1's rungs and the later rounds'
    (windows, see :data:`FIRST_LADDER`). ``status``: "in_band", "within" (under the budget,
    not filling it), "over" (nothing measured within budget) or "unmeasured" (``measure`` is
    None or could not measure: the answer is the first derivation).
    """
    if max_rounds < 1:
        raise UserError(f"--max-rounds must be at least 1, got {max_rounds}")
    rounds: list[Round] = []
    target = budget_ms
    for k in range(1, max_rounds + 1):
        ladder = ladders[0] if k == 1 else ladders[1]
        windows = [(min_fill * hi if lo is None else lo, hi) for lo, hi in ladder]
        batch = _derive_ladder(derive_at, k, target, rounds, budget_ms,
                               windows if measure is not None else windows[:1])
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
        target = next_target(batch)
        if k < max_rounds:
            over = sum(not r.within for r in batch)
            log(f"  re-deriving around {target:.3f} ms "
                f"({'tightened' if over else 'loosened'} by the median measured/estimate "
                f"{1.0 / _estimate_over_measured(batch):.3f})")
    return {"rounds": rounds, "answer": _answer(rounds, fill), "status": _status(rounds, fill)}


def _derive_ladder(derive_at, k: int, target: float, prior: list[Round], budget_ms: float,
                   windows: Sequence[tuple[float, float]]) -> list[Round]:
    """Round ``k``'s networks: one derivation per window, each new; [] when none can be
    derived (round 1 raises: nothing fits the budget at all)."""
    batch: list[Round] = []
    for j, (lo, hi) in enumerate(windows):
        try:
            d = derive_at(target * hi, lo / hi, [r.choices for r in prior + batch])
        except UserError:
            if k == 1 and j == 0:
                raise
            continue
        batch.append(Round(k, target * hi, lo / hi, d["choices"], d["estimate_ms"],
                           d["sum_ms"], d["log_prob"], budget_ms, rung=j))
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
